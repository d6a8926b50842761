// SwitchoverCoordinator: decides which of this host's VMs switch over, where, in which order and with
// how much precopy, and runs them one after another on its own thread (they share the link; planner.h
// explains why one at a time).
//
//   Notice / Drain   this host is going away by `deadline`: it is marked draining (DrainState: peers
//                    stop placing shadows here), every protected, running VM is planned with
//                    PlanSwitchover (priority order, precopy from the slack, VMs that cannot
//                    make it are reported and skipped: their shadows keep the last consistent replica
//                    for a promotion) and switched over; an Azure notice is approved once all went.
//   Early warning    (AWS rebalance recommendation, GCE maintenance-event) the VMs are warmed up: the
//                    switchover starts at once and its migration is held in precopy under a bandwidth
//                    cap, so that the notice that follows only has to make the postcopy switch.
//   SwitchoverVm     one VM, now (`virt-shadow switchover`).
//   Failback         a VM that arrived here by a switchover or was promoted here returns to its origin
//                    host: a promoted VM's origin first discards the stale copy it keeps fenced
//                    (SwitchoverPeer::DiscardStaleCopy: destroyed, undefined, its images kept); then its
//                    shadow is moved there (the controller pins the placement; the placement adopts the
//                    images left there), one round brings it up to date (a resync by digests), then the
//                    same switchover runs. Once a promoted VM is home, `on_promoted_home` ends its promotion
//                    here (so that this host neither answers PROMOTED for it nor refuses to promote it again).
//
// Ownership: borrows everything; owns its thread and the warm-up threads. Thread-safety: the public
// methods may be called from any thread; work runs on the coordinator's thread, except each warm-up's
// switchover, which runs on a thread of its own while its migration is held in precopy (the runner and the
// steps allow switchovers of different VMs at once); the controller is only reached through ProtectedVms. Failure modes: futures carry Status naming the VM and the step;
// per-VM failures of a drain are in its reply (records with phase FAILED, or skipped with the reason).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/thread_annotations.h"
#include "proto/shadowd.pb.h"
#include "shadowd/notice/notice.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/replication/round_scheduler.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/switchover/drain_state.h"
#include "shadowd/switchover/planner.h"
#include "shadowd/switchover/protected_vms.h"
#include "shadowd/switchover/settings.h"
#include "shadowd/switchover/switchover_peer.h"
#include "shadowd/switchover/switchover_runner.h"
#include "shadowd/switchover/warm_up_gate.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::switchover {

class SwitchoverCoordinator {
 public:
  struct Parts {
    ProtectedVms& vms;
    SwitchoverRunner& runner;
    virt::Hypervisor& local;
    SwitchoverPeer& peer;
    DrainState& drain;
    ArrivalRecords& arrivals;
    replication::RoundScheduler& rounds;
    WarmUpGate& warm_up;
    Clock& clock;
    // Called on the coordinator's thread after a promoted VM's failback is Done (uuid, its home host); may be
    // empty. Production: failover::Promotions::EndAfterFailback.
    std::function<Status(const std::string& vm_uuid, const std::string& home)> on_promoted_home = nullptr;
    // Completes the switchovers to this host whose source `gone_host` left the cluster after their migration
    // ended; returns how many (production: SwitchoverTarget::CompleteLeftBehind). May be empty.
    std::function<StatusOr<int>(const std::string& gone_host)> complete_left_behind = nullptr;
  };
  // How often an idle coordinator drives the switchovers left in COMPLETING again.
  static constexpr Duration kCompletionRetryEvery = std::chrono::seconds(15);

  // `on_drained` runs after a notice's drain finished (e.g. to approve an Azure event); may be empty.
  // `completion_retry_every`: the idle period between RetryCompletions (real time; tests shorten it).
  SwitchoverCoordinator(std::string this_host, Settings settings, Parts parts,
                        std::function<void(const std::string&)> log,
                        std::function<void(const notice::Notice&)> on_drained,
                        Duration completion_retry_every = kCompletionRetryEvery);
  ~SwitchoverCoordinator();

