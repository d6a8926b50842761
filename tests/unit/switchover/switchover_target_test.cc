// SwitchoverTarget: the shadow host's half of a switchover, driven with the requests a primary sends, against
// fakes of everything it talks to: this host's libvirtd (replication's FakeBackupHypervisor: domains with their
// states, shadow-of links and backing chains, block commits), a real ReplicaKeeper over MemoryStore and
// FakeReplicaStorage, ArrivalRecords and DrainState over the same store, a scripted RoundScheduler and a
// scripted ImageTool (qemu-img). Replicas and tops are real (empty) files in a temporary directory, because the
// target creates, checks and deletes tops through the file system; the fake ImageTool creates an overlay the way
// qemu-img does (never over an existing file). Time is a FakeClock, so the flatten's retries do not sleep.
#include "shadowd/switchover/switchover_target.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/policy/top_path.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/switchover/nova_arrival.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/replication/fakes.h"

namespace vs::switchover {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using replication::testing::FakeBackupHypervisor;
using replication::testing::FakeReplicaStorage;
using replication::testing::IoCounts;
using replication::testing::MemoryImage;
namespace v1 = virtshadow::v1;

constexpr char kThisHost[] = "h2";
constexpr char kOrigin[] = "h1";
const std::string kVmUuid = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const std::string kShadowUuid = "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e";
const std::string kOtherUuid = "0b5d6c1e-6f0a-4c43-9a39-5f2f1c3d2a10";
constexpr char kVmName[] = "web";
constexpr char kShadowName[] = "web-shadow";
constexpr char kCheckpoint[] = "vs-1799999990000";
constexpr char kTag[] = "1800000000000";
constexpr uint64_t kGiBInKiB = 1024 * 1024;

// The events the test cares about the order of: the rounds' Hold, Quiesce and Unhold and the block commits.
using Events = std::vector<std::string>;

// RoundScheduler as the target uses it: Hold, Quiesce and Unhold are recorded; nothing else is expected.
class FakeRounds final : public replication::RoundScheduler {
 public:
  explicit FakeRounds(Events& events) : events_(events) {}
  Status quiesce_error;  // non-OK: Quiesce answers that the VM is not scheduled here

  void Hold(const std::string& vm_uuid) override { events_.push_back("Hold " + vm_uuid); }
  void Unhold(const std::string& vm_uuid) override { events_.push_back("Unhold " + vm_uuid); }
  std::future<StatusOr<bool>> Quiesce(const std::string& vm_uuid) override {
    events_.push_back("Quiesce " + vm_uuid);
    return Ready<bool>(quiesce_error.ok() ? StatusOr<bool>(true) : StatusOr<bool>(quiesce_error));
  }
  std::future<StatusOr<v1::AppliedRound>> RequestRound(const std::string& vm_uuid) override {
    events_.push_back("RequestRound " + vm_uuid);
    return Ready<v1::AppliedRound>(Internal("the target asks for no round"));
  }
  std::future<StatusOr<v1::AppliedRound>> RequestFinalRound(const std::string& vm_uuid) override {
    events_.push_back("RequestFinalRound " + vm_uuid);
    return Ready<v1::AppliedRound>(Internal("the target asks for no round"));
  }
  StatusOr<v1::ReplicationRecord> RecordOf(const std::string&) const override {
    return Internal("the target reads no primary record");
  }
  Status Forget(const std::string& vm_uuid) override {
    events_.push_back("Forget " + vm_uuid);
    return Internal("the target forgets no VM");
  }

 private:
  template <typename T>
  static std::future<StatusOr<T>> Ready(StatusOr<T> value) {
    std::promise<StatusOr<T>> promise;
    promise.set_value(std::move(value));
    return promise.get_future();
  }
  Events& events_;
};

// qemu-img on real (empty) files: Info answers from `bitmaps`; CreateOverlay writes a file naming its backing
// and refuses an existing one, as qemu-img's O_EXCL claim does; RemoveBitmap drops the name from `bitmaps`.
class FakeImageTool final : public nbd::ImageTool {
 public:
  mutable std::map<std::string, std::vector<std::string>> bitmaps;  // by image path
  mutable std::vector<std::string> calls;                           // "<Op> <args>", in call order
  Status create_error;  // non-OK: CreateOverlay fails with it and creates nothing

