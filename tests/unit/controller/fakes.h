// Fakes for the protection controller's tests: peer hosts kept in memory (their domains and replica
// images), the cluster view derived from them, image sizes, and a "crash budget" that cuts every
// effect (store write or PeerOps call) after the first N, to simulate kill -9 at any point.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "shadowd/controller/cluster_view.h"
#include "shadowd/controller/image_info.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/store/store.h"

// ASSERT/EXPECT that a Status is OK, printing it otherwise; `expr` is evaluated once.
#define VS_ASSERT_OK(expr)                                \
  do {                                                    \
    const ::vs::Status vs_assert_status_ = (expr);        \
    ASSERT_TRUE(vs_assert_status_.ok()) << vs_assert_status_.ToString(); \
  } while (0)
#define VS_EXPECT_OK(expr)                                \
  do {                                                    \
    const ::vs::Status vs_expect_status_ = (expr);        \
    EXPECT_TRUE(vs_expect_status_.ok()) << vs_expect_status_.ToString(); \
  } while (0)

namespace vs::controller::testing {

// Counts effects; once `remaining` reaches 0, every further effect fails without happening: from the
// outside, the process is dead from that point on.
struct CrashBudget {
  int remaining = std::numeric_limits<int>::max();
  int used = 0;
  bool Admit() {
    if (remaining == 0) return false;
    --remaining;
    ++used;
    return true;
  }
};

// A Store whose writes spend the crash budget.
class BudgetStore final : public store::Store {
 public:
  BudgetStore(store::Store& target, CrashBudget& budget) : target_(target), budget_(budget) {}
  StatusOr<std::optional<std::string>> Get(std::string_view key) const override { return target_.Get(key); }
  Status Write(const store::WriteBatch& batch) override {
    if (!budget_.Admit()) return Unavailable("simulated crash: the store write never happened");
    return target_.Write(batch);
  }
  StatusOr<std::vector<store::Entry>> Scan(std::string_view prefix) const override { return target_.Scan(prefix); }
  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override {
    return target_.ScanKeys(prefix);
  }

 private:
  store::Store& target_;
  CrashBudget& budget_;
};

struct FakeImage {
  std::uint64_t virtual_size = 0;
  std::string format;
};

struct FakeHost {
  bool reachable = true;
  std::map<std::string, FakeImage> images;   // path -> image
  std::map<std::string, std::string> domains;  // uuid -> domain XML
};

class FakePeers final : public PeerOps {
 public:
  std::map<std::string, FakeHost> hosts;
  std::vector<std::string> calls;  // "<Op> <host> <arg>", in call order
  CrashBudget* budget = nullptr;

  Status CreateReplicaImage(const std::string& host, const std::string& path, std::uint64_t virtual_size_bytes,
                            const std::string& format) override {
    VS_ASSIGN_OR_RETURN(FakeHost * h, Enter("CreateReplicaImage", host, path));
    h->images[path] = {virtual_size_bytes, format};
    return Status::Ok();
  }
  Status DefineShadow(const std::string& host, const std::string& domain_xml) override {
    VS_ASSIGN_OR_RETURN(std::optional<PeerShadow> shadow, DescribeShadowDomain(host, domain_xml));
    VS_ASSIGN_OR_RETURN(FakeHost * h, Enter("DefineShadow", host, shadow ? shadow->shadow_uuid : "?"));
    if (!shadow) return InvalidArgument("fake peer: DefineShadow got a domain without a shadow-of link");
    for (const std::string& path : shadow->replica_paths) {
      if (h->images.count(path) == 0) return FailedPrecondition("fake peer: replica " + path + " was not created first");
    }
    h->domains[shadow->shadow_uuid] = domain_xml;
    return Status::Ok();
  }
  Status ReleaseShadow(const std::string& host, const std::string& shadow_uuid, const std::string&,
                       const std::vector<std::string>& replica_paths) override {
    VS_ASSIGN_OR_RETURN(FakeHost * h, Enter("ReleaseShadow", host, shadow_uuid));
    for (const std::string& path : replica_paths) h->images.erase(path);
    h->domains.erase(shadow_uuid);
    return Status::Ok();
  }
  StatusOr<std::vector<PeerShadow>> ListShadows(const std::string& host) override {
    VS_ASSIGN_OR_RETURN(FakeHost * h, Enter("ListShadows", host, ""));
    return ShadowsOn(host, *h);
  }

