// PeerGuard: every peer request's validation and its caller's authorisation, with a scripted look-up of what this
// host knows about each VM; and RunPeerCall, which turns a part's exception into INTERNAL and a log line.
#include "shadowd/rpc/peer_guard.h"

#include <map>
#include <new>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/replication/block_map.h"
#include "shadowd/rpc/peer_service.h"

namespace vs::rpc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace v1 = virtshadow::v1;

const std::string kVm = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const std::string kStranger = "0b5d6c1e-6f0a-4c43-9a39-5f2f1c3d2a10";  // nothing of it is here
const std::string kRecordedOnly = "11111111-2222-3333-4444-555555555555";  // a replica record, no shadow
constexpr char kVda[] = "/var/lib/libvirt/images/web-vda.qcow2";
constexpr char kVdb[] = "/var/lib/libvirt/images/web-vdb.raw";
constexpr uint64_t kGiB = uint64_t{1} << 30;

cluster::ClusterHosts Hosts() {
  cluster::ClusterHosts hosts;
  hosts.this_host = "h2";
  hosts.hosts = {{.name = "h1", .address = "10.0.0.1"}, {.name = "h2", .address = "10.0.0.2"},
                 {.name = "h3", .address = "10.0.0.3"}};
  return hosts;
}

class PeerGuardTest : public ::testing::Test {
 protected:
  PeerGuardTest() {
    controller::PeerShadow shadow;
    shadow.host = "h2";
    shadow.shadow_name = "web-shadow";
    shadow.primary_uuid = kVm;
    shadow.primary_name = "web";
    shadow.primary_host = "h1";
    shadow.replica_paths = {kVda, kVdb};
    vms_[kVm] = {shadow, "h1"};
    vms_[kRecordedOnly] = {std::nullopt, "h3"};
  }

  static v1::DiskRound Disk(const std::string& target, const std::string& path, v1::RoundMode mode,
                            uint64_t size = 10 * kGiB) {
    v1::DiskRound disk;
    disk.set_target(target);
    disk.set_replica_path(path);
    disk.set_format("qcow2");
    disk.set_virtual_size(size);
    disk.set_source_uri("nbd://10.0.0.1:10809/" + target);
    disk.set_mode(mode);
    if (mode == v1::ROUND_MODE_INCREMENTAL) disk.set_dirty_context("qemu:dirty-bitmap:backup-" + target);
    if (mode == v1::ROUND_MODE_RESYNC) {
      for (uint64_t i = 0; i < replication::BlockCount(size); ++i) disk.add_source_digests(i);
    }
    return disk;
  }
  static v1::ApplyRoundRequest Round() {
    v1::ApplyRoundRequest request;
    request.set_vm_uuid(kVm);
    request.set_primary_host("h1");
    request.set_base_checkpoint("vs-1");
    request.mutable_round()->set_checkpoint("vs-2");
    *request.add_disks() = Disk("vda", kVda, v1::ROUND_MODE_INCREMENTAL);
    *request.add_disks() = Disk("vdb", kVdb, v1::ROUND_MODE_FULL);
    return request;
  }
  static v1::SwitchoverDisk Top(const std::string& base) {
    v1::SwitchoverDisk disk;
    disk.set_target("vda");
    disk.set_base_path(base);
    disk.set_top_path(base + ".vs-top-1800000000000");
    disk.set_format("qcow2");
    return disk;
  }
  static v1::CompleteSwitchoverRequest Complete() {
    v1::CompleteSwitchoverRequest request;
    request.set_vm_uuid(kVm);
    request.set_vm_name("web");
    request.set_origin_host("h1");
    *request.add_disks() = Top(kVda);
    return request;
  }