  StatusOr<nbd::ImageFacts> Info(const std::string& path) const override {
    calls.push_back("Info " + path);
    if (!std::filesystem::exists(path)) return NotFound("image " + path + " does not exist");
    nbd::ImageFacts facts{.format = "qcow2", .virtual_size = 1 << 20};
    if (auto it = bitmaps.find(path); it != bitmaps.end()) facts.bitmaps = it->second;
    return facts;
  }
  Status CreateOverlay(const std::string& overlay_path, const std::string& backing_path,
                       std::string_view backing_format) const override {
    calls.push_back("CreateOverlay " + overlay_path + " " + backing_path + " " + std::string(backing_format));
    if (!create_error.ok()) return create_error;
    if (std::filesystem::exists(overlay_path)) return AlreadyExists("refusing to overwrite " + overlay_path);
    if (!std::filesystem::exists(backing_path)) return NotFound("backing image " + backing_path + " does not exist");
    std::ofstream(overlay_path) << "overlay of " << backing_path;
    return Status::Ok();
  }
  Status RemoveBitmap(const std::string& path, const std::string& name) const override {
    calls.push_back("RemoveBitmap " + path + " " + name);
    auto& names = bitmaps[path];
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) return NotFound("no bitmap " + name + " in " + path);
    names.erase(it);
    return Status::Ok();
  }
  int Count(std::string_view op) const {
    int n = 0;
    for (const std::string& call : calls) n += call.rfind(std::string(op) + " ", 0) == 0 ? 1 : 0;
    return n;
  }
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SwitchoverTargetTest : public ::testing::Test {
 protected:
  SwitchoverTargetTest() {
    for (const std::string& path : {root_, data_}) {
      std::ofstream(path) << "replica";
      storage_.images[path] = std::make_shared<MemoryImage>();
    }
    storage_.images[root_]->format = "qcow2";
    storage_.images[data_]->format = "raw";

    // The VM's shadow: shut off, its disks the replicas, linked to the VM on its primary.
    FakeBackupHypervisor::Domain& shadow = libvirt_.AddDomain(kShadowName, kShadowUuid);
    shadow.state = virt::DomainState::kShutoff;
    shadow.metadata_xml = ShadowOfLink(kVmUuid);
    shadow.disks = {{"vda", root_, "qcow2", nullptr, {}}, {"vdb", data_, "raw", nullptr, {}}};
    libvirt_.capacity = {
        .cpus = 16, .memory_kib = 64 * kGiBInKiB, .running_vcpus = 4, .running_memory_kib = 8 * kGiBInKiB};

    // The replica as the keeper records it after an applied round.
    v1::ReplicaRecord record;
    record.set_vm_uuid(kVmUuid);
    record.set_primary_host(kOrigin);
    record.mutable_applied()->set_checkpoint(kCheckpoint);
    record.mutable_applied()->set_taken_unix_ms(1'799'999'990'000);
    record.mutable_applied()->set_digest(0x5eed);
    record.set_phase(v1::ReplicaRecord::PHASE_IDLE);
    AddReplicaDisk(record, "vda", root_, "qcow2");
    AddReplicaDisk(record, "vdb", data_, "raw");
    StoreReplicaRecord(record);
  }

  static std::string ShadowOfLink(const std::string& vm_uuid) {
    return "<shadow:shadow-of xmlns:shadow=\"http://virt-shadow.org/xmlns/policy/1.0\" uuid=\"" + vm_uuid +
           "\" name=\"" + kVmName + "\" host=\"" + kOrigin + "\" index=\"0\"/>";
  }
  static void AddReplicaDisk(v1::ReplicaRecord& record, const std::string& target, const std::string& path,
                             const std::string& format) {
    v1::ReplicaDisk* disk = record.add_disks();
    disk->set_target(target);
    disk->set_replica_path(path);
    disk->set_format(format);
  }
  void StoreReplicaRecord(const v1::ReplicaRecord& record) {
    store::WriteBatch batch;
    batch.PutProto(replication::ReplicaRecordKey(record.vm_uuid()), record);
    const Status written = store_.Write(batch);
    ASSERT_TRUE(written.ok()) << written.ToString();
  }

  // The VM as it arrived by the migration: running, each disk on its top over the replica.
  void AddArrivedVm() {
    FakeBackupHypervisor::Domain& vm = libvirt_.AddDomain(kVmName, kVmUuid);
    vm.disks = {{"vda", TopOf(root_), "qcow2", nullptr, {{root_, "qcow2"}}},
                {"vdb", TopOf(data_), "qcow2", nullptr, {{data_, "raw"}}}};
    for (const std::string& base : {root_, data_}) std::ofstream(TopOf(base)) << "top";
  }

  static std::string TopOf(const std::string& base) { return policy::TopPathOf(base, kTag); }
  static v1::SwitchoverDisk Disk(const std::string& target, const std::string& base, const std::string& format,
                                 const std::string& top) {
    v1::SwitchoverDisk disk;
    disk.set_target(target);
    disk.set_base_path(base);
    disk.set_top_path(top);
    disk.set_format(format);
    return disk;
  }
  // Both disks of the VM, with their tops of this switchover.
  void AddBothDisks(google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) const {
    *disks.Add() = Disk("vda", root_, "qcow2", TopOf(root_));
    *disks.Add() = Disk("vdb", data_, "raw", TopOf(data_));
  }

  v1::CheckSwitchoverRequest CheckRequest(uint64_t memory_kib = 4 * kGiBInKiB) const {
    v1::CheckSwitchoverRequest request;
    request.set_vm_uuid(kVmUuid);
    request.set_vcpus(4);
    request.set_memory_kib(memory_kib);
    return request;
  }
  v1::PrepareSwitchoverRequest PrepareRequest() const {
    v1::PrepareSwitchoverRequest request;
    request.set_vm_uuid(kVmUuid);
    AddBothDisks(*request.mutable_disks());
    return request;
  }
  v1::PrepareSwitchoverRequest FallbackRequest() const {
    v1::PrepareSwitchoverRequest request = PrepareRequest();
    request.set_fallback(true);
    return request;
  }
  v1::CompleteSwitchoverRequest CompleteRequest() const {
    v1::CompleteSwitchoverRequest request;
    request.set_vm_uuid(kVmUuid);
    request.set_vm_name(kVmName);
    request.set_origin_host(kOrigin);
    AddBothDisks(*request.mutable_disks());
    return request;
  }
  v1::AbortSwitchoverRequest AbortRequest() const {
    v1::AbortSwitchoverRequest request;
    request.set_vm_uuid(kVmUuid);
    AddBothDisks(*request.mutable_disks());
    return request;
  }

  void EnterDrain(const std::string& source, const std::string& kind, const std::string& detail,
                  int64_t deadline_unix_ms) {
    v1::DrainRecord record;
    record.set_source(source);
    record.set_kind(kind);
    record.set_detail(detail);
    record.set_deadline_unix_ms(deadline_unix_ms);
    StatusOr<bool> entered = drain_.Enter(record);
    ASSERT_TRUE(entered.ok()) << entered.status().ToString();
    ASSERT_TRUE(*entered);
  }

  v1::CheckSwitchoverReply Check(uint64_t memory_kib = 4 * kGiBInKiB) {
    StatusOr<v1::CheckSwitchoverReply> reply = target_.Check(CheckRequest(memory_kib));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? *reply : v1::CheckSwitchoverReply();
  }
  static std::vector<std::string> Problems(const v1::CheckSwitchoverReply& reply) {
    return {reply.problems().begin(), reply.problems().end()};
  }

  static bool Exists(const std::string& path) { return std::filesystem::exists(path); }

  // The switchover as its primary prepared it here (Complete and Abort act only on a prepared one); the image
  // tool's calls start afresh.
  void PrepareFirst(const v1::PrepareSwitchoverRequest& request) {
    const Status prepared = target_.Prepare(request);
    ASSERT_TRUE(prepared.ok()) << prepared.ToString();
    images_.calls.clear();
  }

  test_support::TempDir dir_;
  const std::string root_ = dir_.Sub("web-root.qcow2");
  const std::string data_ = dir_.Sub("web-data.raw");
  FakeClock clock_;
  store::MemoryStore store_;
  FakeBackupHypervisor libvirt_;
  FakeReplicaStorage storage_{[](const std::string& uri, const std::vector<std::string>&, IoCounts&)
                                  -> StatusOr<std::unique_ptr<replication::BlockDevice>> {
    return Unavailable("no export at " + uri + ": the target's tests run no round");
  }};
  replication::ReplicaKeeper keeper_{store_, storage_,
                                     [](const std::string&, const std::vector<std::string>&) { return Status::Ok(); },
                                     clock_};
  ArrivalRecords arrivals_{store_, clock_};
  DrainState drain_{store_};
  Events events_;
  FakeRounds rounds_{events_};
  FakeImageTool images_;
  bool postcopy_ready_ = true;
  std::vector<std::string> logs_;
  SwitchoverTarget target_{libvirt_, keeper_, arrivals_, drain_, rounds_, images_, kThisHost, clock_,
                           [this](const std::string& line) { logs_.push_back(line); },
                           [this] { return postcopy_ready_; }};
};

// ---- Check ----

TEST_F(SwitchoverTargetTest, CheckOfAHealthyShadowFindsNoProblemAndReportsTheReplica) {
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_THAT(Problems(reply), IsEmpty());
  EXPECT_TRUE(reply.shadow_defined());
  EXPECT_TRUE(reply.replica_known());
  EXPECT_TRUE(reply.postcopy_ready());
  EXPECT_FALSE(reply.draining());
  EXPECT_TRUE(reply.capacity_ok());
  EXPECT_EQ(reply.replica().vm_uuid(), kVmUuid);
  EXPECT_EQ(reply.replica().primary_host(), kOrigin);
  EXPECT_EQ(reply.replica().phase(), v1::ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(reply.replica().applied().checkpoint(), kCheckpoint) << "the primary compares it with its own";
  EXPECT_EQ(reply.replica().applied().digest(), 0x5eedu);
  ASSERT_EQ(reply.replica().disks_size(), 2);
  EXPECT_EQ(reply.replica().disks(0).replica_path(), root_);
  EXPECT_EQ(reply.replica().disks(1).replica_path(), data_);
  EXPECT_THAT(images_.calls, IsEmpty()) << "a check touches no image";
  EXPECT_THAT(events_, IsEmpty()) << "nor this host's rounds";
}

TEST_F(SwitchoverTargetTest, CheckNamesAMissingShadow) {
  ASSERT_TRUE(libvirt_.UndefineDomain(kShadowName).ok());
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_FALSE(reply.shadow_defined());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: no shadow of VM " + kVmUuid +
                                           " is defined here (its capacity is not reserved)"));
  EXPECT_TRUE(reply.replica_known()) << "the replica is still reported: the fallback migrates onto it";
  EXPECT_TRUE(reply.capacity_ok());
}

