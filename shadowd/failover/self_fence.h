// SelfFence: the primary host's side of a partition (issue 12, docs/failover.md "Self-fencing").
//
// - Losing quorum: every tagged VM running here with a shadow on a host outside this host's partition
//   (VmsToFence) gets a FenceRecord (state FENCED, one synced store batch for all of them) and THEN is paused
//   (default) or destroyed ([failover] fence_action), one libvirt call per VM, on a thread of its own: the
//   membership listener only hands the snapshot over (OnMembership) and the daemon's loop is not involved, so
//   a loop held up by a peer that stopped answering cannot delay the fence (docs/threading.md rule 2). The time
//   from the listener's call to the last VM paused is measured, kept in each record and logged, against the
//   bound FenceTiming.fence_action (1 s) that the survivors wait out.
// - Quorum back: for each FENCED record its shadow hosts are asked QueryPromotion (PromotionPeer): all
//   NOT_PROMOTED -> the VM is resumed (pause) and the record released; one PROMOTED -> it stays fenced, as
//   PROMOTED_ELSEWHERE ("promoted on H at T"), its definition kept (nothing here ever undefines it); no answer
//   -> it stays fenced and is asked again every `retry_interval`. Every state change goes through
//   fence_machine.h's table and is persisted before its command runs, so a shadowd killed at any point resumes
//   from the record: a FENCED VM found running is fenced again, a RELEASING one is resumed.
// - Nothing else here resumes a VM, and nothing resumes a FENCED or PROMOTED_ELSEWHERE one.
// - Back from a crash: a host that died (or was powered off) fenced nothing, and its VMs are stopped when it comes
//   back, still defined. At the first quorate evaluation after Start, each tagged domain libvirt has stopped here
//   without a blocking record is asked about of every peer (QueryPromotion); one PROMOTED -> a PROMOTED_ELSEWHERE
//   record (kFoundPromoted; the marker with it), so that the hook refuses to start the stale copy and a failback
//   can have it discarded. Until every peer answered for every one of them, they are asked again at the next
//   evaluation (peers outside the partition are not dialled meanwhile).
// - Failback of a promoted VM (DiscardStaleCopy, the peer call the VM's current host makes): honoured only for a
//   PROMOTED_ELSEWHERE record whose promoted_host is the asking host. The stale copy is destroyed if it runs and
//   undefined (its disk images stay at their paths: the failback's new shadow here adopts them and its first
//   round resyncs only what differs), and only THEN is the record released (fence_machine.h kStaleDiscarded;
//   the marker goes with it). A shadowd killed in between finds the record still PROMOTED_ELSEWHERE (starts
//   still refused) and the caller's retry finishes the job: destroy and undefine are no-ops on what is gone.
//   A repeated call from the same host after the release is answered from the record.
//
// Which VMs run here: the protection records in the store (table vm: primary_host = this host, with shadow
// assignments) and the local libvirtd's state of each (running or blocked). Read from the store rather than
// asked of the controller, which lives on the loop.
//
// A disconnected snapshot (Corosync unreachable from here) counts as not quorate with no member: the peers
// cannot see this host either, so they may promote. Before the engine delivered anything, `startup_grace`
// after Start() the current snapshot is judged, so a shadowd started without a reachable Corosync fences too.
//
// Ownership: borrows everything in Parts (they must outlive it); owns its thread. Thread-safety: OnMembership
// from any thread (the membership's); Start/Stop from one thread; Evaluate/Fence/Reconcile are the thread's
// body, public for tests, and must not run concurrently with the thread; DiscardStaleCopy from any thread (a
// gRPC one): it and the thread's evaluations take turns (records_mu_), so neither writes back a record the
// other changed meanwhile; a fence can thus wait for a discard's destroy (libvirt bounds it), which only runs
// while this host is reachable from the quorate side. Failure modes: a failed store write
// stops that evaluation before any VM is touched (the next retry runs it again); a failed pause is kept in the
// record (last_error, acted = false) and retried every retry_interval; failed queries keep the VM fenced.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/failover.pb.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/cluster/membership.h"
#include "shadowd/failover/fence_machine.h"
#include "shadowd/failover/fence_records.h"
#include "shadowd/failover/fencing.h"
#include "shadowd/failover/promotion_peer.h"
#include "shadowd/store/store.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::failover {

