#include "shadowd/replication/replication_worker.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace vs::replication {

MonoTime NextRoundDue(MonoTime started, MonoTime ended, Duration interval, uint32_t failures) {
  constexpr Duration kMaxBackoff = std::chrono::seconds(60);
  // Start to start: the replica's age stays under one interval plus one round's duration (the RPO that a
  // promotion promises). Counted from the round's end it would reach an interval plus two rounds.
  if (failures == 0) return std::max(started + interval, ended);
  Duration wait = interval;
  for (uint32_t i = 1; i < failures && wait < kMaxBackoff; ++i) wait *= 2;
  return ended + std::min(wait, kMaxBackoff);
}

ReplicationWorker::ReplicationWorker(Replicator& replicator, Clock& clock,
                                     std::function<void(const std::string&)> log)
    : replicator_(replicator), clock_(clock), log_(std::move(log)) {}

ReplicationWorker::~ReplicationWorker() { Stop(); }

void ReplicationWorker::Start() { thread_ = std::thread([this] { Run(); }); }

void ReplicationWorker::Stop() {
  std::deque<Request> abandoned;
  {
    MutexLock lock(mutex_);
    stopping_ = true;
    abandoned.swap(requests_);
  }
  wake_.notify_all();
  for (auto& request : abandoned) request.fail(Unavailable("shadowd is stopping"));
  if (thread_.joinable()) thread_.join();
}

void ReplicationWorker::SetTargets(const std::vector<ReplicationSchedule>& targets) {
  MutexLock lock(mutex_);
  std::map<std::string, Scheduled> next;
  for (const auto& schedule : targets) {
    auto it = vms_.find(schedule.target.vm_uuid);
    if (it != vms_.end() && it->second.schedule.target.shadow_host == schedule.target.shadow_host) {
      Scheduled kept = it->second;
      kept.schedule = schedule;
      next.emplace(schedule.target.vm_uuid, kept);
    } else {
      next.emplace(schedule.target.vm_uuid, Scheduled{schedule, clock_.Now(), 0});  // a new target: round now
    }
  }
  vms_.swap(next);
  wake_.notify_all();
}

std::vector<ReplicationSchedule> ReplicationWorker::Targets() const {
  MutexLock lock(mutex_);
  std::vector<ReplicationSchedule> out;
  for (const auto& [uuid, vm] : vms_) out.push_back(vm.schedule);
  return out;
}

template <typename T>
std::future<StatusOr<T>> ReplicationWorker::Enqueue(
    const std::string& vm_uuid, std::function<StatusOr<T>(const ReplicationTarget&)> work, bool first) {
  auto promise = std::make_shared<std::promise<StatusOr<T>>>();
  std::future<StatusOr<T>> future = promise->get_future();
  MutexLock lock(mutex_);
  if (stopping_) {
    promise->set_value(Unavailable("shadowd is stopping"));
    return future;
  }
  Request request{vm_uuid, [promise, work](const ReplicationTarget& t) { promise->set_value(work(t)); },
                  [promise](Status status) { promise->set_value(status); }};
  if (first) {
    requests_.push_front(std::move(request));
  } else {
    requests_.push_back(std::move(request));
  }
  wake_.notify_all();
  return future;
}

std::future<StatusOr<virtshadow::v1::AppliedRound>> ReplicationWorker::RequestRound(const std::string& vm_uuid) {
  return Enqueue<virtshadow::v1::AppliedRound>(
      vm_uuid, [this](const ReplicationTarget& target) { return RunRoundOf(target); });
}

std::future<StatusOr<VerifyReport>> ReplicationWorker::RequestVerify(const std::string& vm_uuid) {
  return Enqueue<VerifyReport>(
      vm_uuid, [this](const ReplicationTarget& target) { return replicator_.Verify(target); });
}

