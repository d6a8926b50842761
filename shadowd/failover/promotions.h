// Crash promotion on the shadow host (issue 12, docs/failover.md): deciding when a shadow defined here becomes
// its VM (the trigger), answering a returning primary's QueryPromotion (the veto), an operator's promote, and
// carrying each decided promotion through its persisted lifecycle (promotion_machine.h) exactly once.
//
// The trigger (Tick): for every shadow defined on this host whose VM's primary is absent from this host's
// membership, MayPromote (fencing.h) with the survivors' wait measured from when this host saw the primary leave
// (HeartbeatHistory's `since`, turned into this clock's monotonic time so that a restart does not restart the
// wait), or at once when the primary's libvirtd confirmed the VM stopped there (FenceAtPrimary). One more rule
// than MayPromote's (docs/failover.md, assumptions): a primary absent from the process group whose Corosync is
// still in the partition (its shadowd died or restarts; the host lives and fences nothing) counts as a member:
// nothing is promoted and nothing is destroyed there.
// The decision (PROMOTION_PHASE_DECIDED) is stored before anything acts on it, except the prober's destroy on
// the primary (FenceAtPrimary), which is decided under the same lock before the veto can be asked again.
//
// The veto: QueryPromotion and every decision run under one mutex (decide_mu_). A VM with a stored promotion
// record (not FAILED) is PROMOTED; otherwise a PromotionVeto naming the asking host is stored before the
// NOT_PROMOTED answer leaves, and the trigger does not promote a vetoed VM while that host is a member, nor while
// this host's view still shows only the departure from before the veto (its membership may lag behind the host's
// return). The veto is cleared when the trigger sees the host leave after the veto (it fences again then; the wait
// starts anew from that departure).
//
// Running: every record not yet terminal is taken one phase at a time through PromotionHost (which a test
// fakes), each transition stored (one batch, version + 1) before the next step. Runs happen on the caller of
// Tick only (the promotion thread, PromotionWorker): no two runs of one record overlap.
//
// Done: once grown, the VM's origin (the primary it was promoted from) is recorded in this host's ArrivalRecords
// (arrived by a promotion), part of the last step, so that `virt-shadow failback` knows where home is.
//
// Sizes (see shadow_domain_xml.h): a shadow carries the VM's full size as its maximum (<vcpu> and <memory>) and
// the reduced size as current (<vcpu current>, <currentMemory>), and libvirt gives an x86 QEMU domain a virtio
// memballoon unless the VM's definition said none; so the promoted VM starts at the reduced size and grows by
// vCPU hotplug and the balloon. A VM defined with <memballoon model='none'/> cannot grow its memory: that is a
// shortfall, said in the record.
//
// Ownership: borrows store, clock, host and logger sink (they must outlive it). Thread-safety: Tick and Run
// from one thread (the promotion thread); QueryPromotion, OperatorPromote, Get, List and FenceAtPrimary from
// any thread. Failure modes: Tick returns the first store error (a step's failure is recorded in its record
// and retried, not returned); QueryPromotion returns store errors (the caller then must not resume its VM);
// OperatorPromote returns CheckOperatorPromote's refusals, kNotFound for a VM with no shadow here,
// kAlreadyExists when a promotion of it is decided already.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/logger.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/failover.pb.h"
#include "proto/replication.pb.h"
#include "shadowd/cluster/heartbeat_history.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/failover/fencing.h"
#include "shadowd/failover/promotion.h"
#include "shadowd/failover/promotion_machine.h"
#include "shadowd/store/store.h"
#include "shadowd/switchover/arrival_records.h"

namespace vs::failover {

// What a promotion does on this host. The production one is LibvirtPromotionHost (libvirt_promotion_host.h);
// tests fake it. Every call may block on the local libvirtd; none talks to another host.
class PromotionHost {
 public:
  virtual ~PromotionHost() = default;
  // The shadow domains defined here (each with its shadow-of link).
  virtual StatusOr<std::vector<controller::PeerShadow>> LocalShadows() = 0;
  // ReplicaKeeper::SettleForPromotion.
  virtual StatusOr<virtshadow::v1::ReplicaRecord> SettleReplica(const std::string& vm_uuid) = 0;
  // A domain's persistent definition (kNotFound when it is not defined).
  virtual StatusOr<std::string> DefinitionXml(const std::string& name) = 0;
  virtual Status Define(const std::string& xml) = 0;
  virtual Status Undefine(const std::string& name) = 0;  // OK when it does not exist
  virtual StatusOr<PromotedVmState> VmState(const std::string& name) = 0;
  virtual Status Start(const std::string& name) = 0;
  // The running domain's live size (current vCPUs, current memory).
  virtual StatusOr<VmSize> LiveSize(const std::string& name) = 0;
  // What the host has unreserved besides `name`'s own allocation: its CPUs and memory less the running domains'
  // and the reduced sizes of the shadows defined here (their reservations).
  virtual StatusOr<VmSize> FreeBesides(const std::string& name) = 0;
  virtual Status SetVcpusLive(const std::string& name, std::uint32_t vcpus) = 0;
  virtual Status SetMemoryLive(const std::string& name, std::uint64_t memory_kib) = 0;
};

struct PromotionSettings {
  std::string this_host;
  FenceTiming timing;
  // For the RPO bound of a VM whose policy did not come back with it (its policy's interval otherwise).
  Duration replication_interval{std::chrono::seconds(5)};
};

// Store keys (table kFailover).
std::string PromotionRecordKey(const std::string& vm_uuid);
std::string PromotionVetoKey(const std::string& vm_uuid);

class Promotions {
 public:
  Promotions(store::Store& store, Clock& clock, PromotionHost& host, PromotionSettings settings, Logger::Line log);

