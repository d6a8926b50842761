// Lab test of the libvirt layer beyond migration, against real libvirtds: each lab host is its own host
// (hostname, storage), images are created on a peer over qemu+tcp, metadata is set and watched live, a running
// guest is switched onto a disk-only snapshot overlay and committed back.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
constexpr char kPolicyNs[] = "http://virt-shadow.org/xmlns/policy/1.0";

using HypervisorTest = LabTest;

// The names of the files in `host`'s image folder that start with `prefix`.
std::set<std::string> GuestFiles(const LabHost& host, const std::string& prefix) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(HostPath(host, "/var/lib/libvirt/images"))) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.insert(name);
  }
  return names;
}

TEST_F(HypervisorTest, EveryLabHostIsItsOwnHost) {
  std::set<std::string> names;
  for (auto& conn : conns_) {
    auto name = conn->Hostname();
    ASSERT_TRUE(name.ok()) << name.status().ToString();
    names.insert(*name);
    auto capacity = conn->GetNodeCapacity();
    ASSERT_TRUE(capacity.ok()) << capacity.status().ToString();
    EXPECT_GE(capacity->cpus, 1);
    EXPECT_GT(capacity->memory_kib, 0u);
  }
  EXPECT_EQ(names.size(), conns_.size()) << "two lab hosts report the same hostname";
}

TEST_F(HypervisorTest, CreatesImagesOnAPeerIdempotentlyAndStorageIsNotShared) {
  const std::string path = "/var/lib/libvirt/images/hv-test.qcow2";
  virt::Hypervisor& peer = *conns_[1];
  ASSERT_TRUE(peer.DeleteImage(path).ok());
  Status created = peer.CreateImage(path, 32ull << 20, virt::ImageFormat::kQcow2);
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_TRUE(std::filesystem::exists(HostPath(hosts_[1], path)));
  EXPECT_FALSE(std::filesystem::exists(HostPath(hosts_[0], path))) << "h1 sees h2's image: storage is shared";
  CommandResult info = RunCommand("qemu-img info -U --output=json '" + HostPath(hosts_[1], path) + "'");
  EXPECT_NE(info.output.find("\"virtual-size\": 33554432"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"format\": \"qcow2\""), std::string::npos) << info.output;

  auto size = peer.ImageVirtualSize(path);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 32ull << 20);
  EXPECT_TRUE(peer.CreateImage(path, 32ull << 20, virt::ImageFormat::kQcow2).ok()) << "a re-create must be a no-op";
  EXPECT_EQ(peer.CreateImage(path, 64ull << 20, virt::ImageFormat::kQcow2).code(), Code::kAlreadyExists);

  ASSERT_TRUE(peer.DeleteImage(path).ok());
  EXPECT_FALSE(std::filesystem::exists(HostPath(hosts_[1], path)));
  EXPECT_TRUE(peer.DeleteImage(path).ok()) << "deleting a missing image must be OK";
  EXPECT_EQ(peer.ImageVirtualSize(path).status().code(), Code::kNotFound);
}

TEST_F(HypervisorTest, MetadataIsSetReadRemovedAndWatchedLive) {
  virt::Hypervisor& host = *conns_[0];
  const std::string name = "hv-meta";
  CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh " + name + " /var/lib/libvirt/images/" + name +
                          ".qcow2 " + LabDir() + "/logs/" + name + ".log");
  ASSERT_EQ(xml.exit_code, 0) << xml.output;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<virt::DomainEvent> events;
  auto watch = host.WatchDomains([&](const virt::DomainEvent& e) {
    std::lock_guard lock(mu);
    if (e.name == name) events.push_back(e);
    cv.notify_all();
  });
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  auto wait_for = [&](virt::DomainEvent::Kind kind) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] {
      return std::any_of(events.begin(), events.end(), [&](const auto& e) { return e.kind == kind; });
    });
  };

  ASSERT_TRUE(host.DefineDomain(xml.output).ok());
  EXPECT_TRUE(wait_for(virt::DomainEvent::Kind::kDefined)) << "no 'defined' event";
  auto none = host.GetMetadata(name, kPolicyNs);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  Status set = host.SetMetadata(name, kPolicyNs, "shadow", "<policy enabled='yes' vcpus='1'/>");
  ASSERT_TRUE(set.ok()) << set.ToString();
  EXPECT_TRUE(wait_for(virt::DomainEvent::Kind::kMetadataChanged)) << "no 'metadata-changed' event";
  auto policy = host.GetMetadata(name, kPolicyNs);
  ASSERT_TRUE(policy.ok() && policy->has_value()) << policy.status().ToString();
  EXPECT_NE((*policy)->find("vcpus=\"1\""), std::string::npos) << **policy;
  auto full = host.GetDomainXml(name);
  ASSERT_TRUE(full.ok());
  EXPECT_NE(full->find(kPolicyNs), std::string::npos) << "the policy is not in the domain XML";

  ASSERT_TRUE(host.SetMetadata(name, kPolicyNs, "shadow", "").ok());
  auto removed = host.GetMetadata(name, kPolicyNs);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed->has_value());

  ASSERT_TRUE(host.UndefineDomain(name).ok());
  EXPECT_TRUE(wait_for(virt::DomainEvent::Kind::kUndefined)) << "no 'undefined' event";
  EXPECT_EQ(host.GetDomainState(name).status().code(), Code::kNotFound);
}

