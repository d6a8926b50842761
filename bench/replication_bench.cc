// replication_bench: what dirty-bitmap replication costs and saves, on the real lab, each figure next to its
// baseline from the same run. Run by hand with the lab up and installed:
//   scripts/lab.sh up 3 && scripts/lab.sh install build && build/bench/replication_bench [--reps N] [--no-peer]
//
// The lab links are shaped to 1 Gbit/s (tc) so that bytes cost what they cost on a real network.
//   1. Rounds on a 1 GiB disk (filled with data) after 512 KiB (8 runs of 64 KiB), 1 %, 10 %, 50 % of it was
//      rewritten (through QEMU's HMP qemu-io, runs spread over the disk): bytes sent / dirty bytes, the round's
//      duration and throughput, against the full copy over NBD (the seed round, same path and code) and `virsh
//      migrate --copy-storage-all` of the same disk (bytes, time, MiB/s of its mirror); then where each round's
//      time went (its recorded steps). The seed's time against --copy-storage-all's.
//   2. Guest impact: one guest's write throughput (acknowledged 64 KiB records/s, fsync'd, over 20 s) tagged with 1 s
//      rounds against the same guest untagged, tagged and untagged live in N alternating pairs (--guest-pairs,
//      default 5): each pair's ratio, their median and spread.
//   3. The resync after QEMU is killed with SIGKILL (1 % rewritten first): bytes sent against the disk size.
//   4. The peer (issue 14, item 7): Debian's virtnbdbackup backing up the same dirty sets over the same link: its
//      full backup (`-l full`) against the seed round, then for each dirty size of 1. one `virtnbdbackup -l inc` and
//      one round of the same rewrite (the guest paused from both tools' bases to both backups, so that both read
//      exactly the bench's blocks), time and bytes per increment side by side, with ratios. It runs in the shadow
//      host in its remote mode (NBD from the primary over the link, with TLS in a TLS lab; stream format,
//      uncompressed: its defaults), through bench/virtnbdbackup_lab.py, which does over nsenter what it would do
//      over ssh and lets virt-shadow's vs-* checkpoints pass its foreign-checkpoint check. Needs the package
//      virtnbdbackup (scripts/setup.sh installs it); --no-peer leaves this part out.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "bench/bench_lab.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kDisk = 1024 * kMiB;

// Waits until `name` is protected and its first round applied.
void WaitSeeded(const BenchLab& lab, const std::string& name) {
  json last;
  bool ok = WaitUntil(
      [&] {
        auto s = RunCliJson(lab.hosts()[0], "status " + name);
        if (!s.ok()) return false;
        last = *s;
        return last["replication"].is_object() && last["replication"]["rounds_applied"].get<uint64_t>() >= 1;
      },
      600s);
  if (!ok) lab.Die("no first round for " + name + ": " + last.dump());
}

json Sync(const BenchLab& lab, const std::string& name) {
  return lab.Must(RunCliJson(lab.hosts()[0], "--timeout 600 sync " + name), "sync " + name)["round"];
}

// Rewrites `runs` runs of `run_bytes` each, spread evenly over the disk, through QEMU (so that the dirty bitmap
// sees it), with a fresh pattern. Returns the bytes rewritten.
uint64_t DirtyRuns(const BenchLab& lab, const std::string& name, uint64_t runs, uint64_t run_bytes, int pattern) {
  const uint64_t segment = kDisk / runs;
  for (uint64_t r = 0; r < runs; ++r) {
    char cmd[256];
    std::snprintf(cmd, sizeof cmd, "write -P 0x%02x %llu %llu", pattern & 0xff,
                  static_cast<unsigned long long>(r * segment + 4 * kMiB), static_cast<unsigned long long>(run_bytes));
    // HMP answers an error as text with exit status 0: any output is a failure.
    CommandResult hmp = RunCommand("virsh -q -c " + lab.hosts()[0].uri + " qemu-monitor-command " + name +
                                   " --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"" + cmd + "\"'");
    if (hmp.exit_code != 0 || hmp.output.find_first_not_of(" \n") != std::string::npos) {
      lab.Die("HMP qemu-io: " + hmp.output);
    }
  }
  return runs * run_bytes;
}