std::future<StatusOr<virtshadow::v1::AppliedRound>> ReplicationWorker::RequestFinalRound(const std::string& vm_uuid) {
  return Enqueue<virtshadow::v1::AppliedRound>(
      vm_uuid, [this](const ReplicationTarget& target) { return replicator_.RunFinalRound(target); },
      /*first=*/true);
}

std::future<StatusOr<bool>> ReplicationWorker::Quiesce(const std::string& vm_uuid) {
  return Enqueue<bool>(vm_uuid, [](const ReplicationTarget&) -> StatusOr<bool> { return true; },
                       /*first=*/true);
}

void ReplicationWorker::Hold(const std::string& vm_uuid) {
  MutexLock lock(mutex_);
  held_.insert(vm_uuid);
}

void ReplicationWorker::Unhold(const std::string& vm_uuid) {
  MutexLock lock(mutex_);
  held_.erase(vm_uuid);
  wake_.notify_all();
}

StatusOr<virtshadow::v1::AppliedRound> ReplicationWorker::RunRoundOf(const ReplicationTarget& target) {
  const MonoTime started = clock_.Now();
  auto round = replicator_.RunRound(target);
  if (!round.ok()) log_("replication of " + target.vm_name + ": " + round.status().message());
  // Incremental rounds are the routine (status and metrics show them); a seed or a resync is news.
  if (round.ok() && round->mode() != virtshadow::v1::ROUND_MODE_INCREMENTAL) {
    std::string mode = virtshadow::v1::RoundMode_Name(round->mode()).substr(std::string_view("ROUND_MODE_").size());
    std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return std::tolower(c); });
    log_("replication of " + target.vm_name + ": " + mode + " round " +
         round->checkpoint() + " applied on " + target.shadow_host + ": " + std::to_string(round->bytes_sent()) +
         " bytes sent, " + std::to_string(round->changed_bytes()) + " bytes changed, " +
         std::to_string(round->duration_ms()) + " ms");
  }
  MutexLock lock(mutex_);
  auto it = vms_.find(target.vm_uuid);
  if (it == vms_.end()) return round;  // no longer a target
  Scheduled& current = it->second;
  current.failures = round.ok() ? 0 : current.failures + 1;
  current.next_due = NextRoundDue(started, clock_.Now(), current.schedule.interval, current.failures);
  return round;
}

void ReplicationWorker::Run() {
  while (true) {
    // What to do next is chosen under the lock and done outside it: a request (with its VM's target, none when
    // the VM is not a target), or the round of the VM that is due.
    std::optional<Request> request;
    std::optional<ReplicationTarget> target;
    {
      MutexLock lock(mutex_);
      if (stopping_) return;
      if (!requests_.empty()) {
        request = std::move(requests_.front());
        requests_.pop_front();
        if (auto it = vms_.find(request->vm_uuid); it != vms_.end()) target = it->second.schedule.target;
      } else {
        // The VM whose round is due first.
        auto due = vms_.end();
        for (auto it = vms_.begin(); it != vms_.end(); ++it) {
          if (held_.count(it->first) == 0 && (due == vms_.end() || it->second.next_due < due->second.next_due)) {
            due = it;
          }
        }
        if (due == vms_.end()) {
          wake_.wait(mutex_);
          continue;
        }
        const MonoTime now = clock_.Now();
        if (due->second.next_due > now) {
          // The condition variable waits on the steady clock; the injected clock says how long.
          wake_.wait_for(mutex_, std::min<Duration>(due->second.next_due - now, std::chrono::seconds(1)));
          continue;
        }
        target = due->second.schedule.target;
        due->second.next_due = now + due->second.schedule.interval;  // not picked again while it runs
      }
    }
    if (!request) {
      (void)RunRoundOf(*target);  // logged and counted there
    } else if (!target) {
      request->fail(FailedPrecondition("VM " + request->vm_uuid +
                                       " is not replicated from this host (it must be protected and running)"));
    } else {
      request->job(*target);
    }
  }
}

}  // namespace vs::replication