TEST_F(SwitchoverTargetTest, CheckNamesARunningShadow) {
  libvirt_.domains.at(kShadowName).state = virt::DomainState::kRunning;
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_FALSE(reply.shadow_defined());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: shadow web-shadow is running, not shut off"));
}

TEST_F(SwitchoverTargetTest, CheckNamesAHostThatIsDrainingItself) {
  EnterDrain("gce", "preemption", "", 1'800'000'030'000);
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_TRUE(reply.draining());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: this host is draining itself (gce preemption)"));
}

TEST_F(SwitchoverTargetTest, CheckNamesTooLittleFreeMemory) {
  libvirt_.capacity.memory_kib = 8 * kGiBInKiB;
  libvirt_.capacity.running_memory_kib = 6 * kGiBInKiB;
  v1::CheckSwitchoverReply reply = Check(4 * kGiBInKiB);
  EXPECT_FALSE(reply.capacity_ok());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: only 2048 MiB of memory are free, the VM needs 4096 MiB"));

  reply = Check(2 * kGiBInKiB);  // exactly what is free fits
  EXPECT_TRUE(reply.capacity_ok());
  EXPECT_THAT(Problems(reply), IsEmpty());

  libvirt_.capacity.running_memory_kib = 9 * kGiBInKiB;  // overcommitted: nothing is free, not a wrapped-around lot
  reply = Check(1);
  EXPECT_FALSE(reply.capacity_ok());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: only 0 MiB of memory are free, the VM needs 0 MiB"));
}

TEST_F(SwitchoverTargetTest, CheckNamesAReplicaNeverAppliedHere) {
  store::WriteBatch batch;
  batch.Delete(replication::ReplicaRecordKey(kVmUuid));
  ASSERT_TRUE(store_.Write(batch).ok());
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_FALSE(reply.replica_known());
  EXPECT_EQ(reply.replica().disks_size(), 0);
  EXPECT_THAT(Problems(reply), ElementsAre("h2: no replica of VM " + kVmUuid + " has been applied here yet"));
}

TEST_F(SwitchoverTargetTest, CheckNamesAMissingReplicaImage) {
  storage_.images.erase(data_);
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_THAT(Problems(reply), ElementsAre("h2: replica " + data_ + " is missing"));
}

TEST_F(SwitchoverTargetTest, CheckNamesAHostWhereQemuCannotUsePostcopy) {
  postcopy_ready_ = false;
  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_FALSE(reply.postcopy_ready());
  EXPECT_THAT(Problems(reply), ElementsAre("h2: vm.unprivileged_userfaultfd is not 1: QEMU cannot use postcopy here"));
}

// The check is the VM's primary acting (its rounds are stopped): it settles a round a crash or a lost primary left
// pending (ReplicaKeeper::Settle; a mere read settles nothing). The copied overlays are discarded and the replica
// stands at its last applied round, which the primary then compares with its own. So the check never sees a
// pending round, and a leftover does not fail the switchover.
TEST_F(SwitchoverTargetTest, CheckSettlesARoundLeftPendingAndReportsTheRoundTheReplicaIsAt) {
  v1::ReplicaRecord record;
  record.set_vm_uuid(kVmUuid);
  record.set_primary_host(kOrigin);
  record.mutable_applied()->set_checkpoint(kCheckpoint);
  record.set_phase(v1::ReplicaRecord::PHASE_COPIED);
  record.mutable_pending()->set_checkpoint("vs-1800000000000");
  AddReplicaDisk(record, "vda", root_, "qcow2");
  record.mutable_disks(0)->set_overlay_path(root_ + std::string(replication::kOverlaySuffix));
  storage_.images[root_ + std::string(replication::kOverlaySuffix)] = std::make_shared<MemoryImage>();
  StoreReplicaRecord(record);

  const v1::CheckSwitchoverReply reply = Check();
  EXPECT_THAT(Problems(reply), IsEmpty());
  EXPECT_EQ(reply.replica().phase(), v1::ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(reply.replica().applied().checkpoint(), kCheckpoint) << "the pending round was discarded, not applied";
  EXPECT_FALSE(reply.replica().has_pending());
  EXPECT_FALSE(storage_.Has(root_ + std::string(replication::kOverlaySuffix)));
}

TEST_F(SwitchoverTargetTest, CheckNamesEveryProblemAtOnce) {
  ASSERT_TRUE(libvirt_.UndefineDomain(kShadowName).ok());
  storage_.images.erase(root_);
  postcopy_ready_ = false;
  EnterDrain("azure", "early-warning", "scheduled event", 1'800'000'300'000);
  libvirt_.capacity.running_memory_kib = 62 * kGiBInKiB;
  const v1::CheckSwitchoverReply reply = Check(4 * kGiBInKiB);
  EXPECT_FALSE(reply.shadow_defined());
  EXPECT_TRUE(reply.replica_known());
  EXPECT_FALSE(reply.postcopy_ready());
  EXPECT_TRUE(reply.draining());
  EXPECT_FALSE(reply.capacity_ok());
  EXPECT_THAT(Problems(reply),
              ElementsAre(HasSubstr("no shadow of VM"), HasSubstr("replica " + root_ + " is missing"),
                          HasSubstr("postcopy"), HasSubstr("draining itself (azure early-warning)"),
                          HasSubstr("only 2048 MiB of memory are free")));
  for (const std::string& problem : Problems(reply)) EXPECT_THAT(problem, ::testing::StartsWith("h2: "));
}

TEST_F(SwitchoverTargetTest, CheckCountsOnlyTheShadowLinkedToThisVm) {
  libvirt_.domains.at(kShadowName).metadata_xml = ShadowOfLink(kOtherUuid);  // same disks, another VM's shadow
  v1::CheckSwitchoverReply reply = Check();
  EXPECT_FALSE(reply.shadow_defined());
  EXPECT_THAT(Problems(reply), ElementsAre(HasSubstr("no shadow of VM " + kVmUuid)));

  libvirt_.domains.at(kShadowName).metadata_xml.clear();  // an ordinary domain
  reply = Check();
  EXPECT_THAT(Problems(reply), ElementsAre(HasSubstr("no shadow of VM " + kVmUuid)));
}

// ---- Prepare ----

TEST_F(SwitchoverTargetTest, PrepareCreatesATopOverEachReplicaAtTheRequestedPath) {
  const Status prepared = target_.Prepare(PrepareRequest());
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  EXPECT_THAT(images_.calls, ElementsAre("CreateOverlay " + TopOf(root_) + " " + root_ + " qcow2",
                                         "CreateOverlay " + TopOf(data_) + " " + data_ + " raw"));
  EXPECT_EQ(Slurp(TopOf(root_)), "overlay of " + root_);
  EXPECT_EQ(Slurp(TopOf(data_)), "overlay of " + data_);
  EXPECT_EQ(Slurp(root_), "replica") << "the replica itself is not touched";
  EXPECT_THAT(libvirt_.undefined, IsEmpty());
  EXPECT_EQ(libvirt_.domains.at(kShadowName).state, virt::DomainState::kShutoff);
}

TEST_F(SwitchoverTargetTest, PrepareRefusesATopThatIsNotATopOfThatReplica) {
  const std::vector<std::string> bad_tops = {
      root_,                                  // the replica itself
      dir_.Sub("other.qcow2.vs-top-1"),       // a top of another image
      root_ + ".vs-top-../../etc/passwd",     // a tag that is not letters and digits
      root_ + ".vs-top-",                     // an empty tag
      dir_.Sub("web-root.qcow2.bak"),         // no top at all
      "",
  };
  for (const std::string& top : bad_tops) {
    v1::PrepareSwitchoverRequest request = PrepareRequest();
    request.mutable_disks(0)->set_top_path(top);
    const Status prepared = target_.Prepare(request);
    EXPECT_EQ(prepared.code(), Code::kInvalidArgument) << top << ": " << prepared.ToString();
    EXPECT_THAT(prepared.message(), HasSubstr("switchover disk vda")) << top;
  }
  v1::PrepareSwitchoverRequest no_base = PrepareRequest();
  no_base.mutable_disks(1)->clear_base_path();
  EXPECT_EQ(target_.Prepare(no_base).code(), Code::kInvalidArgument);
  EXPECT_THAT(images_.calls, IsEmpty()) << "nothing is created for a request with one bad disk";
  EXPECT_FALSE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, PrepareRefusesAReplicaPathThatIsNotTheShadows) {
  // A peer cannot make this host create files next to images that are not this VM's shadow's.
  const std::string foreign = dir_.Sub("someone-else.qcow2");
  std::ofstream(foreign) << "not ours";
  v1::PrepareSwitchoverRequest request = PrepareRequest();
  *request.mutable_disks(1) = Disk("vdb", foreign, "qcow2", policy::TopPathOf(foreign, kTag));
  Status prepared = target_.Prepare(request);
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr(foreign + " is not a disk of shadow web-shadow"));

  // Another VM's shadow does not make its replicas this VM's.
  request = PrepareRequest();
  request.set_vm_uuid(kOtherUuid);
  prepared = target_.Prepare(request);
  EXPECT_EQ(prepared.code(), Code::kNotFound) << prepared.ToString();

  // A shadow that runs uses its replicas.
  libvirt_.domains.at(kShadowName).state = virt::DomainState::kRunning;
  prepared = target_.Prepare(PrepareRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr("running"));

  EXPECT_THAT(images_.calls, IsEmpty());
  EXPECT_FALSE(Exists(policy::TopPathOf(foreign, kTag)));
  EXPECT_FALSE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, PrepareRefusesAReplicaThatDoesNotExist) {
  std::filesystem::remove(data_);
  const Status prepared = target_.Prepare(PrepareRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr("replica " + data_ + " does not exist on h2"));
}