// Bytes out of `host`'s link so far: what its veth's bridge end received (lab.sh: vsh<N>r for host hN).
double LinkBytesOut(const LabHost& host) {
  std::ifstream in("/sys/class/net/vs" + host.name + "r/statistics/rx_bytes");
  double bytes = 0;
  in >> bytes;
  return bytes;
}

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The peer of item 7: Debian's virtnbdbackup (package virtnbdbackup 1.9.15), run by bench/virtnbdbackup_lab.py in
// `reader`, the VM's shadow host, against the VM on the primary (hosts()[0]) in its remote mode: the disk comes over
// NBD (with TLS in a TLS lab) from the primary over the link a round uses, into a backup set in `reader` in its
// default output (stream format, uncompressed). virtnbdbackup_lab.py says what it stands in for (its ssh session;
// its refusal of virt-shadow's checkpoints).
class PeerBackup {
 public:
  struct Figures {
    double wall_ms = 0;    // the command, start to exit (its interpreter's start-up included)
    double extents = 0;    // the bytes it read: its log's "N bytes of data extents to backup"
    double data_file = 0;  // the disk's data file it wrote (vda.full.data, vda.inc.virtnbdbackup.N.data)
    double files = 0;      // every file it wrote or grew: the data file, its log, the VM's XML and qemu-img info,
                           // the checkpoint's XML, and a copy of the kernel and initrd the test guest boots from
    double link = 0;       // bytes out of the primary's link while it ran
    double boot = 0;       // of `files`, the copies of the kernel and initrd (the test guest boots them directly)
  };
  static constexpr char kDir[] = "/var/lib/libvirt/images/rb-virtnbdbackup";  // in `reader`

  PeerBackup(const BenchLab& lab, LabHost reader, std::string vm) : lab_(lab), reader_(std::move(reader)), vm_(vm) {
    std::error_code ignored;
    std::filesystem::remove_all(HostPath(reader_, kDir), ignored);
    // libnbd (as root) looks for its TLS client certificate in /etc/pki/libnbd: the host's own, QEMU's.
    const std::string link = HostPath(reader_, "/etc/pki/libnbd");
    if (!std::filesystem::exists(link)) std::filesystem::create_directory_symlink("/etc/pki/qemu", link);
    const LabHost& primary = lab.hosts()[0];
    std::string pid;
    std::ifstream(HostPath(primary, "/run/libvirt/libvirtd.pid")) >> pid;
    const bool tls = UsesTls(primary.uri);
    // The URI inside the hosts, with the reader's own certificates (lab.sh: host_peer_uri).
    const std::string uri = std::string(tls ? "qemu+tls://" : "qemu+tcp://") + primary.address + "/system";
    // --user/--password: it insists on them for any qemu+ URI but ssh; the lab's libvirtd asks for none.
    command_ = LabScript() + " exec " + reader_.name + " env VS_NBDB_HOST_PID=" + pid + " /usr/bin/python3 " +
               SourceDir() + "/bench/virtnbdbackup_lab.py -U " + uri + " --user lab --password none -d " + vm_ +
               " -o " + kDir + " -I " + primary.address + " -P 10810 -n" + (tls ? " --tls" : "");
  }

  const LabHost& reader() const { return reader_; }

  Figures Run(const std::string& level) {
    const auto before = FileSizes();
    const double link_before = LinkBytesOut(lab_.hosts()[0]);
    const auto start = std::chrono::steady_clock::now();
    CommandResult r = RunCommand(command_ + " -l " + level);
    Figures f;
    f.wall_ms = MillisSince(start);
    f.link = LinkBytesOut(lab_.hosts()[0]) - link_before;
    if (r.exit_code != 0) lab_.Die("virtnbdbackup -l " + level + " -> " + std::to_string(r.exit_code) + ": " + r.output);
    const std::string tag = " bytes of data extents to backup";
    const size_t at = r.output.rfind(tag);
    if (at == std::string::npos) lab_.Die("virtnbdbackup -l " + level + " said nothing of its extents: " + r.output);
    const size_t digits = r.output.find_last_not_of("0123456789", at - 1) + 1;
    f.extents = std::stod(r.output.substr(digits, at - digits));
    for (const auto& [path, size] : FileSizes()) {
      auto old = before.find(path);
      const double grown = double(size) - (old == before.end() ? 0.0 : double(old->second));
      if (grown <= 0) continue;
      f.files += grown;
      const std::string name = std::filesystem::path(path).filename();
      if (old == before.end() && name.starts_with("vda.") && name.ends_with(".data")) f.data_file = grown;
      if (name.starts_with("vmlinuz.") || name.starts_with("initrd.")) f.boot += grown;
    }
    return f;
  }

