// Test-side access to the running lab (scripts/lab.sh): its inventory, the root namespace's view of each host's
// private directories, and a test guest whose records the data-loss oracle checks.
//
// The lab is started and stopped by ctest fixtures (tests/lab/CMakeLists.txt); a lab test that finds no lab fails
// with a message saying so rather than skipping.
// Thread-safety: none needed; one test thread uses these.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/status.h"
#include "images/oracle/oracle.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::lab {

struct LabHost {
  std::string name;  // h1, h2, ...
  std::string zone;
  std::string address;
  std::string uri;
};

std::string LabDir();
std::string SourceDir();
std::string BinaryDir();
// "<source>/scripts/lab.sh", to run lab commands (exec, shadowd, uri) from tests.
std::string LabScript();
StatusOr<std::vector<LabHost>> ReadInventory();
// The root namespace's path of `path` inside host `host` (e.g. its /var/lib/libvirt/images/x.qcow2).
std::string HostPath(const LabHost& host, const std::string& path);
// Whether a lab host's URI is TLS (qemu+tls: a lab started with TLS, the default of scripts/lab.sh). Migrations to
// it must then ask for TLS (MigrationOptions::tls): its qemu.conf refuses others (migrate_tls_force).
inline bool UsesTls(const std::string& libvirt_uri) { return libvirt_uri.starts_with("qemu+tls://"); }

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
CommandResult RunCommand(const std::string& command);

// Polls `done` every 250 ms until it is true or `timeout` passes.
template <typename F>
bool WaitUntil(F done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return done();
}

// The virt-shadow CLI the lab tests run: $VS_LAB_CLI when set (e.g. /usr/bin/virt-shadow, the installed package's,
// with `lab.sh install --installed`), else this build's cli/virt-shadow.
std::string CliPath();
// The virt-shadow hook libvirtd runs in `host`, as a path inside that host: the build's copy that `lab.sh install
// BUILD_DIR` puts at /etc/libvirt/hooks/qemu, or else the package's link /etc/libvirt/hooks/qemu.d/virt-shadow that
// `lab.sh install --installed` puts there.
std::string HookPath(const LabHost& host);
// Runs CliPath() inside lab host `host` (it talks to that host's shadowd and libvirtd).
CommandResult RunCli(const LabHost& host, const std::string& args);
// The same with --json, parsed; an error carries the exit code and the output.
StatusOr<nlohmann::json> RunCliJson(const LabHost& host, const std::string& args);

// A virt-shadow policy element for <metadata>, e.g. PolicyElement("vcpus='1' interval='2s'").
std::string PolicyElement(const std::string& attributes);

// A test guest (images/): a domain whose workload writes acknowledged records. Its disk is a qcow2 under each
// host's private /var/lib/libvirt/images; its serial log is in the lab's shared logs/ folder, so that it continues
// across migrations. The destructor destroys and undefines it wherever it was last placed and removes its files.
class TestGuest {
 public:
  struct Options {
    std::string name;
    uint64_t disk_mib = 64;
    int memory_mib = 256;
    std::string kernel_args = "vs.rate=5";
    std::string metadata;  // a child of <metadata>, e.g. a virt-shadow policy element
    uint64_t raw_disk_mib = 0;  // > 0: a second disk, vdb, a raw image the guest does not touch
  };
  // Creates the disk on `host`, empty images of the same size on `also_on` (migration targets), defines and
  // starts the domain on `host`.
  static StatusOr<std::unique_ptr<TestGuest>> Start(virt::Hypervisor& host_conn, const LabHost& host,
                                                    const std::vector<LabHost>& also_on, Options options);
  // The same without starting it.
  static StatusOr<std::unique_ptr<TestGuest>> Define(virt::Hypervisor& host_conn, const LabHost& host,
                                                     const std::vector<LabHost>& also_on, Options options);
  ~TestGuest();

  const std::string& name() const { return options_.name; }
  std::string disk_path() const { return "/var/lib/libvirt/images/" + options_.name + ".qcow2"; }
  std::string raw_disk_path() const { return "/var/lib/libvirt/images/" + options_.name + "-data.raw"; }
  std::string serial_log_path() const { return LabDir() + "/logs/" + options_.name + ".log"; }
  std::string SerialLog() const;

  // Waits until the serial log holds at least `count` ACKs; returns the last ACKed sequence number.
  StatusOr<uint64_t> WaitForAcks(uint64_t count, std::chrono::seconds timeout) const;
  // Runs the oracle over the guest's disk as seen on `host` (readable while the domain runs).
  StatusOr<oracle::Report> Check(const LabHost& host, const oracle::AnalyseOptions& options = {}) const;
  // Tells the destructor where the domain lives now (after a migration).
  void MovedTo(virt::Hypervisor& conn) { current_ = &conn; }

 private:
  TestGuest(virt::Hypervisor& conn, Options options, std::vector<std::string> disk_files)
      : current_(&conn), options_(std::move(options)), disk_files_(std::move(disk_files)) {}
  virt::Hypervisor* current_;
  Options options_;
  std::vector<std::string> disk_files_;  // root-namespace paths, removed at the end
};

// Base fixture of lab tests: reads the inventory and connects to every lab host through the project's libvirt
// layer (conns_[i] is hosts_[i]).
class LabTest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::vector<LabHost> hosts_;
  std::unique_ptr<virt::LibvirtRuntime> runtime_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  std::vector<std::unique_ptr<virt::Hypervisor>> conns_;

  // RunCli / RunCliJson on hosts_[host].
  CommandResult Cli(size_t host, const std::string& args) const { return RunCli(hosts_[host], args); }
  StatusOr<nlohmann::json> CliJson(size_t host, const std::string& args) const {
    return RunCliJson(hosts_[host], args);
  }
  CommandResult Virsh(size_t host, const std::string& args) const;
};

}  // namespace vs::lab