struct SelfFenceOptions {
  cluster::ClusterHosts hosts;  // this host and the others: node names and addresses map to host names
  virtshadow::v1::FenceRecord::Action action = virtshadow::v1::FenceRecord::FENCE_ACTION_PAUSE;
  FenceTiming timing;           // fence_action: the bound a fence is measured against (logged when exceeded)
  Duration retry_interval = std::chrono::seconds(2);
  Duration startup_grace = std::chrono::seconds(10);
};

class SelfFence {
 public:
  struct Parts {
    store::Store& store;          // the VM protection records (read only)
    FenceRecords& records;
    virt::Hypervisor& local;      // a connection of its own (docs/threading.md rule 3)
    PromotionPeer& peer;
    Clock& clock;
  };
  SelfFence(SelfFenceOptions options, Parts parts, std::function<void(const std::string&)> log);
  ~SelfFence() { Stop(); }
  SelfFence(const SelfFence&) = delete;
  SelfFence& operator=(const SelfFence&) = delete;

  // The membership listener's call: keeps `snapshot` as the newest, notes when it came and wakes the thread.
  // Never blocks on I/O.
  void OnMembership(const cluster::MembershipSnapshot& snapshot) VS_EXCLUDES(mu_);
  // `current` is asked once, `startup_grace` after Start, when no snapshot came by then (may be empty).
  void Start(std::function<cluster::MembershipSnapshot()> current) VS_EXCLUDES(mu_);
  void Stop() VS_EXCLUDES(mu_);

  // The thread's body, one evaluation: not quorate (or not connected) -> Fence; quorate -> Reconcile.
  // `noticed`: when the change was seen (the fence's latency is measured from it).
  Status Evaluate(const cluster::MembershipSnapshot& snapshot, MonoTime noticed);
  Status Fence(const PartitionView& partition, MonoTime noticed);
  Status Reconcile();

  // Failback of a promoted VM: gives up the stale copy of request.vm_uuid() for request.asking_host() (see
  // above). kInvalidArgument for an incomplete request; kFailedPrecondition, saying why, when this host keeps no
  // stale copy of the VM for that host (no record, a record in another state, promoted on another host);
  // libvirt's and the store's errors otherwise (the record then still blocks starts; the call may be repeated).
  StatusOr<virtshadow::v1::DiscardStaleCopyReply> DiscardStaleCopy(
      const virtshadow::v1::DiscardStaleCopyRequest& request) VS_EXCLUDES(records_mu_);

  // This host's partition as VmsToFence sees it: configured host names (node names or addresses mapped).
  PartitionView PartitionOf(const cluster::MembershipSnapshot& snapshot) const;

 private:
  struct Local {
    RunningVm vm;
    virt::DomainState state;
  };
  // Tagged VMs with shadows whose primary is this host, as the store has them, with their state here (those
  // libvirt does not know are left out).
  StatusOr<std::vector<Local>> VmsHere();
  // Performs `command` on the record's VM; updates acted / last_error.
  void Act(virtshadow::v1::FenceRecord& record);
  // The "back from a crash" check above, until every stopped VM got its answers; peers outside `partition` are
  // not asked (they count as not answered).
  Status CheckStoppedVmsAfterStart(const PartitionView& partition);
  // Resumes the VM if it is paused; OK when there is nothing to resume.
  Status ResumeIfPaused(const std::string& vm_name);
  // Applies `event` to `record` (the table), persists it, then runs the command. `detail` goes in the record.
  Status Transition(virtshadow::v1::FenceRecord& record, FenceEvent event, const std::string& detail);
  void Run(std::function<cluster::MembershipSnapshot()> current) VS_EXCLUDES(mu_);

  const SelfFenceOptions options_;
  Parts parts_;
  const std::function<void(const std::string&)> log_;
  bool stopped_vms_checked_ = false;  // the thread's (or the test's) only: no lock

  // Held by each evaluation of the thread and by DiscardStaleCopy: the records' read-modify-write cycles.
  Mutex records_mu_;
  Mutex mu_;
  CondVar cv_;
  std::optional<cluster::MembershipSnapshot> pending_ VS_GUARDED_BY(mu_);  // not yet evaluated
  MonoTime pending_since_ VS_GUARDED_BY(mu_);                              // when it came
  std::optional<cluster::MembershipSnapshot> last_ VS_GUARDED_BY(mu_);     // the newest snapshot
  bool stopping_ VS_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vs::failover
