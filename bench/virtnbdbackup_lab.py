#!/usr/bin/python3
"""virtnbdbackup_lab: Debian's virtnbdbackup (package virtnbdbackup, 1.9.15) run in one lab host against a VM of
another, for replication_bench's peer figures. Its code runs as packaged (/usr/bin/virtnbdbackup, imported and run
as __main__) with two stand-ins, and the arguments are passed through unchanged:

1. Remote mode needs ssh. With -U qemu+tls://PRIMARY/system it reads the disks over NBD from the VM's host (the
   export listens on --nbd-ip, with --tls); but for the metadata around them (`qemu-img info` of each disk, a copy
   of the kernel/initrd/nvram the domain boots from) it opens an ssh session (paramiko) to the VM's host and exits
   when it cannot. The lab has no sshd, so the session is replaced by one that runs the same command, or reads the
   same file, in the VM's host through nsenter into its namespaces (VS_NBDB_HOST_PID: a process of that host, its
   libvirtd). Disk data is untouched by this: it still goes over NBD from the VM's host, over the lab link. Those
   file copies do not cross the link here (over ssh they would).

2. It refuses a domain with a checkpoint not named virtnbdbackup.* ("Foreign checkpoint found", exit 1), and a VM
   virt-shadow protects always keeps one (vs-<ms>, the base of its next round). With libvirt 9.0 every checkpoint's
   bitmap records from its own creation on, and an incremental backup reads only its base checkpoint's, so another
   tool's checkpoints (created and deleted in between) neither add to nor take from it: checkpoints named vs-* are
   not counted as foreign here. Any other foreign checkpoint still stops it, as packaged.

Usage: VS_NBDB_HOST_PID=PID /usr/bin/python3 virtnbdbackup_lab.py VIRTNBDBACKUP_ARGS...
"""
import os
import runpy
import shutil
import subprocess
import sys

from libvirtnbdbackup.common import common as lib
from libvirtnbdbackup.common.processinfo import processInfo
from libvirtnbdbackup.ssh.exceptions import sshError
from libvirtnbdbackup import virt  # the package exports its class `client`

VIRT_SHADOW_PREFIX = "vs-"


class NsenterSession:
    """What virtnbdbackup uses of its ssh client (libvirtnbdbackup/ssh/client.py), in the VM's host's namespaces."""

    def __init__(self, host_pid: str):
        self.prefix = ["nsenter", "-t", host_pid, "-n", "-m", "-u", "--"]

    def run(self, cmd: str, pidFile: str = "", logFile: str = "") -> processInfo:
        p = subprocess.run(self.prefix + ["sh", "-c", cmd], capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise sshError(f"Error during remote command: [{cmd}]: [{p.stderr.strip()}]")
        pid = 0
        if pidFile:
            pid = int(subprocess.run(self.prefix + ["cat", pidFile], capture_output=True, text=True).stdout)
        return processInfo(pid, logFile, p.stderr.strip(), p.stdout.strip())

    def exists(self, filepath: str) -> bool:
        return subprocess.run(self.prefix + ["test", "-e", filepath], check=False).returncode == 0

    def copy(self, filepath: str, localpath: str) -> None:
        with open(localpath, "wb") as out:
            p = subprocess.run(self.prefix + ["cat", filepath], stdout=out, stderr=subprocess.PIPE, check=False)
        if p.returncode != 0:
            raise sshError(f"copy of [{filepath}] failed: [{p.stderr.decode().strip()}]")

    def disconnect(self) -> None:
        pass


def session(_args, remote_host: str):
    pid = os.environ.get("VS_NBDB_HOST_PID", "")
    if not pid.isdigit():
        print(f"virtnbdbackup_lab: VS_NBDB_HOST_PID must name a process of {remote_host}", file=sys.stderr)
        return None
    return NsenterSession(pid)


def foreign_checkpoint(domObj, defaultCheckpointName: str):
    for cpt in domObj.listAllCheckpoints() or []:
        name = cpt.getName()
        if defaultCheckpointName not in name and not name.startswith(VIRT_SHADOW_PREFIX):
            return name
    return None


if shutil.which("nsenter") is None:
    sys.exit("virtnbdbackup_lab: nsenter not found")
lib.sshSession = session
virt.client.hasforeignCheckpoint = staticmethod(foreign_checkpoint)
sys.argv[0] = "/usr/bin/virtnbdbackup"
runpy.run_path("/usr/bin/virtnbdbackup", run_name="__main__")