  // Starts the thread; its first job resumes unfinished switchovers and, when this host was draining,
  // moves what is still here.
  void Start();
  // Waits for the running job. Held warm-ups are released into their postcopy switch first: a held
  // migration cannot outlive the shadowd that decides when it switches (after a restart it could never
  // finish), and the host is about to go away anyway.
  void Stop();

  // `precopy_hold` overrides the plan's precopy hold (for comparisons); nullopt: the plan's.
  std::future<StatusOr<virtshadow::v1::SwitchoverRecord>> SwitchoverVm(const std::string& vm, const std::string& to_host,
                                                                       Duration deadline, std::string reason,
                                                                       std::optional<Duration> precopy_hold = {});
  std::future<StatusOr<virtshadow::v1::DrainReply>> Drain(const notice::Notice& notice);
  std::future<StatusOr<virtshadow::v1::FailbackReply>> Failback(const std::string& vm, Duration timeout);
  // A notice from a source (shadowd/notice): preemptions drain, early warnings warm up.
  void OnNotice(const notice::Notice& notice);
  // The host is back (`undrain`): warm-ups still held in precopy are cancelled (their migrations aborted,
  // the VMs stay here, the tops committed back). The future holds how many were cancelled.
  std::future<StatusOr<int>> CancelWarmUps();
  // `gone_host` left the cluster: the switchovers it made to this host and could not complete are completed here
  // (Parts::complete_left_behind), on the coordinator's thread, as flattening their tops takes seconds.
  void CompleteArrivalsFrom(const std::string& gone_host);

 private:
  struct Candidate {
    controller::VmStatusView view;
    policy::DomainFacts facts;
    uint32_t priority = 0;
    bool warmup = true;  // the policy's `warmup`
  };
  void Post(std::function<void()> job);
  void Run();
  StatusOr<std::vector<Candidate>> ProtectedVms(std::vector<std::string>* skipped);
  StatusOr<virtshadow::v1::DrainReply> DrainNow(const notice::Notice& notice);
  Status WarmUpNow(const notice::Notice& notice);
  // Releases every warm-up into its postcopy switch and waits for them; their outcomes go into `reply`.
  void FinishWarmUps(virtshadow::v1::DrainReply& reply);
  Status EnterDrain(const notice::Notice& notice);
  static std::string ReasonOf(const notice::Notice& notice);
  StatusOr<virtshadow::v1::SwitchoverRecord> SwitchOne(const Candidate& vm, const std::string& reason,
                                                       WallTime deadline, Duration precopy);
  StatusOr<virtshadow::v1::FailbackReply> FailbackNow(const std::string& vm, Duration timeout);
  LinkFacts Link() const;
  // The precopy hold of a cold (not warmed-up) switchover: none unless [switchover] precopy_hold = planned.
  Duration ColdPrecopy(Duration planned) const;
  // Drives the switchovers left in COMPLETING (their target could not flatten yet) once more.
  void RetryCompletions();
  void Observe(const virtshadow::v1::SwitchoverRecord& record);

  const std::string this_host_;
  const Settings settings_;
  Parts parts_;
  const std::function<void(const std::string&)> log_;
  const std::function<void(const notice::Notice&)> on_drained_;
  const Duration completion_retry_every_;
  BandwidthEstimator bandwidth_;  // the coordinator's thread only

  Mutex mutex_;
  CondVar wake_;
  std::deque<std::function<void()>> jobs_ VS_GUARDED_BY(mutex_);
  bool stopping_ VS_GUARDED_BY(mutex_) = false;
  std::thread thread_;
  // Warm-up switchovers in progress, by VM uuid: each on its own thread, held in precopy.
  struct WarmUp {
    std::string vm_name;
    std::thread thread;
    std::future<StatusOr<virtshadow::v1::SwitchoverRecord>> outcome;
  };
  std::map<std::string, WarmUp> warm_ups_;  // touched on the coordinator's thread only
};

}  // namespace vs::switchover