  // Every shadow on every host, without spending the budget or logging (a snapshot, as ClusterView has).
  std::vector<PeerShadow> AllShadows() const {
    std::vector<PeerShadow> all;
    for (const auto& [name, host] : hosts) {
      StatusOr<std::vector<PeerShadow>> on_host = ShadowsOn(name, host);
      if (on_host.ok()) all.insert(all.end(), on_host->begin(), on_host->end());
    }
    return all;
  }
  int CallCount(std::string_view op) const {
    int n = 0;
    for (const std::string& call : calls) n += call.rfind(std::string(op) + " ", 0) == 0 ? 1 : 0;
    return n;
  }

 private:
  StatusOr<FakeHost*> Enter(const std::string& op, const std::string& host, const std::string& arg) {
    if (budget != nullptr && !budget->Admit()) return Unavailable("simulated crash: " + op + " never happened");
    calls.push_back(op + " " + host + " " + arg);
    auto it = hosts.find(host);
    if (it == hosts.end() || !it->second.reachable) return Unavailable("fake peer: host '" + host + "' is unreachable");
    return &it->second;
  }
  static StatusOr<std::vector<PeerShadow>> ShadowsOn(const std::string& name, const FakeHost& host) {
    std::vector<PeerShadow> shadows;
    for (const auto& [uuid, xml] : host.domains) {
      VS_ASSIGN_OR_RETURN(std::optional<PeerShadow> shadow, DescribeShadowDomain(name, xml));
      if (shadow) shadows.push_back(*shadow);
    }
    return shadows;
  }
};

class FakeCluster final : public ClusterView {
 public:
  explicit FakeCluster(const FakePeers& peers) : peers_(peers) {}
  std::vector<scheduler::Host> hosts;
  std::vector<PeerShadow> extra_shadows;  // shadows the snapshot has beyond the fake peers' domains
  std::map<std::string, std::vector<std::string>> defining;  // vm uuid -> hosts where its own domain is defined
  StatusOr<std::vector<scheduler::Host>> Hosts() override { return hosts; }
  StatusOr<std::vector<std::string>> HostsDefining(const std::string& vm_uuid) override {
    auto it = defining.find(vm_uuid);
    return it == defining.end() ? std::vector<std::string>() : it->second;
  }
  StatusOr<std::vector<PeerShadow>> Shadows() override {
    std::vector<PeerShadow> all = peers_.AllShadows();
    all.insert(all.end(), extra_shadows.begin(), extra_shadows.end());
    return all;
  }

 private:
  const FakePeers& peers_;
};

// A cluster host with 16 vCPUs and `memory_kib` (64 GiB by default), nothing used.
inline scheduler::Host MakeHost(std::string name, std::string zone, double cost_per_hour,
                                std::uint64_t memory_kib = std::uint64_t{64} << 20) {
  scheduler::Host host;
  host.name = std::move(name);
  host.zone = std::move(zone);
  host.cost_per_hour = cost_per_hour;
  host.total_vcpus = 16;
  host.total_memory_kib = memory_kib;
  return host;
}

class FakeImages final : public ImageInfo {
 public:
  std::map<std::string, std::uint64_t> sizes;
  StatusOr<std::uint64_t> VirtualSize(const std::string& path) override {
    auto it = sizes.find(path);
    if (it == sizes.end()) return NotFound("fake image info: no image at " + path);
    return it->second;
  }
};

}  // namespace vs::controller::testing