// libvirtd closes a connection (here: virt-admin's client-disconnect, as a restart or a keepalive timeout would):
// the Hypervisor opens it again on its next call instead of failing every call with "client socket is closed"
// until the process restarts (a shadowd did so in the lab), and its domain watch follows to the new connection.
TEST_F(HypervisorTest, AConnectionLibvirtdClosedIsOpenedAgainAndItsWatchFollows) {
  auto opened = runtime_->Connect(hosts_[0].uri, *clock_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  virt::Hypervisor& host = **opened;
  const std::string name = "hv-reconnect";
  CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh " + name + " /var/lib/libvirt/images/" + name +
                                 ".qcow2 " + LabDir() + "/logs/" + name + ".log");
  ASSERT_EQ(xml.exit_code, 0) << xml.output;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<virt::DomainEvent::Kind> events;
  auto watch = host.WatchDomains([&](const virt::DomainEvent& e) {
    std::lock_guard lock(mu);
    if (e.name == name) events.push_back(e.kind);
    cv.notify_all();
  });
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(host.ListDomainNames().ok());

  // Every TCP client (plain or TLS) of h1's libvirtd that comes from this (root) namespace, the bridge's address:
  // this test's.
  const std::string admin = LabScript() + " exec " + hosts_[0].name + " virt-admin -q ";
  CommandResult clients = RunCommand(admin + "client-list libvirtd");
  ASSERT_EQ(clients.exit_code, 0) << clients.output;
  int disconnected = 0;
  std::istringstream lines(clients.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, transport;
    if (!(fields >> id >> transport) || (transport != "tcp" && transport != "tls")) continue;
    CommandResult info = RunCommand(admin + "client-info libvirtd " + id);
    if (info.output.find("sock_addr      : 10.77.0.1:") == std::string::npos) continue;
    CommandResult cut = RunCommand(admin + "client-disconnect libvirtd " + id);
    EXPECT_EQ(cut.exit_code, 0) << cut.output;
    ++disconnected;
  }
  ASSERT_GE(disconnected, 1) << "no TCP client of this test found on " << hosts_[0].name << ":\n" << clients.output;

  // The client learns of the close from its event loop; the next call after that reopens the connection.
  StatusOr<std::vector<std::string>> listed = host.ListDomainNames();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!listed.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    listed = host.ListDomainNames();
  }
  ASSERT_TRUE(listed.ok()) << "the connection was not opened again: " << listed.status().ToString();
  ASSERT_TRUE(host.DefineDomain(xml.output).ok());
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] {
      return std::find(events.begin(), events.end(), virt::DomainEvent::Kind::kDefined) != events.end();
    })) << "the watch did not follow to the new connection";
  }
  EXPECT_TRUE(host.UndefineDomain(name).ok());
}