TEST_F(SwitchoverTargetTest, PrepareReplacesAStaleTopNoDomainUses) {
  std::ofstream(TopOf(root_)) << "stale top of an earlier attempt";
  const Status prepared = target_.Prepare(PrepareRequest());
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  EXPECT_EQ(Slurp(TopOf(root_)), "overlay of " + root_) << "the stale file was deleted and a new top made";
  EXPECT_EQ(images_.Count("CreateOverlay"), 2);
}

TEST_F(SwitchoverTargetTest, PrepareRefusesATopADomainUses) {
  // Some domain here runs on that very file (say the VM of an earlier, unfinished switchover).
  FakeBackupHypervisor::Domain& other = libvirt_.AddDomain("runs-on-it", kOtherUuid);
  other.disks = {{"vda", TopOf(data_), "qcow2", nullptr, {{data_, "raw"}}}};
  std::ofstream(TopOf(data_)) << "live top";
  const Status prepared = target_.Prepare(PrepareRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr(TopOf(data_) + " on h2 is in use by domain runs-on-it"));
  EXPECT_EQ(Slurp(TopOf(data_)), "live top") << "neither deleted nor overwritten";
  EXPECT_THAT(images_.calls, ElementsAre("CreateOverlay " + TopOf(root_) + " " + root_ + " qcow2"));
}

TEST_F(SwitchoverTargetTest, PrepareFailsWithQemuImgsErrorNamingTheHost) {
  images_.create_error = Internal("qemu-img: Could not open backing file: Permission denied");
  const Status prepared = target_.Prepare(PrepareRequest());
  EXPECT_EQ(prepared.code(), Code::kInternal) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr("creating the switchover top on h2"));
  EXPECT_THAT(prepared.message(), HasSubstr("Permission denied"));
  EXPECT_EQ(images_.Count("CreateOverlay"), 1) << "the first failure ends the preparation";
}

// ---- Prepare with fallback ----

// The check failed for another reason than the shadow (postcopy, the replica's round, ...): the shadow is still
// defined, shut off. It is the VM's reservation, not a user of its replicas (the fallback used to refuse then).
TEST_F(SwitchoverTargetTest, FallbackRemovesVirtShadowBitmapsFromTheVmsReplicasOnly) {
  ASSERT_EQ(libvirt_.domains.at(kShadowName).state, virt::DomainState::kShutoff);
  images_.bitmaps[root_] = {"vs-1799999980000", "backup-by-the-admin", "vs-1799999990000"};
  images_.bitmaps[data_] = {"vs-1799999990000"};  // raw keeps no bitmaps: it is not even asked
  const Status prepared = target_.Prepare(FallbackRequest());
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  EXPECT_THAT(images_.calls, ElementsAre("Info " + root_, "RemoveBitmap " + root_ + " vs-1799999980000",
                                         "RemoveBitmap " + root_ + " vs-1799999990000"));
  EXPECT_THAT(images_.bitmaps[root_], ElementsAre("backup-by-the-admin"));
  EXPECT_FALSE(Exists(TopOf(root_))) << "the fallback makes no top";
  EXPECT_FALSE(Exists(TopOf(data_)));
  EXPECT_THAT(logs_, ElementsAre(HasSubstr("removed bitmap vs-1799999980000 from the replica " + root_),
                                 HasSubstr("removed bitmap vs-1799999990000 from the replica " + root_)));
}

TEST_F(SwitchoverTargetTest, FallbackWorksWithoutTheShadow) {
  // Often why the check failed: the shadow is gone. The replica record still says which images are the VM's.
  ASSERT_TRUE(libvirt_.UndefineDomain(kShadowName).ok());
  images_.bitmaps[root_] = {"vs-1799999990000"};
  const Status prepared = target_.Prepare(FallbackRequest());
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  EXPECT_THAT(images_.bitmaps[root_], IsEmpty());
}

TEST_F(SwitchoverTargetTest, FallbackRefusesAnImageThatIsNotAReplicaOfTheVm) {
  const std::string foreign = dir_.Sub("someone-else.qcow2");
  std::ofstream(foreign) << "not ours";
  images_.bitmaps[foreign] = {"vs-1799999990000"};
  images_.bitmaps[root_] = {"vs-1799999990000"};
  v1::PrepareSwitchoverRequest request = FallbackRequest();
  *request.mutable_disks(0) = Disk("vda", foreign, "qcow2", policy::TopPathOf(foreign, kTag));
  const Status prepared = target_.Prepare(request);
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr(foreign + " on h2 is not a replica of VM " + kVmUuid));
  EXPECT_THAT(images_.calls, IsEmpty());
  EXPECT_THAT(images_.bitmaps[foreign], ElementsAre("vs-1799999990000"));
}

