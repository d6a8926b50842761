// RoundQueue: which replication work of this host runs next, when several rounds may run at once. Pure: the
// ReplicationWorker keeps one under its mutex and asks it each time one of its runners is free.
//
// The rules, in order:
//   1. A VM has at most one piece of work running (libvirt allows one backup job per domain): work for a VM
//      with something running waits, whatever it is.
//   2. Requests (CLI sync/verify, a switchover's final round and quiesce) go before scheduled rounds, in the
//      order queued; one put first (`first`) goes ahead of the others. A request waiting for its VM (rule 1)
//      lets the requests behind it pass.
//   3. Of the scheduled rounds that are due (and whose VM is not held by a switchover), the one whose replica
//      is oldest relative to its interval goes first: the VM closest to missing its RPO, not the one that was
//      due first. A VM without an applied round here yet (new, or since shadowd started) counts as oldest.
//      Ties go to the higher policy priority, then to the earlier due time.
// Why the lag and not the due time: with more VMs due than runners, a VM with a 1 s interval that waited
// 3 s is worse off (3 intervals behind) than one with a 60 s interval that waited 10 s.
//
// Ownership: values only. Thread-safety: none; the caller serialises every call. Failure modes: none; work
// for a VM that is not a target is handed out all the same (`target` empty) so that the caller fails it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "shadowd/replication/replication_target.h"

namespace vs::replication {

struct ReplicationSchedule {
  ReplicationTarget target;
  Duration interval{std::chrono::seconds(5)};
  uint32_t priority = 100;  // the policy's: higher goes first among VMs equally far behind
};

// When a VM's next round is due, given when its last round started and ended and the failures in a row it
// ended: one interval after the start of a round that succeeded (at its end when it took longer), after a failure
// min(interval * 2^(failures-1), 60 s) after its end.
MonoTime NextRoundDue(MonoTime started, MonoTime ended, Duration interval, uint32_t failures);

class RoundQueue {
 public:
  // What a free runner does next: a queued request (by its id) or a scheduled round.
  struct Work {
    std::optional<uint64_t> request_id;        // empty: a scheduled round
    std::string vm_uuid;
    std::optional<ReplicationTarget> target;   // empty: the VM is not a target here (a request to fail)
  };
  // Nothing to do before `at` (a round falls due then).
  struct IdleUntil {
    MonoTime at;
  };
  // Nothing to do until something changes (a target, a request, a hold, a finished piece of work).
  struct Idle {};
  using Next = std::variant<Work, IdleUntil, Idle>;

  // One VM's place in the queue, for status and metrics.
  struct Entry {
    std::string vm_uuid;
    bool running = false;
    bool held = false;
    Duration due_in{0};     // negative: overdue by that much (waiting for a runner unless running or held)
    uint32_t position = 0;  // 1 = next of the due VMs, 0 = not waiting
  };

  // The VMs to replicate; those left out are dropped (their running work still ends normally). A new VM (or
  // one with a new shadow host) is due at once.
  void SetTargets(const std::vector<ReplicationSchedule>& targets, MonoTime now);
  std::vector<ReplicationSchedule> Targets() const;

  // Queues a request for `vm_uuid`; returns its id.
  uint64_t AddRequest(const std::string& vm_uuid, bool first);
  // Removes every queued request (shadowd stops); returns their ids.
  std::vector<uint64_t> TakeRequests();

  void Hold(const std::string& vm_uuid) { held_.insert(vm_uuid); }
  void Unhold(const std::string& vm_uuid) { held_.erase(vm_uuid); }

  // The next work for a free runner at `now`; the work's VM counts as running until Finished.
  Next Take(MonoTime now);
  // Work handed out by Take ended. `round_outcome`: for a round (scheduled or requested), whether it applied;
  // empty for other work (a verify, a final round, a quiesce), which does not move the VM's schedule.
  void Finished(const std::string& vm_uuid, MonoTime started, MonoTime ended, std::optional<bool> round_outcome);

  // Every target's place, in vm_uuid order.
  std::vector<Entry> Snapshot(MonoTime now) const;
  size_t running() const { return running_.size(); }

 private:
  struct Scheduled {
    ReplicationSchedule schedule;
    MonoTime next_due;
    uint32_t failures = 0;
    std::optional<MonoTime> applied_started;  // when the last applied round here began (its point in time)
  };
  struct Request {
    uint64_t id;
    std::string vm_uuid;
  };
  // Whether `a` goes before `b` among due rounds (rule 3).
  bool Before(const Scheduled& a, const Scheduled& b, MonoTime now) const;
  // The due, waiting VMs in the order they would run.
  std::vector<const Scheduled*> DueInOrder(MonoTime now) const;

  std::map<std::string, Scheduled> vms_;  // by VM uuid
  std::deque<Request> requests_;
  std::set<std::string> held_;
  std::set<std::string> running_;
  uint64_t next_request_id_ = 1;
};

}  // namespace vs::replication