  std::map<std::string, VmOnThisHost> vms_;
  std::vector<std::string> looked_up_;
  PeerGuard guard_{Hosts(), [this](const std::string& vm_uuid) -> StatusOr<VmOnThisHost> {
                     looked_up_.push_back(vm_uuid);
                     auto it = vms_.find(vm_uuid);
                     return it == vms_.end() ? VmOnThisHost() : it->second;
                   }};
  const PeerCaller anyone_ = PeerCaller::Unauthenticated();
};

TEST(PeerGuardSyntaxTest, UuidsAreEightFourFourFourTwelveHexDigits) {
  EXPECT_TRUE(IsUuid(kVm));
  EXPECT_TRUE(IsUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("6f9619ff8b86d011b42d00c04fc964ff"));
  EXPECT_FALSE(IsUuid("6f9619ff-8b86-d011-b42d-00c04fc964fg"));
  EXPECT_FALSE(IsUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff0"));
  EXPECT_FALSE(IsUuid("../../../../etc/passwd-0000-0000-0000"));
}

TEST_F(PeerGuardTest, AWellFormedRoundOfTheVmsPrimaryPasses) {
  const Status checked = guard_.ApplyRound(anyone_, Round());
  EXPECT_TRUE(checked.ok()) << checked.ToString();
  v1::ApplyRoundRequest resync = Round();
  *resync.mutable_disks(1) = Disk("vdb", kVdb, v1::ROUND_MODE_RESYNC, 3 * replication::kBlockSize + 1);
  const Status resync_checked = guard_.ApplyRound(anyone_, resync);
  EXPECT_TRUE(resync_checked.ok()) << resync_checked.ToString();
}

// Each malformed round is refused before anything looks at this host's state.
TEST_F(PeerGuardTest, MalformedRoundsAreRefusedBeforeTheLookUp) {
  const std::vector<std::pair<std::string, std::function<void(v1::ApplyRoundRequest&)>>> cases = {
      {"is not a VM UUID", [](auto& r) { r.set_vm_uuid("web"); }},
      {"not a host of this cluster", [](auto& r) { r.set_primary_host("evil"); }},
      {"not an absolute, normal path", [](auto& r) { r.mutable_disks(0)->set_replica_path("images/web.qcow2"); }},
      {"not an absolute, normal path",
       [](auto& r) { r.mutable_disks(0)->set_replica_path("/var/lib/libvirt/images/../../../etc/shadow"); }},
      {"not an absolute, normal path", [](auto& r) { r.mutable_disks(0)->set_replica_path("/var//lib/x"); }},
      {"neither qcow2 nor raw", [](auto& r) { r.mutable_disks(0)->set_format("vmdk"); }},
      {"round mode 7 is not FULL", [](auto& r) { r.mutable_disks(1)->set_mode(static_cast<v1::RoundMode>(7)); }},
      {"round mode 0 is not FULL", [](auto& r) { r.mutable_disks(1)->set_mode(v1::ROUND_MODE_UNSPECIFIED); }},
      {"a virtual size of 0 bytes", [](auto& r) { r.mutable_disks(1)->set_virtual_size(0); }},
      {"above the 2 TiB", [](auto& r) { r.mutable_disks(1)->set_virtual_size(uint64_t{2} << 50); }},
      {"all disks together",
       [](auto& r) {
         r.mutable_disks(0)->set_virtual_size(replication::kMaxVirtualSize);
         r.mutable_disks(1)->set_virtual_size(replication::kMaxVirtualSize);
       }},
      {"needs a dirty-bitmap context", [](auto& r) { r.mutable_disks(0)->set_dirty_context("base:allocation"); }},
      {"one digest per block", [](auto& r) { r.mutable_disks(1)->set_mode(v1::ROUND_MODE_RESYNC); }},
      {"only a resync carries source digests", [](auto& r) { r.mutable_disks(1)->add_source_digests(1); }},
      {"more than the 256 allowed",
       [](auto& r) {
         for (int i = 0; i < 300; ++i) *r.add_disks() = r.disks(1);
       }},
  };
  for (const auto& [expected, spoil] : cases) {
    v1::ApplyRoundRequest request = Round();
    spoil(request);
    const Status checked = guard_.ApplyRound(anyone_, request);
    EXPECT_EQ(checked.code(), Code::kInvalidArgument) << expected << ": " << checked.ToString();
    EXPECT_THAT(checked.message(), HasSubstr(expected));
  }
  EXPECT_TRUE(looked_up_.empty());
}

TEST_F(PeerGuardTest, ARoundWritesOnlyIntoTheShadowPlacedForItsSenderFromItsExport) {
  const std::vector<std::pair<std::string, std::function<void(v1::ApplyRoundRequest&)>>> cases = {
      {"placed by h1: only the VM's primary writes its replicas", [](auto& r) { r.set_primary_host("h3"); }},
      {"is not a disk of shadow web-shadow",
       [](auto& r) { r.mutable_disks(1)->set_replica_path("/var/lib/libvirt/images/mail.qcow2"); }},
      {"is on 10.0.0.3, not on 10.0.0.1",
       [](auto& r) { r.mutable_disks(0)->set_source_uri("nbd://10.0.0.3:10809/vda"); }},
      {"is not an nbd:// URI",
       [](auto& r) { r.mutable_disks(0)->set_source_uri("nbd+unix:///vda?socket=/run/x"); }},
      {"is not an nbd:// URI", [](auto& r) { r.mutable_disks(0)->set_source_uri("nbds://10.0.0.1:10809/vda"); }},
      {"has a query or fragment",
       [](auto& r) { r.mutable_disks(0)->set_source_uri("nbd://10.0.0.1:10809/vda?tls-certificates=/tmp"); }},
      {"no shadow of VM", [](auto& r) { r.set_vm_uuid(kRecordedOnly); }},
  };
  for (const auto& [expected, spoil] : cases) {
    v1::ApplyRoundRequest request = Round();
    spoil(request);
    const Status checked = guard_.ApplyRound(anyone_, request);
    EXPECT_EQ(checked.code(), Code::kFailedPrecondition) << expected << ": " << checked.ToString();
    EXPECT_THAT(checked.message(), HasSubstr(expected));
  }
}

// With [tls] nbd = mutual a round reads only over TLS: a plaintext source would let anyone on the path read the disk.
TEST_F(PeerGuardTest, WithTlsExportsARoundReadsOnlyFromAnNbdsSource) {
  const PeerGuard tls_guard(Hosts(), [this](const std::string& vm_uuid) -> StatusOr<VmOnThisHost> {
    return vms_.at(vm_uuid);
  }, /*exports_use_tls=*/true);
  v1::ApplyRoundRequest request = Round();
  const Status plaintext = tls_guard.ApplyRound(anyone_, request);
  EXPECT_EQ(plaintext.code(), Code::kFailedPrecondition) << plaintext.ToString();
  EXPECT_THAT(plaintext.message(), HasSubstr("is not an nbds:// URI (exports use TLS here: [tls] nbd = mutual)"));
  for (auto& disk : *request.mutable_disks()) disk.set_source_uri("nbds://10.0.0.1:10809/" + disk.target());
  const Status tls = tls_guard.ApplyRound(anyone_, request);
  EXPECT_TRUE(tls.ok()) << tls.ToString();
}

TEST_F(PeerGuardTest, DigestsAreReadOnlyFromTheShadowsDisks) {
  v1::ReplicaDigestsRequest request;
  request.set_vm_uuid(kVm);
  request.set_replica_path(kVdb);
  request.set_format("raw");
  EXPECT_TRUE(guard_.ReplicaDigests(anyone_, request).ok());
  request.set_replica_path("/etc/shadow");
  EXPECT_EQ(guard_.ReplicaDigests(anyone_, request).code(), Code::kFailedPrecondition);
  request.set_replica_path("/run/fifo/");
  EXPECT_EQ(guard_.ReplicaDigests(anyone_, request).code(), Code::kInvalidArgument);
}

// Found by tests/fuzz/peer_fuzz.cc: a commit whose round named another checkpoint (of any length) or no round mode
// passed, and the keeper records that round as the replica's applied one.
TEST_F(PeerGuardTest, ACommitRecordsTheRoundItFinishes) {
  v1::FinishRoundRequest finish;
  finish.set_vm_uuid(kVm);
  finish.set_checkpoint("vs-2");
  finish.set_commit(true);
  finish.mutable_round()->set_checkpoint("vs-2");
  finish.mutable_round()->set_mode(v1::ROUND_MODE_INCREMENTAL);
  const Status committed = guard_.FinishRound(anyone_, finish);
  EXPECT_TRUE(committed.ok()) << committed.ToString();

  const std::vector<std::pair<std::string, std::function<void(v1::FinishRoundRequest&)>>> cases = {
      {"the commit records round 'vs-1', not the round it finishes",
       [](auto& r) { r.mutable_round()->set_checkpoint("vs-1"); }},
      {"not the round it finishes", [](auto& r) { r.mutable_round()->set_checkpoint(std::string(5000, 'v')); }},
      {"not the round it finishes", [](auto& r) { r.clear_round(); }},
      {"the commit records no round mode", [](auto& r) { r.mutable_round()->set_mode(v1::ROUND_MODE_UNSPECIFIED); }},
      {"mode 9 is no round mode", [](auto& r) { r.mutable_round()->set_mode(static_cast<v1::RoundMode>(9)); }},
  };
  for (const auto& [expected, spoil] : cases) {
    v1::FinishRoundRequest request = finish;
    spoil(request);
    const Status checked = guard_.FinishRound(anyone_, request);
    EXPECT_EQ(checked.code(), Code::kInvalidArgument) << expected << ": " << checked.ToString();
    EXPECT_THAT(checked.message(), HasSubstr(expected));
  }
  // A discard carries no round (Replicator sends none): nothing of it is recorded.
  v1::FinishRoundRequest discard;
  discard.set_vm_uuid(kVm);
  discard.set_checkpoint("vs-2");
  EXPECT_TRUE(guard_.FinishRound(anyone_, discard).ok());
}

TEST_F(PeerGuardTest, GetReplicaPathsMustBeAbsoluteAndNormal) {
  v1::GetReplicaRequest request;
  request.set_vm_uuid(kStranger);
  request.add_replica_paths(kVda);
  EXPECT_TRUE(guard_.GetReplica(anyone_, request).ok()) << "whether the shadow owns them is the keeper's check";
  request.add_replica_paths("relative/fifo");
  EXPECT_EQ(guard_.GetReplica(anyone_, request).code(), Code::kInvalidArgument);
  request.clear_replica_paths();
  request.set_vm_uuid("not-a-uuid");
  EXPECT_EQ(guard_.GetReplica(anyone_, request).code(), Code::kInvalidArgument);
}

// The rule the mutual-TLS work feeds: once the caller's host is known, a VM's calls come only from its primary.
TEST_F(PeerGuardTest, AKnownCallerMustBeTheVmsPrimary) {
  const PeerCaller primary = PeerCaller::Host("h1");
  const PeerCaller other = PeerCaller::Host("h3");
  v1::GetReplicaRequest get;
  get.set_vm_uuid(kVm);
  v1::FinishRoundRequest finish;
  finish.set_vm_uuid(kVm);
  finish.set_checkpoint("vs-2");
  v1::CheckSwitchoverRequest check;
  check.set_vm_uuid(kVm);
  v1::PrepareSwitchoverRequest prepare;
  prepare.set_vm_uuid(kVm);
  *prepare.add_disks() = Top(kVda);
  v1::AbortSwitchoverRequest abort;
  abort.set_vm_uuid(kVm);
  *abort.add_disks() = Top(kVda);
  for (const PeerCaller& caller : {primary, anyone_}) {
    EXPECT_TRUE(guard_.GetReplica(caller, get).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.ApplyRound(caller, Round()).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.FinishRound(caller, finish).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.CheckSwitchover(caller, check).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.PrepareSwitchover(caller, prepare).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.CompleteSwitchover(caller, Complete()).ok()) << caller.Describe();
    EXPECT_TRUE(guard_.AbortSwitchover(caller, abort).ok()) << caller.Describe();
  }
  for (const Status& refused :
       {guard_.GetReplica(other, get), guard_.ApplyRound(other, Round()), guard_.FinishRound(other, finish),
        guard_.CheckSwitchover(other, check), guard_.PrepareSwitchover(other, prepare),
        guard_.CompleteSwitchover(other, Complete()), guard_.AbortSwitchover(other, abort)}) {
    EXPECT_EQ(refused.code(), Code::kPermissionDenied) << refused.ToString();
    EXPECT_THAT(refused.message(), HasSubstr("from host h3 refused: only h1 may make it on this host"));
  }
  // The primary recorded for a VM without a shadow here (its replica record, its prepared switchover).
  finish.set_vm_uuid(kRecordedOnly);
  EXPECT_TRUE(guard_.FinishRound(other, finish).ok());
  EXPECT_EQ(guard_.FinishRound(primary, finish).code(), Code::kPermissionDenied);
}

TEST_F(PeerGuardTest, AKnownCallerOfAVmWithNoKnownPrimaryMayOnlyRead) {
  const PeerCaller caller = PeerCaller::Host("h3");
  v1::GetReplicaRequest get;
  get.set_vm_uuid(kStranger);
  EXPECT_TRUE(guard_.GetReplica(caller, get).ok());
  v1::FinishRoundRequest finish;
  finish.set_vm_uuid(kStranger);
  const Status refused = guard_.FinishRound(caller, finish);
  EXPECT_EQ(refused.code(), Code::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("no primary of the VM is known on this host"));
}

TEST_F(PeerGuardTest, CompleteNamesACheckedOriginAndItsCaller) {
  v1::CompleteSwitchoverRequest request = Complete();
  request.set_origin_host("nowhere");
  EXPECT_EQ(guard_.CompleteSwitchover(anyone_, request).code(), Code::kInvalidArgument);
  request = Complete();
  request.set_vm_name("");
  EXPECT_EQ(guard_.CompleteSwitchover(anyone_, request).code(), Code::kInvalidArgument);
  request = Complete();
  request.mutable_disks(0)->set_top_path("relative.vs-top-1");
  EXPECT_EQ(guard_.CompleteSwitchover(anyone_, request).code(), Code::kInvalidArgument);
  request = Complete();
  request.mutable_disks(0)->set_format("vmdk");
  EXPECT_EQ(guard_.CompleteSwitchover(anyone_, request).code(), Code::kInvalidArgument);
}

TEST_F(PeerGuardTest, PromotionCallsComeOnlyFromTheHostTheyName) {
  v1::PromotionQueryRequest query;
  query.set_vm_uuid(kVm);
  query.set_asking_host("h1");
  EXPECT_TRUE(guard_.QueryPromotion(anyone_, query).ok());
  EXPECT_TRUE(guard_.QueryPromotion(PeerCaller::Host("h1"), query).ok());
  EXPECT_EQ(guard_.QueryPromotion(PeerCaller::Host("h3"), query).code(), Code::kPermissionDenied);
  query.set_asking_host("evil");
  EXPECT_EQ(guard_.QueryPromotion(anyone_, query).code(), Code::kInvalidArgument);

  v1::DiscardStaleCopyRequest discard;
  discard.set_vm_uuid(kVm);
  discard.set_asking_host("h3");
  EXPECT_TRUE(guard_.DiscardStaleCopy(PeerCaller::Host("h3"), discard).ok());
  EXPECT_EQ(guard_.DiscardStaleCopy(PeerCaller::Host("h1"), discard).code(), Code::kPermissionDenied);
  discard.set_vm_uuid("x");
  EXPECT_EQ(guard_.DiscardStaleCopy(anyone_, discard).code(), Code::kInvalidArgument);
}

TEST_F(PeerGuardTest, ALookUpFailureIsTheCallsFailure) {
  PeerGuard guard(Hosts(), [](const std::string&) -> StatusOr<VmOnThisHost> {
    return Unavailable("libvirtd is restarting");
  });
  EXPECT_EQ(guard.ApplyRound(anyone_, Round()).code(), Code::kUnavailable);
  v1::GetReplicaRequest get;
  get.set_vm_uuid(kVm);
  EXPECT_EQ(guard.GetReplica(PeerCaller::Host("h1"), get).code(), Code::kUnavailable);
  EXPECT_TRUE(guard.GetReplica(anyone_, get).ok()) << "no identity to compare: no look-up";
}

// ---- RunPeerCall ----

TEST(RunPeerCallTest, AnExceptionIsAnInternalStatusAndALogLineNotADeadDaemon) {
  std::vector<std::string> logged;
  const Logger::Line log = [&logged](const std::string& line) { logged.push_back(line); };
  v1::GetReplicaReply reply;
  grpc::Status status = RunPeerCall("GetReplica", log, &reply, []() -> StatusOr<v1::GetReplicaReply> {
    throw std::bad_alloc();
  });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("shadowd failed serving GetReplica (std::bad_alloc)"));
  status = RunPeerCall("FinishRound", log, &reply, []() -> Status { throw 42; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(logged, ElementsAre("peer call GetReplica failed with an exception: std::bad_alloc",
                                  "peer call FinishRound failed with an exception: an exception that is no "
                                  "std::exception"));
}

TEST(RunPeerCallTest, AnswersAndErrorsPassThrough) {
  const Logger::Line log = [](const std::string& line) { ADD_FAILURE() << line; };
  v1::GetReplicaReply reply;
  grpc::Status status = RunPeerCall("GetReplica", log, &reply, []() -> StatusOr<v1::GetReplicaReply> {
    v1::GetReplicaReply answer;
    answer.set_known(true);
    return answer;
  });
  EXPECT_TRUE(status.ok());
  EXPECT_TRUE(reply.known());
  status = RunPeerCall("ApplyRound", log, &reply, []() -> Status { return InvalidArgument("no disk"); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "no disk");
}

TEST(KnownPrimaryTest, TheShadowThenAnUnfinishedSwitchoverThenTheReplicaThenACompletedSwitchoverName) {
  controller::PeerShadow shadow;
  shadow.primary_host = "h1";
  v1::SwitchoverRecord prepared;
  prepared.set_source_host("h2");
  v1::ReplicaRecord replica;
  replica.set_primary_host("h3");
  EXPECT_EQ(KnownPrimary(shadow, prepared, replica), "h1");
  EXPECT_EQ(KnownPrimary(std::nullopt, prepared, replica), "h2") << "a switchover prepared here goes on";
  EXPECT_EQ(KnownPrimary(std::nullopt, std::nullopt, replica), "h3");
  EXPECT_EQ(KnownPrimary(std::nullopt, std::nullopt, std::nullopt), "");
  // Completed long ago: the VM left again and h3 placed a shadow here since (its definition gone by hand).
  prepared.set_finished_unix_ms(1'796'570'000'000);
  EXPECT_EQ(KnownPrimary(std::nullopt, prepared, replica), "h3");
  // Nothing newer: the origin of the completed switchover may retry its completion.
  EXPECT_EQ(KnownPrimary(std::nullopt, prepared, std::nullopt), "h2");
}

}  // namespace
}  // namespace vs::rpc