TEST_F(SwitchoverTargetTest, FallbackNeverTouchesAnImageADomainUses) {
  images_.bitmaps[root_] = {"vs-1799999990000"};
  FakeBackupHypervisor::Domain& other = libvirt_.AddDomain("runs-on-it", kOtherUuid);
  other.disks = {{"vda", root_, "qcow2", nullptr, {}}};
  Status prepared = target_.Prepare(FallbackRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr(root_ + " on h2 is in use by domain runs-on-it"));

  // Nor one the VM's own shadow runs on.
  libvirt_.domains.erase("runs-on-it");
  libvirt_.domains.at(kShadowName).state = virt::DomainState::kRunning;
  prepared = target_.Prepare(FallbackRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr("in use by domain web-shadow"));

  EXPECT_EQ(images_.Count("RemoveBitmap"), 0);
  EXPECT_THAT(images_.bitmaps[root_], ElementsAre("vs-1799999990000"));
}

TEST_F(SwitchoverTargetTest, FallbackWithoutAReplicaHereIsRefused) {
  store::WriteBatch batch;
  batch.Delete(replication::ReplicaRecordKey(kVmUuid));
  ASSERT_TRUE(store_.Write(batch).ok());
  const Status prepared = target_.Prepare(FallbackRequest());
  EXPECT_EQ(prepared.code(), Code::kFailedPrecondition) << prepared.ToString();
  EXPECT_THAT(prepared.message(), HasSubstr("nothing to migrate onto"));
  EXPECT_THAT(images_.calls, IsEmpty());
}

// ---- Complete ----

TEST_F(SwitchoverTargetTest, CompleteRecordsTheOriginUndefinesTheShadowAndFlattensWhileRoundsAreHeld) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  libvirt_.block_commit_fault = [this](const std::string& domain, const std::string& target) {
    events_.push_back("BlockCommit " + domain + " " + target);
    return Status::Ok();
  };
  const Status completed = target_.Complete(CompleteRequest());
  ASSERT_TRUE(completed.ok()) << completed.ToString();

  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok() && origin->has_value()) << origin.status().ToString();
  EXPECT_EQ((*origin)->vm_name(), kVmName);
  EXPECT_EQ((*origin)->origin_host(), kOrigin);
  EXPECT_EQ((*origin)->arrived_unix_ms(), ToUnixMillis(clock_.WallNow()));
  StatusOr<std::optional<v1::GuestFailedRecord>> failed = arrivals_.GuestFailureOf(kVmUuid);
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->has_value());

  EXPECT_THAT(libvirt_.undefined, ElementsAre(kShadowName)) << "its images are the VM's now: only the definition goes";
  EXPECT_THAT(events_, ElementsAre("Hold " + kVmUuid, "Quiesce " + kVmUuid, "BlockCommit web vda",
                                   "BlockCommit web vdb", "Unhold " + kVmUuid));
  const FakeBackupHypervisor::Domain& vm = libvirt_.domains.at(kVmName);
  EXPECT_EQ(vm.disks[0].path, root_);
  EXPECT_EQ(vm.disks[1].path, data_);
  EXPECT_FALSE(Exists(TopOf(root_))) << "no domain uses the tops any more";
  EXPECT_FALSE(Exists(TopOf(data_)));
  EXPECT_TRUE(Exists(root_));
  EXPECT_TRUE(Exists(data_));
}

TEST_F(SwitchoverTargetTest, CompleteRemovesTheBitmapsEarlierHostsLeftButNotThisHostsOwn) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  libvirt_.AddForeignCheckpoint(kVmName, "vs-1800000100000");  // this host's libvirt has made one since
  images_.bitmaps[root_] = {"vs-1700000000000", "backup-by-the-admin", "vs-1800000100000"};
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.add_source_checkpoints("vs-1799999990000");  // came along with the migration, in QEMU's memory
  const Status completed = target_.Complete(request);
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  // vda only: vdb is raw once flattened.
  EXPECT_THAT(libvirt_.discarded_bitmaps,
              UnorderedElementsAre("web vda vs-1700000000000", "web vda vs-1799999990000"));
  EXPECT_THAT(images_.calls, ElementsAre("Info " + root_)) << "read from the image the VM runs on after the flatten";
}

TEST_F(SwitchoverTargetTest, ASourceThatLeftAfterItsMigrationHasItsSwitchoverCompletedHere) {
  v1::PrepareSwitchoverRequest prepare = PrepareRequest();
  prepare.add_source_checkpoints("vs-1799999990000");  // kept with the prepared record for this case
  PrepareFirst(prepare);
  AddArrivedVm();
  images_.bitmaps[root_] = {};
  // Another host's arrival, and this one's as seen for a host that is still here: none of them is touched.
  StatusOr<int> none = target_.CompleteLeftBehind("h3");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0);
  EXPECT_TRUE(libvirt_.undefined.empty());

  StatusOr<int> completed = target_.CompleteLeftBehind(kOrigin);
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(*completed, 1);
  // As Complete does: the shadow's definition goes, the tops are flattened, the origin is remembered, and the
  // bitmaps the VM brought along (the source's checkpoints, named at Prepare) are removed.
  EXPECT_THAT(libvirt_.undefined, ElementsAre(kShadowName));
  EXPECT_EQ(libvirt_.domains.at(kVmName).disks[0].path, root_);
  EXPECT_FALSE(Exists(TopOf(root_)));
  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok() && origin->has_value());
  EXPECT_EQ((*origin)->origin_host(), kOrigin);
  EXPECT_THAT(libvirt_.discarded_bitmaps, ElementsAre("web vda vs-1799999990000"));
  // Done once: the next refresh finds nothing left to complete.
  completed = target_.CompleteLeftBehind(kOrigin);
  ASSERT_TRUE(completed.ok());
  EXPECT_EQ(*completed, 0);
}

TEST_F(SwitchoverTargetTest, AVmThatDoesNotRunHereIsNotCompletedWhenItsSourceLeaves) {
  // The migration never ended (the VM is not here, or paused because its postcopy lost the source): the
  // shadow's promotion is the way back, and the tops stay for its failover.
  PrepareFirst(PrepareRequest());
  StatusOr<int> completed = target_.CompleteLeftBehind(kOrigin);
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(*completed, 0);
  AddArrivedVm();
  libvirt_.domains.at(kVmName).state = virt::DomainState::kPaused;
  completed = target_.CompleteLeftBehind(kOrigin);
  ASSERT_TRUE(completed.ok());
  EXPECT_EQ(*completed, 0);
  EXPECT_TRUE(libvirt_.undefined.empty());
  EXPECT_TRUE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, CompleteWithAFailedGuestRecordsItAndChangesNothing) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.set_guest_failed("dead: no disk or network activity and the agent is silent");
  request.add_source_checkpoints("vs-1799999990000");
  const Status completed = target_.Complete(request);
  ASSERT_TRUE(completed.ok()) << completed.ToString();

  StatusOr<std::optional<v1::GuestFailedRecord>> failed = arrivals_.GuestFailureOf(kVmUuid);
  ASSERT_TRUE(failed.ok() && failed->has_value()) << failed.status().ToString();
  EXPECT_EQ((*failed)->vm_name(), kVmName);
  EXPECT_EQ((*failed)->origin_host(), kOrigin);
  EXPECT_EQ((*failed)->seen(), request.guest_failed());
  EXPECT_EQ((*failed)->failed_unix_ms(), ToUnixMillis(clock_.WallNow()));

  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok());
  EXPECT_FALSE(origin->has_value());
  EXPECT_THAT(libvirt_.undefined, IsEmpty());
  EXPECT_TRUE(libvirt_.domains.count(kShadowName));
  EXPECT_THAT(libvirt_.block_commits, IsEmpty());
  EXPECT_THAT(libvirt_.discarded_bitmaps, IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
  EXPECT_THAT(images_.calls, IsEmpty());
  EXPECT_EQ(libvirt_.domains.at(kVmName).disks[0].path, TopOf(root_)) << "left on its tops";
  EXPECT_TRUE(Exists(TopOf(root_)));
  EXPECT_TRUE(Exists(TopOf(data_)));
  EXPECT_THAT(logs_, ElementsAre(HasSubstr("web arrived from h1 but its guest makes no progress")));
}

