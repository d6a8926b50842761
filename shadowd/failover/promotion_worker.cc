#include "shadowd/failover/promotion_worker.h"

namespace vs::failover {

PromotionWorker::PromotionWorker(Promotions& promotions, ViewSource view, Probe probe, Logger::Line log,
                                 Duration period, Duration probe_interval)
    : promotions_(promotions),
      view_(std::move(view)),
      probe_(std::move(probe)),
      log_(std::move(log)),
      period_(period),
      probe_interval_(probe_interval) {}

void PromotionWorker::Start() { thread_ = std::thread([this] { Loop(); }); }

void PromotionWorker::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::string, std::thread> probes;
  {
    MutexLock lock(mu_);
    probes.swap(probes_);
  }
  for (auto& [host, probe] : probes) {
    if (probe.joinable()) probe.join();
  }
}

void PromotionWorker::Wake() {
  {
    MutexLock lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void PromotionWorker::Loop() {
  while (true) {
    {
      MutexLock lock(mu_);
      if (stop_) return;
      woken_ = false;
    }
    if (Status ticked = promotions_.Tick(view_()); !ticked.ok()) log_("promotion pass: " + ticked.ToString());
    if (probe_) StartProbes();
    MutexLock lock(mu_);
    // A condition variable rather than Clock::SleepFor: Stop() and Wake() must end the wait at once.
    const auto until = std::chrono::steady_clock::now() + period_;
    while (!stop_ && !woken_) {
      if (wake_.wait_until(mu_, until) == std::cv_status::timeout) break;
    }
  }
}

void PromotionWorker::StartProbes() {
  // host -> the VMs (uuid, name) of that host waiting for promotion.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_host;
  for (const auto& [vm_uuid, who] : promotions_.AwaitingPromotion()) by_host[who.second].emplace_back(vm_uuid, who.first);
  const auto now = std::chrono::steady_clock::now();
  MutexLock lock(mu_);
  if (stop_) return;
  for (auto& [host, vms] : by_host) {
    if (probing_[host]) continue;
    auto last = last_probe_.find(host);
    if (last != last_probe_.end() && now - last->second < probe_interval_) continue;
    // The host's previous probe has ended (probing_ is false): joining it does not wait.
    if (std::thread& previous = probes_[host]; previous.joinable()) previous.join();
    probing_[host] = true;
    last_probe_[host] = now;
    probes_[host] = std::thread([this, host = host, vms = std::move(vms)] {
      for (const auto& [vm_uuid, vm_name] : vms) {
        StatusOr<bool> decided =
            promotions_.FenceAtPrimary(vm_uuid, [this, &host, uuid = vm_uuid] { return probe_(host, uuid); });
        if (!decided.ok()) break;  // the host's libvirtd does not answer: the fence wait decides
        if (*decided) {
          log_(host + "'s libvirtd confirmed " + vm_name + " stopped there: promoted at once");
          Wake();
        }
      }
      MutexLock inner(mu_);
      probing_[host] = false;
    });
  }
}

}  // namespace vs::failover
