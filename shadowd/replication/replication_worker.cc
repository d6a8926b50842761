#include "shadowd/replication/replication_worker.h"

#include <algorithm>
#include <cctype>

namespace vs::replication {

ReplicationWorker::ReplicationWorker(Replicator& replicator, Clock& clock, WorkerOptions options,
                                     std::function<void(const std::string&)> log)
    : replicator_(replicator), clock_(clock), options_(options), log_(std::move(log)) {}

ReplicationWorker::~ReplicationWorker() { Stop(); }

void ReplicationWorker::Start() {
  for (int i = 0; i < options_.concurrency; ++i) {
    const auto port = static_cast<uint16_t>(options_.first_export_port + i);
    runners_.emplace_back([this, port] { Run(port); });
  }
}

void ReplicationWorker::Stop() {
  std::map<uint64_t, Request> abandoned;
  {
    MutexLock lock(mutex_);
    stopping_ = true;
    (void)queue_.TakeRequests();
    abandoned.swap(requests_);
  }
  wake_.notify_all();
  for (auto& [id, request] : abandoned) request.fail(Unavailable("shadowd is stopping"));
  for (auto& runner : runners_) {
    if (runner.joinable()) runner.join();
  }
  runners_.clear();
}

void ReplicationWorker::SetTargets(const std::vector<ReplicationSchedule>& targets) {
  MutexLock lock(mutex_);
  queue_.SetTargets(targets, clock_.Now());
  wake_.notify_all();
}

std::vector<ReplicationSchedule> ReplicationWorker::Targets() const {
  MutexLock lock(mutex_);
  return queue_.Targets();
}

std::vector<RoundQueue::Entry> ReplicationWorker::Queue() const {
  MutexLock lock(mutex_);
  return queue_.Snapshot(clock_.Now());
}

template <typename T>
std::future<StatusOr<T>> ReplicationWorker::Enqueue(
    const std::string& vm_uuid, std::function<StatusOr<T>(const ReplicationTarget&, uint16_t export_port)> work,
    EnqueueOptions options) {
  auto promise = std::make_shared<std::promise<StatusOr<T>>>();
  std::future<StatusOr<T>> future = promise->get_future();
  MutexLock lock(mutex_);
  if (stopping_) {
    promise->set_value(Unavailable("shadowd is stopping"));
    return future;
  }
  Request request{[promise, work, is_round = options.is_round](const ReplicationTarget& target,
                                                               uint16_t port) -> std::optional<bool> {
                    StatusOr<T> result = work(target, port);
                    const bool ok = result.ok();
                    promise->set_value(std::move(result));
                    return is_round ? std::optional<bool>(ok) : std::nullopt;
                  },
                  [promise](Status status) { promise->set_value(status); }};
  requests_.emplace(queue_.AddRequest(vm_uuid, options.first), std::move(request));
  wake_.notify_all();
  return future;
}

std::future<StatusOr<virtshadow::v1::AppliedRound>> ReplicationWorker::RequestRound(const std::string& vm_uuid) {
  return Enqueue<virtshadow::v1::AppliedRound>(
      vm_uuid, [this](const ReplicationTarget& target, uint16_t port) { return RunRoundOf(target, port); },
      {.is_round = true});
}

std::future<StatusOr<VerifyReport>> ReplicationWorker::RequestVerify(const std::string& vm_uuid) {
  return Enqueue<VerifyReport>(
      vm_uuid, [this](const ReplicationTarget& target, uint16_t port) { return replicator_.Verify(target, port); },
      {});
}

std::future<StatusOr<virtshadow::v1::AppliedRound>> ReplicationWorker::RequestFinalRound(const std::string& vm_uuid) {
  return Enqueue<virtshadow::v1::AppliedRound>(
      vm_uuid,
      [this](const ReplicationTarget& target, uint16_t port) { return replicator_.RunFinalRound(target, port); },
      {.first = true});
}

std::future<StatusOr<bool>> ReplicationWorker::Quiesce(const std::string& vm_uuid) {
  return Enqueue<bool>(
      vm_uuid, [](const ReplicationTarget&, uint16_t) -> StatusOr<bool> { return true; }, {.first = true});
}

void ReplicationWorker::Hold(const std::string& vm_uuid) {
  MutexLock lock(mutex_);
  queue_.Hold(vm_uuid);
}

void ReplicationWorker::Unhold(const std::string& vm_uuid) {
  MutexLock lock(mutex_);
  queue_.Unhold(vm_uuid);
  wake_.notify_all();
}

StatusOr<virtshadow::v1::AppliedRound> ReplicationWorker::RunRoundOf(const ReplicationTarget& target,
                                                                     uint16_t export_port) {
  auto round = replicator_.RunRound(target, export_port);
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
  return round;
}

void ReplicationWorker::Run(uint16_t export_port) {
  while (true) {
    // What to do next is chosen under the lock and done outside it.
    RoundQueue::Work work;
    std::optional<Request> request;
    {
      MutexLock lock(mutex_);
      while (true) {
        if (stopping_) return;
        const MonoTime now = clock_.Now();
        RoundQueue::Next next = queue_.Take(now);
        if (auto* taken = std::get_if<RoundQueue::Work>(&next)) {
          work = std::move(*taken);
          break;
        }
        if (auto* idle = std::get_if<RoundQueue::IdleUntil>(&next)) {
          // The condition variable waits on the steady clock; the injected clock says how long.
          wake_.wait_for(mutex_, std::min<Duration>(idle->at - now, std::chrono::seconds(1)));
        } else {
          wake_.wait(mutex_);
        }
      }
      if (work.request_id) {
        auto it = requests_.find(*work.request_id);
        request = std::move(it->second);
        requests_.erase(it);
      }
    }
    const MonoTime started = clock_.Now();
    std::optional<bool> round_outcome;
    if (!work.target) {
      // Only a request names a VM that is not a target (a scheduled round always has one).
      request->fail(FailedPrecondition("VM " + work.vm_uuid +
                                       " is not replicated from this host (it must be protected and running)"));
    } else if (request) {
      round_outcome = request->job(*work.target, export_port);
    } else {
      round_outcome = RunRoundOf(*work.target, export_port).ok();  // logged and counted there
    }
    {
      MutexLock lock(mutex_);
      queue_.Finished(work.vm_uuid, started, clock_.Now(), round_outcome);
    }
    wake_.notify_all();  // the VM's waiting requests, and rounds whose schedule moved
  }
}

}  // namespace vs::replication