  // Its interpreter's start-up and imports alone: `virtnbdbackup --version` in the reader (which also gives
  // version()).
  double StartupMs() {
    const auto start = std::chrono::steady_clock::now();
    CommandResult r = RunCommand(LabScript() + " exec " + reader_.name + " /usr/bin/python3 /usr/bin/virtnbdbackup --version");
    const double ms = MillisSince(start);
    if (r.exit_code != 0) lab_.Die("virtnbdbackup --version: " + r.output);
    version_ = r.output.substr(0, r.output.find_last_not_of(" \n") + 1);
    return ms;
  }
  const std::string& version() const { return version_; }

  // Its checkpoints off the VM (as an administrator ending its chain would), its files and the certificate link.
  void Remove() {
    auto checkpoints = lab_.Must(lab_.conn(0).ListCheckpoints(vm_), "checkpoints of " + vm_);
    for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
      if (it->starts_with("virtnbdbackup.")) lab_.Must(lab_.conn(0).DeleteCheckpoint(vm_, *it), "delete " + *it);
    }
    std::error_code ignored;
    std::filesystem::remove_all(HostPath(reader_, kDir), ignored);
    std::filesystem::remove(HostPath(reader_, "/etc/pki/libnbd"), ignored);
  }

 private:
  std::map<std::string, uintmax_t> FileSizes() const {
    std::map<std::string, uintmax_t> sizes;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(HostPath(reader_, kDir), ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) sizes[it->path().string()] = it->file_size();
    }
    return sizes;
  }

  const BenchLab& lab_;
  LabHost reader_;
  std::string vm_;
  std::string command_;
  std::string version_;
};

// Acknowledged records per second over `window`, counted from the serial log.
double AckRate(const BenchLab& lab, const TestGuest& guest, std::chrono::seconds window) {
  const uint64_t before = lab.Must(guest.WaitForAcks(1, 120s), "first ACK");
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  const uint64_t after = lab.Must(guest.WaitForAcks(1, 10s), "ACKs");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return (after - before) / seconds;
}

std::unique_ptr<TestGuest> StartGuest(BenchLab& lab, TestGuest::Options options, bool prefill) {
  auto guest = lab.Must(TestGuest::Define(lab.conn(0), lab.hosts()[0], {}, options), "define " + options.name);
  if (prefill) lab.MustRun("qemu-io -f qcow2 -c 'write -P 0x11 0 " + std::to_string(options.disk_mib) + "M' " +
                           HostPath(lab.hosts()[0], guest->disk_path()) + " >/dev/null");
  lab.Must(lab.conn(0).StartDomain(options.name), "start " + options.name);
  return guest;
}

void WaitReleased(BenchLab& lab, const std::string& name) {
  // The shadow outlives its VM by the grace time; the next guest needs the capacity.
  WaitUntil([&] { return RunCliJson(lab.hosts()[0], "status " + name).status().code() == Code::kInternal; }, 120s);
}

