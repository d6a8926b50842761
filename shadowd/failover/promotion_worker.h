// PromotionWorker: the promotion thread (docs/threading.md). Every `period` (and at once when woken: an
// operator's promote, a primary's libvirtd confirming a VM stopped) it runs Promotions::Tick over the current
// membership view. A promotion blocks only on this host's libvirtd (its own connection) and the store, never the
// daemon's loop (rule 2).
//
// The primaries' libvirtd: for every VM that waits for promotion (its primary absent with its Corosync, the fence
// wait not over), a prober thread of its own asks the primary's libvirtd to destroy the VM there (`probe`, which
// must bound its own time: a cut link does not answer) through Promotions::FenceAtPrimary, which decides the
// promotion when the VM is confirmed stopped, and wakes the worker: MayPromote's "at once". One probe per host in
// flight, at most one every `probe_interval` per host; a hung probe holds up only later probes of its own host.
//
// Ownership: borrows Promotions (must outlive it); owns its threads. Thread-safety: Start/Stop from one thread,
// Wake from any. Failure modes: a Tick's error is logged and the next period tries again.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/logger.h"
#include "common/thread_annotations.h"
#include "shadowd/cluster/heartbeat_history.h"
#include "shadowd/failover/promotions.h"

namespace vs::failover {

class PromotionWorker {
 public:
  using ViewSource = std::function<cluster::MembershipView()>;
  // Destroys the VM `vm_uuid` on `host`'s libvirtd; true when it is confirmed not running there.
  using Probe = std::function<StatusOr<bool>(const std::string& host, const std::string& vm_uuid)>;

  PromotionWorker(Promotions& promotions, ViewSource view, Probe probe, Logger::Line log,
                  Duration period = std::chrono::milliseconds(500),
                  Duration probe_interval = std::chrono::seconds(2));
  ~PromotionWorker() { Stop(); }

  void Start();
  void Stop();
  void Wake();

 private:
  void Loop();
  void StartProbes() VS_EXCLUDES(mu_);

  Promotions& promotions_;
  const ViewSource view_;
  const Probe probe_;
  const Logger::Line log_;
  const Duration period_;
  const Duration probe_interval_;

  Mutex mu_;
  CondVar wake_;
  bool stop_ VS_GUARDED_BY(mu_) = false;
  bool woken_ VS_GUARDED_BY(mu_) = false;
  std::map<std::string, bool> probing_ VS_GUARDED_BY(mu_);  // host -> a probe thread runs
  std::map<std::string, std::chrono::steady_clock::time_point> last_probe_ VS_GUARDED_BY(mu_);
  std::map<std::string, std::thread> probes_ VS_GUARDED_BY(mu_);  // host -> its last probe thread
  std::thread thread_;
};

}  // namespace vs::failover
