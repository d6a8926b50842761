#include "shadowd/replication/round_queue.h"

#include <algorithm>
#include <tuple>

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

void RoundQueue::SetTargets(const std::vector<ReplicationSchedule>& targets, MonoTime now) {
  std::map<std::string, Scheduled> next;
  for (const auto& schedule : targets) {
    auto it = vms_.find(schedule.target.vm_uuid);
    if (it != vms_.end() && it->second.schedule.target.shadow_host == schedule.target.shadow_host) {
      Scheduled kept = it->second;
      kept.schedule = schedule;
      next.emplace(schedule.target.vm_uuid, std::move(kept));
    } else {
      next.emplace(schedule.target.vm_uuid, Scheduled{schedule, now, 0, std::nullopt});
    }
  }
  vms_.swap(next);
}

std::vector<ReplicationSchedule> RoundQueue::Targets() const {
  std::vector<ReplicationSchedule> out;
  for (const auto& [uuid, vm] : vms_) out.push_back(vm.schedule);
  return out;
}

uint64_t RoundQueue::AddRequest(const std::string& vm_uuid, bool first) {
  const uint64_t id = next_request_id_++;
  if (first) {
    requests_.push_front(Request{id, vm_uuid});
  } else {
    requests_.push_back(Request{id, vm_uuid});
  }
  return id;
}

std::vector<uint64_t> RoundQueue::TakeRequests() {
  std::vector<uint64_t> ids;
  for (const auto& request : requests_) ids.push_back(request.id);
  requests_.clear();
  return ids;
}

bool RoundQueue::Before(const Scheduled& a, const Scheduled& b, MonoTime now) const {
  // Replica age over interval, compared without division: age_a / interval_a > age_b / interval_b. A VM with
  // no applied round here is as far behind as can be.
  if (a.applied_started.has_value() != b.applied_started.has_value()) return !a.applied_started.has_value();
  if (a.applied_started) {
    const double behind_a = Duration(now - *a.applied_started).count() * 1.0 * b.schedule.interval.count();
    const double behind_b = Duration(now - *b.applied_started).count() * 1.0 * a.schedule.interval.count();
    if (behind_a != behind_b) return behind_a > behind_b;
  }
  return std::make_tuple(-static_cast<int64_t>(a.schedule.priority), a.next_due, a.schedule.target.vm_uuid) <
         std::make_tuple(-static_cast<int64_t>(b.schedule.priority), b.next_due, b.schedule.target.vm_uuid);
}

std::vector<const RoundQueue::Scheduled*> RoundQueue::DueInOrder(MonoTime now) const {
  std::vector<const Scheduled*> due;
  for (const auto& [uuid, vm] : vms_) {
    if (vm.next_due <= now && held_.count(uuid) == 0 && running_.count(uuid) == 0) due.push_back(&vm);
  }
  std::sort(due.begin(), due.end(), [&](const Scheduled* a, const Scheduled* b) { return Before(*a, *b, now); });
  return due;
}

RoundQueue::Next RoundQueue::Take(MonoTime now) {
  auto target_of = [this](const std::string& vm_uuid) -> std::optional<ReplicationTarget> {
    auto it = vms_.find(vm_uuid);
    if (it == vms_.end()) return std::nullopt;
    return it->second.schedule.target;
  };
  for (auto it = requests_.begin(); it != requests_.end(); ++it) {
    if (running_.count(it->vm_uuid) != 0) continue;  // rule 1: after its VM's running work
    Work work{it->id, it->vm_uuid, target_of(it->vm_uuid)};
    running_.insert(it->vm_uuid);
    requests_.erase(it);
    return work;
  }
  std::vector<const Scheduled*> due = DueInOrder(now);
  if (!due.empty()) {
    const std::string& vm_uuid = due.front()->schedule.target.vm_uuid;
    running_.insert(vm_uuid);
    return Work{std::nullopt, vm_uuid, due.front()->schedule.target};
  }
  std::optional<MonoTime> soonest;
  for (const auto& [uuid, vm] : vms_) {
    if (held_.count(uuid) != 0 || running_.count(uuid) != 0) continue;
    if (!soonest || vm.next_due < *soonest) soonest = vm.next_due;
  }
  if (soonest) return IdleUntil{*soonest};
  return Idle{};
}

void RoundQueue::Finished(const std::string& vm_uuid, MonoTime started, MonoTime ended,
                          std::optional<bool> round_outcome) {
  running_.erase(vm_uuid);
  if (!round_outcome) return;
  auto it = vms_.find(vm_uuid);
  if (it == vms_.end()) return;  // no longer a target
  Scheduled& vm = it->second;
  vm.failures = *round_outcome ? 0 : vm.failures + 1;
  if (*round_outcome) vm.applied_started = started;
  vm.next_due = NextRoundDue(started, ended, vm.schedule.interval, vm.failures);
}

std::vector<RoundQueue::Entry> RoundQueue::Snapshot(MonoTime now) const {
  std::vector<Entry> out;
  std::vector<const Scheduled*> due = DueInOrder(now);
  for (const auto& [uuid, vm] : vms_) {
    Entry entry{uuid, running_.count(uuid) != 0, held_.count(uuid) != 0, vm.next_due - now, 0};
    auto at = std::find(due.begin(), due.end(), &vm);
    if (at != due.end()) entry.position = static_cast<uint32_t>(at - due.begin()) + 1;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace vs::replication