int Run(int reps, int guest_pairs, bool with_peer) {
  if (with_peer && !std::filesystem::exists("/usr/bin/virtnbdbackup")) {
    std::fprintf(stderr, "replication_bench: no /usr/bin/virtnbdbackup for the peer's figures: apt-get install "
                         "virtnbdbackup (scripts/setup.sh does), or --no-peer\n");
    return 1;
  }
  // Its TestGuests remove themselves on the way through; the prefix makes a failed run remove what it left too.
  BenchLab lab({.tool = "replication_bench",
                .prefix = "rb-",
                .min_hosts = 3,
                .on_die = [] {
                  RunCommand(LabScript() + " shape off");
                  // The peer's backup set (section 4), a directory that CleanUp's image removal leaves.
                  RunCommand("rm -rf " + LabDir() + "/h*" + PeerBackup::kDir + " " + LabDir() + "/h*/etc/pki/libnbd");
                }});
  lab.MustRun(LabScript() + " shape 1gbit");
  const std::string interval_1h = PolicyElement("vcpus='1' interval='1h'");

  // ---- 2. Guest impact: one writing guest, tagged with 1 s rounds and untagged in turn (live, through its metadata),
  // in alternating order pair by pair so that a drift of the machine hits both sides alike.
  std::vector<double> plain_rates, replicated_rates;
  if (guest_pairs > 0) {
    auto writer = StartGuest(lab, {.name = "rb-tput", .disk_mib = 256, .kernel_args = "vs.rate=1000"}, false);
    const std::string uri = "--uri http://virt-shadow.org/xmlns/policy/1.0";
    auto tag = [&](bool on) {
      const std::string args = on ? "--key shadow --set \"<policy vcpus='1' interval='1s'/>\"" : "--remove";
      lab.MustRun("virsh -q -c " + lab.hosts()[0].uri + " metadata rb-tput " + uri + " " + args + " --live");
      if (on) {
        WaitSeeded(lab, "rb-tput");
      } else {
        WaitReleased(lab, "rb-tput");
      }
    };
    for (int pair = 0; pair < guest_pairs; ++pair) {
      for (bool replicated : {pair % 2 == 1, pair % 2 == 0}) {
        if (replicated) tag(true);
        (replicated ? replicated_rates : plain_rates).push_back(AckRate(lab, *writer, 20s));
        if (replicated) tag(false);
      }
    }
  }

  // ---- 1. Rounds on a 1 GiB disk full of data.
  auto guest = StartGuest(lab, {.name = "rb-rounds", .disk_mib = 1024, .kernel_args = "vs.rate=1", .metadata = interval_1h},
                          true);
  WaitSeeded(lab, "rb-rounds");
  json status = lab.Must(RunCliJson(lab.hosts()[0], "status rb-rounds"), "status");
  json seed = status["replication"]["recent_rounds"][0];
  // Each case: what it rewrites (runs of 64 KiB-aligned bytes spread over the disk), and per repetition the round's
  // figures as the primary recorded them (steps: where its time went).
  struct Case {
    std::string label;
    uint64_t runs, run_bytes;
    std::vector<double> ratio, duration;
    std::map<std::string, std::vector<double>> steps;
  };
  std::vector<Case> cases = {{"512 KiB", 8, 64 * 1024},
                             {"1 %", 32, kDisk / 100 / 32 / (64 * 1024) * 64 * 1024},
                             {"10 %", 32, kDisk / 10 / 32 / (64 * 1024) * 64 * 1024},
                             {"50 %", 32, kDisk / 2 / 32}};
  int pattern = 0x20;
  for (int rep = 0; rep < reps; ++rep) {
    for (Case& c : cases) {
      Sync(lab, "rb-rounds");  // start from a clean bitmap
      const uint64_t dirty = DirtyRuns(lab, "rb-rounds", c.runs, c.run_bytes, ++pattern);
      json round = Sync(lab, "rb-rounds");
      c.ratio.push_back(round["bytes_sent"].get<double>() / dirty);
      c.duration.push_back(round["duration_ms"].get<double>());
      for (const auto& [step, ms] : round["steps"].items()) c.steps[step].push_back(ms.get<double>());
    }
  }

  // ---- 4. The peer: Debian's virtnbdbackup backing up the same dirty sets over the same link. Its full backup
  // first (it starts its chain: checkpoint virtnbdbackup.0), then per case and repetition: the guest paused, so that
  // nothing but the bench writes; both tools' bases taken (a virtnbdbackup increment, a round); the same rewrite;
  // then one round and one increment, in turn first (a libvirt backup job is one per domain at a time), each since
  // its own base: the same dirty blocks for both.
  struct PeerCase {
    std::vector<double> inc_ms, round_ms, sync_ms, extents, data_file, files, boot, inc_link, sent, round_link;
  };
  std::optional<PeerBackup> peer;
  PeerBackup::Figures peer_full;
  std::vector<PeerCase> peer_cases(cases.size());
  std::vector<double> startup;
  if (with_peer) {
    const std::string shadow_host = lab.Must(RunCliJson(lab.hosts()[0], "status rb-rounds"), "status")["shadows"][0]["host"];
    auto reader = std::find_if(lab.hosts().begin(), lab.hosts().end(), [&](const LabHost& h) { return h.name == shadow_host; });
    if (reader == lab.hosts().end()) lab.Die("rb-rounds's shadow host " + shadow_host + " is not in the lab");
    peer.emplace(lab, *reader, "rb-rounds");
    for (int i = 0; i < 3; ++i) startup.push_back(peer->StartupMs());
    peer_full = peer->Run("full");
  }
  for (int rep = 0; rep < (with_peer ? reps : 0); ++rep) {
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      PeerCase& p = peer_cases[i];
      lab.Must(lab.conn(0).SuspendDomain("rb-rounds"), "pause rb-rounds");
      peer->Run("inc");
      Sync(lab, "rb-rounds");
      DirtyRuns(lab, "rb-rounds", c.runs, c.run_bytes, ++pattern);
      auto round = [&] {
        const double link_before = LinkBytesOut(lab.hosts()[0]);
        const auto start = std::chrono::steady_clock::now();
        json r = Sync(lab, "rb-rounds");
        p.sync_ms.push_back(MillisSince(start));
        p.round_link.push_back(LinkBytesOut(lab.hosts()[0]) - link_before);
        p.round_ms.push_back(r["duration_ms"].get<double>());
        p.sent.push_back(r["bytes_sent"].get<double>());
      };
      auto increment = [&] {
        const PeerBackup::Figures f = peer->Run("inc");
        p.inc_ms.push_back(f.wall_ms);
        p.extents.push_back(f.extents);
        p.data_file.push_back(f.data_file);
        p.files.push_back(f.files);
        p.boot.push_back(f.boot);
        p.inc_link.push_back(f.link);
      };
      // Each writes into the same disk of this machine: the page cache is flushed before each (untimed), so that
      // neither pays for the other's writeback, nor for the bases'.
      auto flushed = [&](auto step) {
        RunCommand("sync");
        step();
      };
      if ((rep + int(i)) % 2 == 0) {
        flushed(round);
        flushed(increment);
      } else {
        flushed(increment);
        flushed(round);
      }
      lab.Must(lab.conn(0).ResumeDomain("rb-rounds"), "resume rb-rounds");
    }
  }
  if (peer) peer->Remove();

  // ---- 3. Resync after SIGKILL of QEMU, 1 % rewritten first.
  Sync(lab, "rb-rounds");
  const uint64_t dirty = DirtyRuns(lab, "rb-rounds", cases[1].runs, cases[1].run_bytes, ++pattern);
  lab.MustRun("pkill -KILL -f 'guest=[r]b-rounds,'");
  WaitUntil([&] {
    auto state = lab.conn(0).GetDomainState("rb-rounds");
    return state.ok() && *state == virt::DomainState::kShutoff;
  }, 30s);
  lab.Must(lab.conn(0).StartDomain("rb-rounds"), "restart rb-rounds");
  json resync;
  WaitUntil([&] {
    (void)RunCliJson(lab.hosts()[0], "--timeout 600 sync rb-rounds");
    auto s = RunCliJson(lab.hosts()[0], "status rb-rounds");
    if (!s.ok()) return false;
    for (const json& r : (*s)["replication"]["recent_rounds"]) {
      if (r["mode"] == "resync") resync = r;
    }
    return resync.is_object();
  }, 300s);
  if (!resync.is_object()) lab.Die("no resync round after the SIGKILL");
  guest.reset();
  WaitReleased(lab, "rb-rounds");

  // ---- Baseline: virsh migrate --copy-storage-all of the same kind of disk (1 GiB of data), untagged.
  auto mig = StartGuest(lab, {.name = "rb-mig", .disk_mib = 1024, .kernel_args = "vs.rate=1"}, true);
  lab.MustRun("qemu-img create -q -f qcow2 " + HostPath(lab.hosts()[2], mig->disk_path()) + " 1G");
  lab.Must(mig->WaitForAcks(1, 120s).status(), "rb-mig boot");
  virt::MigrationOptions options;
  options.postcopy = false;
  options.copy_storage_all = true;
  options.tls = UsesTls(lab.hosts()[2].uri);
  auto migrated =
      lab.Must(lab.conn(0).MigrateLive("rb-mig", lab.hosts()[2].uri, options), "migrate --copy-storage-all");
  mig->MovedTo(lab.conn(2));
  mig.reset();
  std::remove(HostPath(lab.hosts()[2], "/var/lib/libvirt/images/rb-mig.qcow2").c_str());
  lab.MustRun(LabScript() + " shape off");

  const double seed_bytes = seed["bytes_sent"], seed_ms = seed["duration_ms"];
  const double migrate_bytes = migrated.disk_bytes_processed.value_or(0);
  const double migrate_ms = std::chrono::duration<double, std::milli>(migrated.elapsed).count();
  std::printf("replication_bench: 1 GiB qcow2 disk full of data, lab links 1 Gbit/s, %d repetitions (medians)\n\n", reps);
  std::printf("baselines: full copy over NBD (seed round) %.0f MiB in %.0f ms; virsh migrate --copy-storage-all "
              "moved %.0f MiB of disk in %.0f ms\n\n", seed_bytes / kMiB, seed_ms, migrate_bytes / kMiB, migrate_ms);
  const double migrate_rate = migrate_ms > 0 ? migrate_bytes / kMiB / (migrate_ms / 1000) : 0;
  std::printf("seed (full copy of 1 GiB) against --copy-storage-all: %.0f ms / %.0f ms = %.2f (aim: 1.2 or less)\n\n",
              seed_ms, migrate_ms, migrate_ms > 0 ? seed_ms / migrate_ms : 0.0);
  std::printf("%-9s %-11s %-10s %-11s %-15s %-17s %-17s %-15s\n", "dirtied", "sent/dirty", "round ms", "MiB/s",
              "MiB/s / migrate", "round/full-copy t", "sent/full-copy B", "sent/migrate B");
  for (const Case& c : cases) {
    const double r = Median(c.ratio), d = Median(c.duration);
    const double sent = r * c.runs * c.run_bytes;
    const double rate = d > 0 ? sent / kMiB / (d / 1000) : 0;
    std::printf("%-9s %-11.3f %-10.0f %-11.1f %-15.3f %-17.3f %-17.3f %-15.3f\n", c.label.c_str(), r, d, rate,
                migrate_rate > 0 ? rate / migrate_rate : 0.0, d / seed_ms, sent / seed_bytes,
                migrate_bytes > 0 ? sent / migrate_bytes : 0.0);
  }
  std::printf("(migrate's mirror: %.1f MiB/s; aims: the 50 %% round (512 MiB) at 0.9 of it or more, the 512 KiB round "
              "at 300 ms or less)\n\nwhere a round's time goes (median ms of each step, from the round's record):\n%-9s",
              migrate_rate, "dirtied");
  for (const auto& [step, values] : cases[0].steps) std::printf(" %s", step.c_str());
  std::printf("\n");
  for (const Case& c : cases) {
    std::printf("%-9s", c.label.c_str());
    for (const auto& [step, values] : c.steps) std::printf(" %*.0f", int(step.size()), Median(values));
    std::printf("\n");
  }
  if (peer) {
    std::printf("\nthe peer: Debian's virtnbdbackup %s, run in %s (the shadow host) reading rb-rounds from %s over the "
                "same link, in its remote mode through bench/virtnbdbackup_lab.py (what needs ssh done by nsenter; "
                "virt-shadow's vs-* checkpoints not taken as foreign), NBD%s, stream format, uncompressed; guest "
                "paused from both bases to both backups, the same rewrite for both (medians):\n",
                peer->version().c_str(), peer->reader().name.c_str(), lab.hosts()[0].name.c_str(),
                UsesTls(lab.hosts()[0].uri) ? " over TLS" : "");
    std::printf("  full backup (-l full): %.0f MiB read, %.1f MiB data file, %.1f MiB of files, %.1f MiB out of %s's "
                "link, in %.0f ms; the seed round: %.0f MiB in %.0f ms: time %.2f, bytes read %.3f of the seed's\n",
                peer_full.extents / kMiB, peer_full.data_file / kMiB, peer_full.files / kMiB, peer_full.link / kMiB,
                lab.hosts()[0].name.c_str(), peer_full.wall_ms, seed_bytes / kMiB, seed_ms,
                seed_ms > 0 ? peer_full.wall_ms / seed_ms : 0.0, seed_bytes > 0 ? peer_full.extents / seed_bytes : 0.0);
    std::printf("  its start-up alone (virtnbdbackup --version): %.0f ms; every run also waits 1 s before its NBD "
                "connection (libvirtnbdbackup/nbdcli/client.py)\n", Median(startup));
    std::printf("  time per increment:\n  %-9s %-12s %-12s %-12s %-13s %-12s\n", "dirtied", "inc ms", "round ms",
                "sync ms", "inc/round", "inc/sync");
    for (size_t i = 0; i < cases.size(); ++i) {
      const PeerCase& p = peer_cases[i];
      const double inc = Median(p.inc_ms), round = Median(p.round_ms), sync = Median(p.sync_ms);
      std::printf("  %-9s %-12.0f %-12.0f %-12.0f %-13.2f %-12.2f\n", cases[i].label.c_str(), inc, round, sync,
                  round > 0 ? inc / round : 0.0, sync > 0 ? inc / sync : 0.0);
    }
    std::printf("  bytes per increment (MiB):\n  %-9s %-10s %-10s %-10s %-10s %-11s %-11s %-11s %-12s\n", "dirtied",
                "inc read", "data file", "its files", "round sent", "read/sent", "inc link", "round link",
                "link inc/rnd");
    for (size_t i = 0; i < cases.size(); ++i) {
      const PeerCase& p = peer_cases[i];
      const double read = Median(p.extents), sent = Median(p.sent), inc_link = Median(p.inc_link),
                   round_link = Median(p.round_link);
      std::printf("  %-9s %-10.2f %-10.2f %-10.2f %-10.2f %-11.3f %-11.2f %-11.2f %-12.3f\n", cases[i].label.c_str(),
                  read / kMiB, Median(p.data_file) / kMiB, Median(p.files) / kMiB, sent / kMiB,
                  sent > 0 ? read / sent : 0.0, inc_link / kMiB, round_link / kMiB,
                  round_link > 0 ? inc_link / round_link : 0.0);
    }
    std::printf("  (inc: virtnbdbackup -l inc, from its start to its exit; round: the round's own record; sync: `virt-shadow "
                "sync` in %s, start to exit, both through lab.sh exec; inc read: its dirty extents; its files: all it wrote, %.1f MiB of them "
                "copies of the kernel and initrd the test guest boots directly, which cross no link here; link: bytes "
                "out of %s's link during each, all traffic)\n",
                lab.hosts()[0].name.c_str(), Median(peer_cases[0].boot) / kMiB, lab.hosts()[0].name.c_str());
  }
  if (guest_pairs > 0) {
    std::vector<double> ratios;
    std::printf("\nguest writes (64 KiB fsync'd records/s over 20 s), one guest, %d alternating pairs:\n", guest_pairs);
    for (size_t i = 0; i < plain_rates.size(); ++i) {
      ratios.push_back(plain_rates[i] > 0 ? replicated_rates[i] / plain_rates[i] : 0.0);
      std::printf("  pair %zu: untagged %.1f, with 1 s rounds %.1f: ratio %.3f\n", i + 1, plain_rates[i],
                  replicated_rates[i], ratios.back());
    }
    const auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("  median ratio %.3f (spread %.3f to %.3f; aim: 0.95 or better)\n", Median(ratios), *low, *high);
  }
  const double resync_sent = resync["bytes_sent"];
  std::printf("resync after SIGKILL (%.0f MiB rewritten before the kill): %.1f MiB sent = %.4f of the disk, %.3f of "
              "the full copy, in %.0f ms\n",
              double(dirty) / kMiB, resync_sent / kMiB, resync_sent / kDisk, resync_sent / seed_bytes,
              resync["duration_ms"].get<double>());
  return 0;
}

}  // namespace
}  // namespace vs::lab

int main(int argc, char** argv) {
  int reps = 3;
  int guest_pairs = 5;
  bool with_peer = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--guest-pairs" && i + 1 < argc) {
      guest_pairs = std::max(0, std::atoi(argv[++i]));
    } else if (arg == "--no-peer") {
      with_peer = false;
    } else {
      std::fprintf(stderr, "usage: replication_bench [--reps N] [--guest-pairs N (default 5, 0 skips)] [--no-peer (no "
                           "virtnbdbackup figures)]   (needs the lab up and installed)\n");
      return 2;
    }
  }
  return vs::lab::Run(reps, guest_pairs, with_peer);
}