TEST_F(SwitchoverTargetTest, CompleteWaitsOutADiskThatIsStillHeld) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  int refusals = 3;  // libvirt lets go of the incoming migration's storage job a moment later
  libvirt_.block_commit_fault = [&refusals](const std::string&, const std::string&) {
    return refusals-- > 0 ? Aborted("block device is in use by block job: drive-mirror") : Status::Ok();
  };
  const MonoTime start = clock_.Now();
  const Status completed = target_.Complete(CompleteRequest());
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  EXPECT_EQ(libvirt_.block_commits.size(), 5u);  // vda three times refused, then vda and vdb
  EXPECT_EQ(clock_.Now() - start, 1500ms) << "500 ms between attempts, on the injected clock";
  EXPECT_EQ(libvirt_.domains.at(kVmName).disks[0].path, root_);
  EXPECT_FALSE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, ACommitWhosePivotDidNotTakeIsNotAFlattenAndIsTriedAgain) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  libvirt_.block_commits_without_pivot = 2;  // libvirt's job ended, the disk still on its top
  const MonoTime start = clock_.Now();
  const Status completed = target_.Complete(CompleteRequest());
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  EXPECT_EQ(libvirt_.block_commits.size(), 4u);  // vda twice without a pivot, then vda and vdb
  EXPECT_EQ(clock_.Now() - start, 1000ms);
  EXPECT_EQ(libvirt_.domains.at(kVmName).disks[0].path, root_);
  EXPECT_FALSE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, CompleteFailsWhenTheFlattenKeepsFailingAndStillUnholds) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  libvirt_.block_commit_fault = [](const std::string&, const std::string&) {
    return Aborted("block device is in use by block job: backup");
  };
  const MonoTime start = clock_.Now();
  const Status completed = target_.Complete(CompleteRequest());
  EXPECT_EQ(completed.code(), Code::kAborted) << completed.ToString();
  EXPECT_THAT(completed.message(), HasSubstr("completing the switchover of web on h2"));
  EXPECT_THAT(completed.message(), HasSubstr("flattening " + TopOf(root_) + " into " + root_ + " (61 attempts)"));
  EXPECT_EQ(clock_.Now() - start, 30s) << "gives up after 30 s of the injected clock";
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.front(), "Hold " + kVmUuid);
  EXPECT_EQ(events_.back(), "Unhold " + kVmUuid) << "this host's rounds of the VM are not left held";
  EXPECT_THAT(libvirt_.discarded_bitmaps, IsEmpty());
  EXPECT_TRUE(Exists(TopOf(root_))) << "the VM still runs on its tops: they stay";
  EXPECT_TRUE(Exists(TopOf(data_)));
  // The origin is remembered already; a retry of the whole completion finds the shadow gone and goes on.
  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok() && origin->has_value());
  libvirt_.block_commit_fault = nullptr;
  const Status retried = target_.Complete(CompleteRequest());
  ASSERT_TRUE(retried.ok()) << retried.ToString();
  EXPECT_THAT(libvirt_.undefined, ElementsAre(kShadowName));
  EXPECT_FALSE(Exists(TopOf(root_)));
}

TEST_F(SwitchoverTargetTest, CompleteGoesOnWhenTheVmIsNotScheduledHereYet) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  rounds_.quiesce_error = NotFound("VM " + kVmUuid + " is not scheduled here");
  const Status completed = target_.Complete(CompleteRequest());
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  EXPECT_THAT(events_, ElementsAre("Hold " + kVmUuid, "Quiesce " + kVmUuid, "Unhold " + kVmUuid));
  EXPECT_EQ(libvirt_.block_commits.size(), 2u);
}

TEST_F(SwitchoverTargetTest, CompleteOfAFallbackMigrationHasNoTopToFlatten) {
  // The plain migration brought the VM onto the replicas themselves; the request names no disk.
  PrepareFirst(FallbackRequest());
  FakeBackupHypervisor::Domain& vm = libvirt_.AddDomain(kVmName, kVmUuid);
  vm.disks = {{"vda", root_, "qcow2", nullptr, {}}, {"vdb", data_, "raw", nullptr, {}}};
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.clear_disks();
  const Status completed = target_.Complete(request);
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  EXPECT_THAT(libvirt_.undefined, ElementsAre(kShadowName));
  EXPECT_THAT(libvirt_.block_commits, IsEmpty());
  EXPECT_TRUE(Exists(root_));
}

TEST_F(SwitchoverTargetTest, CompleteRefusesTopsThatAreNotTops) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.mutable_disks(1)->set_top_path(root_);  // would delete another disk's replica
  const Status completed = target_.Complete(request);
  EXPECT_EQ(completed.code(), Code::kInvalidArgument) << completed.ToString();
  EXPECT_THAT(libvirt_.undefined, IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok());
  EXPECT_FALSE(origin->has_value());
  EXPECT_TRUE(Exists(root_));
}

TEST_F(SwitchoverTargetTest, CompleteWithoutAPreparedSwitchoverChangesNothing) {
  AddArrivedVm();
  const Status completed = target_.Complete(CompleteRequest());
  EXPECT_EQ(completed.code(), Code::kFailedPrecondition) << completed.ToString();
  EXPECT_THAT(completed.message(), HasSubstr("no switchover of VM " + kVmUuid + " was prepared on h2"));
  EXPECT_THAT(libvirt_.undefined, IsEmpty()) << "the shadow of a VM nobody switched over stays";
  EXPECT_THAT(events_, IsEmpty());
  EXPECT_THAT(libvirt_.block_commits, IsEmpty());
  EXPECT_TRUE(Exists(TopOf(root_)));
  StatusOr<std::optional<v1::OriginRecord>> origin = arrivals_.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok());
  EXPECT_FALSE(origin->has_value());
}

