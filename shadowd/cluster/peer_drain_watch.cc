#include "shadowd/cluster/peer_drain_watch.h"

namespace vs::cluster {

PeerDrainWatch::PeerDrainWatch(std::vector<std::string> peers, Ask ask, Duration interval)
    : peers_(std::move(peers)), ask_(std::move(ask)), interval_(interval) {}

PeerDrainWatch::~PeerDrainWatch() { Stop(); }

void PeerDrainWatch::Start() {
  thread_ = std::thread([this] {
    while (true) {
      {
        MutexLock lock(mutex_);
        if (stop_) return;
      }
      AskAll();
      MutexLock lock(mutex_);
      // A condition variable rather than Clock::SleepFor: Stop() must end the wait at once.
      const auto until = std::chrono::steady_clock::now() + interval_;
      while (!stop_) {
        if (wake_.wait_until(mutex_, until) == std::cv_status::timeout) break;
      }
    }
  });
}

void PeerDrainWatch::Stop() {
  {
    MutexLock lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerDrainWatch::AskAll() {
  for (const std::string& peer : peers_) {
    StatusOr<bool> draining = ask_(peer);  // outside the lock: it may take the call's whole timeout
    MutexLock lock(mutex_);
    draining_[peer] = draining.ok() && *draining;
  }
}

bool PeerDrainWatch::Draining(const std::string& host) const {
  MutexLock lock(mutex_);
  auto it = draining_.find(host);
  return it != draining_.end() && it->second;
}

}  // namespace vs::cluster