  // One pass of the trigger over `view`, then every unfinished promotion as far as it goes.
  Status Tick(const cluster::MembershipView& view) VS_EXCLUDES(decide_mu_);

  // The VMs whose primary is absent and that wait for promotion (uuid -> {name, primary host}): what a prober
  // may try to destroy on the primary's libvirtd. Filled by Tick.
  std::map<std::string, std::pair<std::string, std::string>> AwaitingPromotion() const VS_EXCLUDES(awaiting_mu_);

  // The prober's fence, MayPromote's "at once": if `vm_uuid` still waits for promotion (as the last Tick saw it,
  // and no veto came since), calls `destroy` (which destroys the VM on its primary's libvirtd and says whether it
  // is stopped there) and, when it is, decides the promotion before returning. All under the decision lock: a
  // returning primary's QueryPromotion is answered before the destroy (which then does not happen) or after the
  // decision (the primary hears PROMOTED and keeps its copy fenced), never in between. In between, a lab run's
  // VM was destroyed on its primary, back after a 1 s split, and promoted nowhere. Returns whether it decided;
  // errors: `destroy`'s (nothing decided) and the store's.
  StatusOr<bool> FenceAtPrimary(const std::string& vm_uuid, const std::function<StatusOr<bool>()>& destroy)
      VS_EXCLUDES(decide_mu_, awaiting_mu_);

  StatusOr<virtshadow::v1::PromotionQueryReply> QueryPromotion(const virtshadow::v1::PromotionQueryRequest& request)
      VS_EXCLUDES(decide_mu_);

  // `virt-shadow promote`: decides the promotion of the VM named `vm` (its name or uuid) whose shadow is here.
  // `host_in_quorate_membership`: whether the VM's primary is a member of this host's quorate partition.
  StatusOr<virtshadow::v1::PromotionRecord> OperatorPromote(const std::string& vm, bool force,
                                                            const std::string& reason,
                                                            const cluster::MembershipView& view)
      VS_EXCLUDES(decide_mu_);

  // The promoted VM went home (`virt-shadow failback` to `home`, its primary, which discarded its stale copy):
  // the promotion is over and its record is deleted (logged), so that this host promotes the VM again when it
  // holds its shadow and `home` fails, and answers a later QueryPromotion from `home` by the facts of then. Only a
  // DONE record whose primary is `home` (FailedPrecondition otherwise); OK without a record.
  Status EndAfterFailback(const std::string& vm_uuid, const std::string& home) VS_EXCLUDES(decide_mu_);

  StatusOr<std::optional<virtshadow::v1::PromotionRecord>> Get(const std::string& vm_uuid) const;
  StatusOr<std::vector<virtshadow::v1::PromotionRecord>> List() const;

  // Takes one record as far as it goes now (until terminal or a step to retry). Public for tests of resume;
  // the caller is the promotion thread.
  Status Run(virtshadow::v1::PromotionRecord record);

 private:
  // Stores a new DECIDED record for `shadow`; `failure_detection` is the membership's (for the RPO estimate).
  // Needs decide_mu_.
  StatusOr<virtshadow::v1::PromotionRecord> Decide(const controller::PeerShadow& shadow,
                                                   const cluster::HostHeartbeatView* primary,
                                                   Duration failure_detection, const std::string& reason,
                                                   bool forced) VS_REQUIRES(decide_mu_);
  // Decides what the trigger allows; returns an error only for the store.
  Status DecideAll(const cluster::MembershipView& view, const std::vector<controller::PeerShadow>& shadows)
      VS_EXCLUDES(decide_mu_);
  Status Save(virtshadow::v1::PromotionRecord& record);
  // The phase's step. Fills the record; returns the outcome.
  PromotionOutcome Step(virtshadow::v1::PromotionRecord& record);
  PromotionOutcome Settle(virtshadow::v1::PromotionRecord& record);
  PromotionOutcome DefineVm(virtshadow::v1::PromotionRecord& record);
  PromotionOutcome StartVm(virtshadow::v1::PromotionRecord& record);
  PromotionOutcome Grow(virtshadow::v1::PromotionRecord& record);
  std::optional<MonoTime> MonoOf(WallTime wall) const;

  store::Store& store_;
  Clock& clock_;
  PromotionHost& host_;
  const PromotionSettings settings_;
  const Logger::Line log_;
  // The promoted VM's origin (its primary) is recorded where a switchover records one: `failback` returns it there.
  switchover::ArrivalRecords arrivals_;

  Mutex decide_mu_;  // guards the decisions and vetoes in the store, and told_unfenced_
  // VMs whose promotion waits for an operator because their primary's shadowd had stopped before it left
  // (MayPromote), said once in the log until the primary is a member again. By VM uuid.
  std::set<std::string> told_unfenced_ VS_GUARDED_BY(decide_mu_);
  // A VM waiting for promotion, as the last Tick saw it: what FenceAtPrimary decides with.
  struct Awaiting {
    controller::PeerShadow shadow;
    cluster::HostHeartbeatView primary;
    Duration failure_detection{0};
  };
  mutable Mutex awaiting_mu_;  // taken after decide_mu_ when both are held
  std::map<std::string, Awaiting> awaiting_ VS_GUARDED_BY(awaiting_mu_);  // by VM uuid
};

}  // namespace vs::failover
