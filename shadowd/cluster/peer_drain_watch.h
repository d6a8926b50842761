// PeerDrainWatch: whether each peer host drains, asked in the background. Placement must not put a shadow on a
// draining host, and shadows already there are moved away (ProtectionController::OnHostLeaving), but the loop
// thread that places them must never wait on a peer: a peer that is down would hold the loop for the call's
// timeout on every placement. So a thread of its own asks every peer (the HostState peer call) once per
// interval and the loop reads the last answers.
//
// Freshness: an answer is at most one interval (plus one round of calls) old. A VM that arrives by a
// switchover is placed within seconds of its old host's notice, possibly before the watch saw that drain;
// the old host still defines the VM then, and placement never uses such a host (ClusterView::HostsDefining).
//
// Ownership: owns its thread. Thread-safety: Draining() from any thread; Start/Stop from one thread.
// Failure modes: a peer that does not answer counts as not draining (its libvirtd decides whether it is up).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace vs::cluster {

class PeerDrainWatch {
 public:
  using Ask = std::function<StatusOr<bool>(const std::string& host)>;
  PeerDrainWatch(std::vector<std::string> peers, Ask ask, Duration interval);
  ~PeerDrainWatch();

  void Start();
  void Stop();
  // Asks every peer once and stores the answers (the thread's loop body; tests call it directly).
  void AskAll();
  // The last answer about `host`: false when it never answered or is not a peer.
  bool Draining(const std::string& host) const;

 private:
  const std::vector<std::string> peers_;
  const Ask ask_;
  const Duration interval_;
  mutable Mutex mutex_;
  CondVar wake_;
  std::map<std::string, bool> draining_ VS_GUARDED_BY(mutex_);
  bool stop_ VS_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace vs::cluster