TEST_F(SwitchoverTargetTest, CompleteActsOnlyOnTheDomainThatIsTheVm) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  libvirt_.AddDomain("database", kOtherUuid);
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.set_vm_name("database");
  const Status completed = target_.Complete(request);
  EXPECT_EQ(completed.code(), Code::kFailedPrecondition) << completed.ToString();
  EXPECT_THAT(completed.message(), HasSubstr("domain database on h2 is " + kOtherUuid + ", not VM " + kVmUuid));
  EXPECT_THAT(libvirt_.undefined, IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(SwitchoverTargetTest, CompleteRefusesATopItDidNotPrepare) {
  PrepareFirst(PrepareRequest());
  AddArrivedVm();
  const std::string other_top = policy::TopPathOf(root_, "1700000000000");
  std::ofstream(other_top) << "an older switchover's top";
  v1::CompleteSwitchoverRequest request = CompleteRequest();
  request.mutable_disks(0)->set_top_path(other_top);
  const Status completed = target_.Complete(request);
  EXPECT_EQ(completed.code(), Code::kFailedPrecondition) << completed.ToString();
  EXPECT_THAT(completed.message(), HasSubstr("is not one h2 prepared"));
  EXPECT_THAT(libvirt_.undefined, IsEmpty());
  EXPECT_TRUE(Exists(other_top));
}

// The record stays, completed: a Complete the origin retries (its shadowd was killed while this one went on, as
// in lab_switchover_crash_test) is answered done and changes nothing, and so is a late Abort. (The next Prepare
// of the VM, for its next shadow here, replaces the record.)
TEST_F(SwitchoverTargetTest, CompleteKeepsThePreparedSwitchoverAsCompletedSoThatARetryIsDone) {
  PrepareFirst(PrepareRequest());
  StatusOr<std::optional<v1::SwitchoverRecord>> prepared = arrivals_.PreparedOf(kVmUuid);
  ASSERT_TRUE(prepared.ok() && prepared->has_value());
  EXPECT_EQ((*prepared)->source_host(), kOrigin);
  EXPECT_EQ((*prepared)->target_host(), kThisHost);
  EXPECT_EQ((*prepared)->disks_size(), 2);
  EXPECT_EQ((*prepared)->finished_unix_ms(), 0);
  AddArrivedVm();
  ASSERT_TRUE(target_.Complete(CompleteRequest()).ok());
  prepared = arrivals_.PreparedOf(kVmUuid);
  ASSERT_TRUE(prepared.ok() && prepared->has_value());
  EXPECT_NE((*prepared)->finished_unix_ms(), 0);
  images_.calls.clear();
  const Status retried = target_.Complete(CompleteRequest());
  EXPECT_TRUE(retried.ok()) << retried.ToString();
  v1::AbortSwitchoverRequest abort;
  abort.set_vm_uuid(kVmUuid);
  *abort.mutable_disks() = CompleteRequest().disks();
  const Status aborted = target_.Abort(abort);
  EXPECT_TRUE(aborted.ok()) << aborted.ToString();
  EXPECT_THAT(images_.calls, IsEmpty()) << "a completed switchover is not flattened or deleted again";
}

// ---- Abort ----

TEST_F(SwitchoverTargetTest, AbortDeletesTheTopsNoDomainUses) {
  ASSERT_TRUE(target_.Prepare(PrepareRequest()).ok());
  ASSERT_TRUE(Exists(TopOf(root_)) && Exists(TopOf(data_)));
  const Status aborted = target_.Abort(AbortRequest());
  ASSERT_TRUE(aborted.ok()) << aborted.ToString();
  EXPECT_FALSE(Exists(TopOf(root_)));
  EXPECT_FALSE(Exists(TopOf(data_)));
  EXPECT_TRUE(Exists(root_)) << "the replicas stay";
  EXPECT_TRUE(Exists(data_));
  EXPECT_TRUE(target_.Abort(AbortRequest()).ok()) << "nothing left to delete is no error";
}

TEST_F(SwitchoverTargetTest, AbortKeepsATopADomainUses) {
  ASSERT_TRUE(target_.Prepare(PrepareRequest()).ok());
  // The migration got far enough: the VM runs here on its vdb top.
  FakeBackupHypervisor::Domain& vm = libvirt_.AddDomain(kVmName, kVmUuid);
  vm.disks = {{"vdb", TopOf(data_), "qcow2", nullptr, {{data_, "raw"}}}};
  const Status aborted = target_.Abort(AbortRequest());
  EXPECT_EQ(aborted.code(), Code::kFailedPrecondition) << aborted.ToString();
  EXPECT_THAT(aborted.message(), HasSubstr(TopOf(data_) + " on h2 is in use by domain web; not deleting it"));
  EXPECT_FALSE(Exists(TopOf(root_)));
  EXPECT_TRUE(Exists(TopOf(data_)));
}

TEST_F(SwitchoverTargetTest, AbortRefusesToDeleteWhatIsNotATop) {
  v1::AbortSwitchoverRequest request = AbortRequest();
  request.mutable_disks(0)->set_top_path(data_);
  EXPECT_EQ(target_.Abort(request).code(), Code::kInvalidArgument);
  EXPECT_TRUE(Exists(data_));
}

// Any "<image>.vs-top-<tag>" no domain used could be deleted by anybody who asked: now only the tops of a
// switchover prepared here.
TEST_F(SwitchoverTargetTest, AbortDeletesNoTopItDidNotPrepare) {
  const std::string foreign_base = dir_.Sub("mail.qcow2");
  const std::string foreign_top = policy::TopPathOf(foreign_base, "1");
  std::ofstream(foreign_top) << "somebody's top";
  v1::AbortSwitchoverRequest request;
  request.set_vm_uuid(kOtherUuid);
  *request.add_disks() = Disk("vda", foreign_base, "qcow2", foreign_top);
  EXPECT_TRUE(target_.Abort(request).ok()) << "nothing was prepared for that VM: nothing to do";
  EXPECT_TRUE(Exists(foreign_top));

  PrepareFirst(PrepareRequest());
  request.set_vm_uuid(kVmUuid);
  const Status aborted = target_.Abort(request);
  EXPECT_EQ(aborted.code(), Code::kFailedPrecondition) << aborted.ToString();
  EXPECT_TRUE(Exists(foreign_top));
  EXPECT_TRUE(Exists(TopOf(root_))) << "nor anything else when one disk is not the switchover's";
}

TEST_F(SwitchoverTargetTest, AbortAfterAPrepareThatFailedHalfWayDeletesWhatItCreated) {
  images_.create_error = Unavailable("qemu-img: disk full");
  ASSERT_FALSE(target_.Prepare(PrepareRequest()).ok());
  images_.create_error = Status::Ok();
  std::ofstream(TopOf(root_)) << "created before the failure";
  ASSERT_TRUE(target_.Abort(AbortRequest()).ok());
  EXPECT_FALSE(Exists(TopOf(root_)));
}

// lab_switchover_crash_test (fresh clone): a Complete of the switchover from h3 still ran on h1 after h2's
// switchover to h1 was prepared, and wrote h3's record back over it; every Complete from h2 was refused after.
TEST_F(SwitchoverTargetTest, ALateCompleteOfAnOlderSwitchoverLeavesTheNewerPreparedRecord) {
  v1::SwitchoverRecord older;
  older.set_vm_uuid(kVmUuid);
  older.set_source_host("h3");
  ASSERT_TRUE(arrivals_.RecordPrepared(older).ok());
  auto read_by_the_late_complete = arrivals_.PreparedOf(kVmUuid);
  ASSERT_TRUE(read_by_the_late_complete.ok() && read_by_the_late_complete->has_value());
  clock_.Advance(std::chrono::seconds(1));
  v1::SwitchoverRecord newer;
  newer.set_vm_uuid(kVmUuid);
  newer.set_source_host("h2");
  ASSERT_TRUE(arrivals_.RecordPrepared(newer).ok());

  ASSERT_TRUE(arrivals_.RecordCompleted(**read_by_the_late_complete).ok());
  auto stored = arrivals_.PreparedOf(kVmUuid);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->source_host(), "h2");
  EXPECT_EQ((*stored)->finished_unix_ms(), 0);

  // The newer one's own completion is kept as completed.
  ASSERT_TRUE(arrivals_.RecordCompleted(**stored).ok());
  stored = arrivals_.PreparedOf(kVmUuid);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->source_host(), "h2");
  EXPECT_NE((*stored)->finished_unix_ms(), 0);
}

