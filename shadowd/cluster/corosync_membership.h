// CorosyncMembership: the production Membership (membership.h), from the local Corosync 3 node: the only code
// that includes Corosync's headers (libcpg, libvotequorum, libcmap; their error codes become vs::Status in one
// function of the .cc).
//
// What it reads:
// - votequorum: whether this partition is quorate, its ring sequence, and its nodes (corosync_members);
// - cpg: it joins the process group `group` (one member per shadowd), so that `members` lists the nodes whose
//   shadowd is alive in the partition, not only their Corosync;
// - cmap: nodeid -> node name, from nodelist.node.N.name (or ring0_addr when a node has no name).
//
// Threads: Start() launches one thread of its own that connects, then waits in poll(2) on the descriptors
// Corosync gives (cpg_fd_get, votequorum_fd_get) and a wake-up pipe, and dispatches the callbacks there; the
// listener runs on that thread. When Corosync goes away (it stopped or restarted: a dispatch fails or a
// descriptor hangs up) it publishes a disconnected snapshot and reconnects every `reconnect_interval`. A
// connection publishes its first snapshot once its own join to the group was seen, so that a (re)connect never
// shows the hosts as gone for a moment.
//
// Ownership: owns its thread and every Corosync handle (finalized on that thread; leaving the group on Stop).
// Thread-safety: Current() from any thread; Start/Stop from one thread (the daemon's).
// Failure modes: none returned: a Corosync that cannot be reached, or refuses us, shows as connected == false,
// and `log` gets one line per new failure (not one per retry) and one when the connection is back.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "shadowd/cluster/membership.h"

namespace vs::cluster {

struct CorosyncOptions {
  std::string group = "virt-shadow";  // the cpg group every shadowd of the cluster joins
  Duration reconnect_interval = std::chrono::seconds(1);
};

class CorosyncMembership final : public Membership {
 public:
  CorosyncMembership(CorosyncOptions options, std::function<void(const std::string&)> log);
  ~CorosyncMembership() override;

  MembershipSnapshot Current() const override;
  void Start(Listener on_change) override;
  void Stop() override;

 private:
  void Run(Listener on_change);
  // Stores `snapshot` and tells the listener when it differs from the last one.
  void Publish(const MembershipSnapshot& snapshot, const Listener& on_change);
  // Waits up to `timeout` for Stop(); true when stopping.
  bool WaitForStop(Duration timeout);

  const CorosyncOptions options_;
  const std::function<void(const std::string&)> log_;
  int wake_read_ = -1;   // a pipe: Stop() writes a byte so that the thread's poll returns
  int wake_write_ = -1;
  mutable Mutex mu_;
  MembershipSnapshot snapshot_ VS_GUARDED_BY(mu_);
  bool stopping_ VS_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vs::cluster