// The disk half of the live switchover: a running guest moves onto an overlay (its base image freezes), then an
// active commit folds the overlay back and pivots onto the base, and no acknowledged record is lost on the way.
TEST_F(HypervisorTest, DiskOnlySnapshotThenActiveCommitPivotsBackWithTheGuestRunning) {
  virt::Hypervisor& host = *conns_[0];
  // vdb (raw, untouched by the guest) is not listed: it must stay on its image, without an overlay.
  auto started =
      TestGuest::Start(host, hosts_[0], {}, {.name = "hvsnap", .kernel_args = "vs.rate=20", .raw_disk_mib = 8});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  TestGuest& guest = **started;
  const std::string base = guest.disk_path();
  const std::string top = base + ".vs-top";
  std::remove(HostPath(hosts_[0], top).c_str());  // left by an earlier failed run
  ASSERT_TRUE(guest.WaitForAcks(10, 90s).ok());

  EXPECT_EQ(host.CreateDiskOnlySnapshot(guest.name(), {{.target = "vdz", .overlay_path = top}}).code(),
            Code::kInvalidArgument);
  Status snapshot = host.CreateDiskOnlySnapshot(guest.name(), {{.target = "vda", .overlay_path = top}});
  ASSERT_TRUE(snapshot.ok()) << snapshot.ToString();
  auto xml = host.GetDomainXml(guest.name());
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  const size_t top_source = xml->find("<source file='" + top + "'");
  ASSERT_NE(top_source, std::string::npos) << "vda is not on the overlay:\n" << *xml;
  const size_t backing = xml->find("<backingStore type='file'", top_source);
  ASSERT_NE(backing, std::string::npos) << *xml;
  EXPECT_EQ(xml->find("<source file='" + base + "'", backing), xml->find("<source file='", backing))
      << "the overlay's backing file is not the base image:\n" << *xml;
  EXPECT_EQ(xml->find("<backingStore type='file'", backing + 1), std::string::npos)
      << "a disk besides vda got an overlay:\n" << *xml;
  EXPECT_EQ(GuestFiles(hosts_[0], guest.name()),
            (std::set<std::string>{"hvsnap.qcow2", "hvsnap.qcow2.vs-top", "hvsnap-data.raw"}))
      << "libvirt names an overlay of an unlisted disk <image minus extension>.<snapshot name>";

  // The base is frozen: records acknowledged from now on land only in the overlay.
  auto frozen = guest.Check(hosts_[0], {.prefix_mode = true});
  ASSERT_TRUE(frozen.ok() && frozen->ok() && frozen->newest_seq_on_disk) << oracle::FormatReportText(*frozen);
  auto acked = guest.WaitForAcks(oracle::ParseSerialLog(guest.SerialLog()).acks.size() + 40, 90s);
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  auto still_frozen = guest.Check(hosts_[0], {.prefix_mode = true});
  ASSERT_TRUE(still_frozen.ok());
  EXPECT_EQ(still_frozen->newest_seq_on_disk, frozen->newest_seq_on_disk) << "the base changed under the overlay";

  Status commit = host.BlockCommitActive(guest.name(), "vda", 60s);
  ASSERT_TRUE(commit.ok()) << commit.ToString();
  xml = host.GetDomainXml(guest.name());
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_NE(xml->find("<source file='" + base + "'"), std::string::npos) << "vda is not back on the base:\n" << *xml;
  EXPECT_EQ(xml->find("<source file='" + top + "'"), std::string::npos) << *xml;
  auto state = host.GetDomainState(guest.name());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  EXPECT_TRUE(std::filesystem::exists(HostPath(hosts_[0], top))) << "the old overlay is the caller's to delete";

  // The overlay file is still there: it is never reused, and nothing is switched.
  Status again = host.CreateDiskOnlySnapshot(guest.name(), {{.target = "vda", .overlay_path = top}});
  EXPECT_EQ(again.code(), Code::kAlreadyExists) << again.ToString();
  EXPECT_NE(again.message().find(top), std::string::npos) << again.ToString();
  xml = host.GetDomainXml(guest.name());
  ASSERT_TRUE(xml.ok());
  EXPECT_EQ(xml->find("<backingStore type='file'"), std::string::npos)
      << "a refused snapshot switched a disk:\n" << *xml;

  // Every record acknowledged so far, including those written to the overlay, is in the base now.
  auto after = guest.WaitForAcks(*acked + 10, 60s);
  ASSERT_TRUE(after.ok()) << "no progress after the pivot: " << after.status().ToString();
  auto report = guest.Check(hosts_[0]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  EXPECT_GE(report->newest_seq_on_disk.value_or(0), *after) << oracle::FormatReportText(*report);
  EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted";

  EXPECT_EQ(host.BlockCommitActive(guest.name(), "vda", 10s).code(), Code::kInvalidArgument)
      << "a disk without a backing image has nothing to commit";
  ASSERT_TRUE(host.DestroyDomain(guest.name()).ok());
  EXPECT_EQ(host.BlockCommitActive(guest.name(), "vda", 10s).code(), Code::kFailedPrecondition);
  std::remove(HostPath(hosts_[0], top).c_str());
}

}  // namespace
}  // namespace vs::lab