// ---- HostState ----

TEST_F(SwitchoverTargetTest, HostStateOfAHostThatIsNotDraining) {
  const v1::HostStateReply reply = target_.HostState();
  EXPECT_FALSE(reply.draining());
  EXPECT_EQ(reply.drain_deadline_unix_ms(), 0);
  EXPECT_EQ(reply.drain_reason(), "");
}

TEST_F(SwitchoverTargetTest, HostStateReportsTheDrainItsDeadlineAndWhy) {
  EnterDrain("azure", "early-warning", "", 1'800'000'300'000);
  v1::HostStateReply reply = target_.HostState();
  EXPECT_TRUE(reply.draining());
  EXPECT_EQ(reply.drain_deadline_unix_ms(), 1'800'000'300'000);
  EXPECT_EQ(reply.drain_reason(), "azure early-warning");

  EnterDrain("gce", "preemption", "instance is being preempted", 1'800'000'030'000);
  reply = target_.HostState();
  EXPECT_EQ(reply.drain_deadline_unix_ms(), 1'800'000'030'000);
  EXPECT_EQ(reply.drain_reason(), "gce preemption: instance is being preempted");

  ASSERT_TRUE(drain_.Clear().ok());
  EXPECT_FALSE(target_.HostState().draining());
}

// ---- A Nova instance (docs/nova.md): its instance directory goes aside for Nova's live migration and its files
// come back in place of Nova's when the migration arrives.

class NovaArrivalTest : public SwitchoverTargetTest {
 protected:
  ~NovaArrivalTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(StashedPathOf(dir_.path()), ignored);  // what a failed test left aside
  }
  v1::PrepareSwitchoverRequest NovaPrepareRequest() const {
    v1::PrepareSwitchoverRequest request = PrepareRequest();
    request.set_nova_instance_dir(dir_.path());
    return request;
  }
  // What Nova's pre-live-migration step makes: the directory, a qcow2 of its own at each top's path, the kernel.
  void NovaMakesItsDirectory() {
    std::filesystem::create_directory(dir_.path());
    for (const std::string& base : {root_, data_}) std::ofstream(TopOf(base)) << "nova's qcow2 over _base/disk";
    std::ofstream(dir_.Sub("kernel")) << "kernel";
  }
};

TEST_F(NovaArrivalTest, PrepareSetsTheDirectoryAsideAndTheArrivalPutsReplicasAndTopsInPlaceOfNovasFiles) {
  PrepareFirst(NovaPrepareRequest());
  const std::string stash = StashedPathOf(dir_.path());
  EXPECT_FALSE(Exists(dir_.path())) << "Nova refuses a target where the instance directory exists";
  EXPECT_TRUE(Exists(stash + "/web-root.qcow2"));
  EXPECT_TRUE(Exists(stash + "/" + std::filesystem::path(TopOf(root_)).filename().string()));

  NovaMakesItsDirectory();
  const Status arrived = target_.OnIncomingMigration(kVmUuid);
  ASSERT_TRUE(arrived.ok()) << arrived.ToString();
  EXPECT_EQ(Slurp(root_), "replica");
  EXPECT_EQ(Slurp(TopOf(root_)), "overlay of " + root_);
  EXPECT_EQ(Slurp(TopOf(data_)), "overlay of " + data_);
  EXPECT_EQ(Slurp(dir_.Sub("kernel")), "kernel") << "Nova's other files stay";
  EXPECT_FALSE(Exists(stash));
  EXPECT_TRUE(target_.OnIncomingMigration(kVmUuid).ok()) << "a second call finds nothing to move";
}

TEST_F(NovaArrivalTest, AnArrivalBeforeNovaMadeItsDirectoryIsRefusedAndAbortPutsTheDirectoryBack) {
  PrepareFirst(NovaPrepareRequest());
  const Status arrived = target_.OnIncomingMigration(kVmUuid);
  EXPECT_EQ(arrived.code(), Code::kFailedPrecondition) << arrived.ToString();
  EXPECT_THAT(arrived.message(), HasSubstr("Nova has not made the instance directory " + dir_.path()));

  const Status aborted = target_.Abort(AbortRequest());
  ASSERT_TRUE(aborted.ok()) << aborted.ToString();
  EXPECT_EQ(Slurp(root_), "replica");
  EXPECT_EQ(Slurp(data_), "replica");
  EXPECT_FALSE(Exists(TopOf(root_)));
  EXPECT_FALSE(Exists(StashedPathOf(dir_.path())));
}

TEST_F(NovaArrivalTest, APrepareAgainAfterAnInterruptedOneFindsTheReplicasSetAside) {
  PrepareFirst(NovaPrepareRequest());
  const Status again = target_.Prepare(NovaPrepareRequest());
  ASSERT_TRUE(again.ok()) << again.ToString();
  EXPECT_FALSE(Exists(dir_.path()));
  EXPECT_TRUE(Exists(StashedPathOf(dir_.path()) + "/web-data.raw"));
}

TEST_F(NovaArrivalTest, AFallbackLeavesNovasFilesAndDropsTheStaleReplicasOnCompletion) {
  v1::PrepareSwitchoverRequest request = NovaPrepareRequest();
  request.set_fallback(true);
  PrepareFirst(request);
  EXPECT_TRUE(Exists(StashedPathOf(dir_.path())));
  NovaMakesItsDirectory();
  ASSERT_TRUE(target_.OnIncomingMigration(kVmUuid).ok());
  EXPECT_EQ(Slurp(TopOf(root_)), "nova's qcow2 over _base/disk") << "Nova's block migration brings the whole disk";

  FakeBackupHypervisor::Domain& vm = libvirt_.AddDomain(kVmName, kVmUuid);
  vm.disks = {{"vda", root_, "qcow2", nullptr, {}}};
  v1::CompleteSwitchoverRequest complete = CompleteRequest();
  complete.clear_disks();
  const Status completed = target_.Complete(complete);
  ASSERT_TRUE(completed.ok()) << completed.ToString();
  EXPECT_FALSE(Exists(StashedPathOf(dir_.path())));
}

TEST_F(NovaArrivalTest, DisksOutsideTheNamedInstanceDirectoryAreRefused) {
  v1::PrepareSwitchoverRequest request = NovaPrepareRequest();
  request.set_nova_instance_dir(dir_.path() + "/elsewhere");
  const Status refused = target_.Prepare(request);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument) << refused.ToString();
  EXPECT_TRUE(Exists(root_)) << "nothing was moved";
}

TEST_F(NovaArrivalTest, AnIncomingMigrationOfAVmNotPreparedHereChangesNothing) {
  EXPECT_TRUE(target_.OnIncomingMigration(kVmUuid).ok());
  EXPECT_TRUE(Exists(root_));
}

}  // namespace
}  // namespace vs::switchover
