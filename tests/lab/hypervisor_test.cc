// Lab test of the libvirt layer beyond migration, against real libvirtds: each lab host is its own host
// (hostname, storage), images are created on a peer over qemu+tcp, metadata is set and watched live.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>

#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
constexpr char kPolicyNs[] = "http://virt-shadow.org/xmlns/policy/1.0";

using HypervisorTest = LabTest;

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

}  // namespace
}  // namespace vs::lab
