#include "tests/lab/lab_env.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "images/oracle/nbd_block_reader.h"
#include "images/oracle/serial_log.h"

namespace vs::lab {

std::string LabDir() {
  const char* dir = std::getenv("VS_LAB_DIR");
  return dir && *dir ? dir : "/var/tmp/virt-shadow-lab";
}

std::string SourceDir() { return VS_SOURCE_DIR; }
std::string BinaryDir() { return VS_BINARY_DIR; }
std::string LabScript() { return SourceDir() + "/scripts/lab.sh"; }

StatusOr<std::vector<LabHost>> ReadInventory() {
  std::ifstream in(LabDir() + "/hosts.tsv");
  if (!in) return FailedPrecondition("no lab at " + LabDir() + ": start it with 'scripts/lab.sh up'");
  std::vector<LabHost> hosts;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    LabHost h;
    std::string cost;
    if (fields >> h.name >> h.zone >> h.address >> h.uri >> cost) hosts.push_back(h);
  }
  if (hosts.size() < 2) return FailedPrecondition("the lab has fewer than 2 hosts; run 'scripts/lab.sh up 3'");
  return hosts;
}

std::string HostPath(const LabHost& host, const std::string& path) { return LabDir() + "/" + host.name + path; }

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  int rc = pclose(pipe);
  result.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return result;
}

StatusOr<std::unique_ptr<TestGuest>> TestGuest::Start(virt::Hypervisor& host_conn, const LabHost& host,
                                                      const std::vector<LabHost>& also_on, Options options) {
  VS_ASSIGN_OR_RETURN(auto guest, Define(host_conn, host, also_on, std::move(options)));
  VS_RETURN_IF_ERROR(host_conn.StartDomain(guest->name()));
  return guest;
}

StatusOr<std::unique_ptr<TestGuest>> TestGuest::Define(virt::Hypervisor& host_conn, const LabHost& host,
                                                       const std::vector<LabHost>& also_on, Options options) {
  std::vector<std::string> files;
  std::string image = "/var/lib/libvirt/images/" + options.name + ".qcow2";
  for (const LabHost* h : [&] {
         std::vector<const LabHost*> all{&host};
         for (const auto& o : also_on) all.push_back(&o);
         return all;
       }()) {
    std::string file = HostPath(*h, image);
    CommandResult r = RunCommand("qemu-img create -q -f qcow2 '" + file + "' " + std::to_string(options.disk_mib) + "M");
    if (r.exit_code != 0) return Internal("qemu-img create " + file + ": " + r.output);
    files.push_back(file);
    if (options.raw_disk_mib > 0) {
      std::string raw = HostPath(*h, "/var/lib/libvirt/images/" + options.name + "-data.raw");
      r = RunCommand("qemu-img create -q -f raw '" + raw + "' " + std::to_string(options.raw_disk_mib) + "M");
      if (r.exit_code != 0) return Internal("qemu-img create " + raw + ": " + r.output);
      files.push_back(raw);
    }
  }
  std::string log = LabDir() + "/logs/" + options.name + ".log";
  std::remove(log.c_str());
  CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh '" + options.name + "' '" + image + "' '" + log +
                          "' --memory " + std::to_string(options.memory_mib) + " --cmdline '" +
                          options.kernel_args + "' --metadata \"" + options.metadata + "\"");
  if (xml.exit_code != 0) return Internal("domain-xml.sh: " + xml.output);
  if (options.raw_disk_mib > 0) {
    const size_t after_first_disk = xml.output.find("</disk>") + std::string("</disk>").size();
    xml.output.insert(after_first_disk, "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"
                                        "/var/lib/libvirt/images/" + options.name + "-data.raw'/><target dev='vdb' "
                                        "bus='virtio'/></disk>");
  }
  std::unique_ptr<TestGuest> guest(new TestGuest(host_conn, options, files));
  VS_RETURN_IF_ERROR(host_conn.DefineDomain(xml.output).status());
  return guest;
}

TestGuest::~TestGuest() {
  current_->DestroyDomain(options_.name).IgnoreError();  // best effort: the lab's down removes leftovers
  current_->UndefineDomain(options_.name).IgnoreError();
  for (const auto& f : disk_files_) std::remove(f.c_str());
}

std::string TestGuest::SerialLog() const {
  std::ifstream in(serial_log_path());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

StatusOr<uint64_t> TestGuest::WaitForAcks(uint64_t count, std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t acks = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    oracle::SerialLog log = oracle::ParseSerialLog(SerialLog());
    acks = log.acks.size();
    if (acks >= count) return log.acks.back().seq;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return DeadlineExceeded("guest " + options_.name + " printed " + std::to_string(acks) + " ACKs in " +
                          std::to_string(timeout.count()) + " s, expected " + std::to_string(count) +
                          "; serial log: " + serial_log_path());
}

StatusOr<oracle::Report> TestGuest::Check(const LabHost& host, const oracle::AnalyseOptions& options) const {
  VS_ASSIGN_OR_RETURN(auto disk, oracle::OpenDisk(HostPath(host, disk_path()), oracle::ImageFormat::kQcow2));
  return oracle::Analyse(*disk, SerialLog(), options);
}

void LabTest::SetUp() {
  auto hosts = ReadInventory();
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  hosts_ = *hosts;
  auto runtime = virt::LibvirtRuntime::Start();
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  runtime_ = std::move(*runtime);
  for (const auto& host : hosts_) {
    auto conn = runtime_->Connect(host.uri, *clock_);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conns_.push_back(std::move(*conn));
  }
}

std::string PolicyElement(const std::string& attributes) {
  return "<shadow:policy xmlns:shadow='http://virt-shadow.org/xmlns/policy/1.0' " + attributes + "/>";
}

std::string CliPath() {
  const char* cli = std::getenv("VS_LAB_CLI");
  return cli && *cli ? cli : BinaryDir() + "/cli/virt-shadow";
}

std::string HookPath(const LabHost& host) {
  const std::string build_hook = "/etc/libvirt/hooks/qemu";
  return std::filesystem::exists(HostPath(host, build_hook)) ? build_hook : "/etc/libvirt/hooks/qemu.d/virt-shadow";
}

CommandResult RunCli(const LabHost& host, const std::string& args) {
  return RunCommand(LabScript() + " exec " + host.name + " " + CliPath() + " " + args);
}

StatusOr<nlohmann::json> RunCliJson(const LabHost& host, const std::string& args) {
  CommandResult r = RunCli(host, "--json " + args);
  if (r.exit_code != 0) return Internal("virt-shadow " + args + " exited " + std::to_string(r.exit_code) + ": " + r.output);
  auto json = nlohmann::json::parse(r.output, nullptr, false);
  if (json.is_discarded()) return Internal("virt-shadow " + args + " printed no JSON: " + r.output);
  return json;
}

CommandResult LabTest::Virsh(size_t host, const std::string& args) const {
  return RunCommand("virsh -q -c " + hosts_[host].uri + " " + args);
}

}  // namespace vs::lab
