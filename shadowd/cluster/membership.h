// Membership: which hosts of the cluster are alive as far as this host can tell, and whether this host's
// partition is quorate. The production implementation is CorosyncMembership (corosync_membership.h, the only
// includer of Corosync); tests use a fake. Everything above it (HeartbeatHistory, the CLI's `hosts`, the
// metrics) sees only this interface.
//
// "Member" means the host's shadowd is alive in this host's partition (it joined the cluster's process group),
// not only its Corosync; `corosync_members` lists the nodes whose Corosync is in the partition, whether or not
// their shadowd runs.
//
// Thread-safety: implementations are safe for Current() from any thread; Start/Stop from one thread.
// Failure modes: none at the interface: a membership source that cannot reach its engine reports a snapshot
// with connected == false (no member known, not quorate) and keeps trying.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vs::cluster {

struct MembershipSnapshot {
  bool connected = false;   // the engine answered; false: nothing below is known
  bool quorate = false;     // this host's partition holds the quorum
  uint64_t ring_id = 0;     // the engine's ring (configuration) sequence; changes with every membership change
  std::string this_node;    // this host's node name, as the engine's nodelist names it
  // Node names (or addresses where the nodelist gives no name), sorted, without duplicates.
  std::vector<std::string> members;           // whose shadowd is in the process group
  std::vector<std::string> corosync_members;  // whose Corosync is in the partition
  // Whose shadowd stopped while their Corosync stayed (it left the group, or was not in it while its node was
  // since this host joined) and has not joined since, whether or not the node is still in the partition. Such a
  // node cannot fence itself: if it then leaves, its VMs may run on unfenced (failover::MayPromote).
  std::vector<std::string> shadowd_stopped;
  // How long a node that went silent stays listed: Corosync's runtime token plus consensus timeouts (its
  // token_coefficient included). The fence bound's detection skew (failover::FenceTiming) is this. 0 while
  // !connected.
  std::chrono::milliseconds failure_detection{0};

  bool operator==(const MembershipSnapshot&) const = default;
};

class Membership {
 public:
  // Called after every change with the new snapshot, on the membership's own thread; must not block long
  // (it holds up the next change) and must not call Stop().
  using Listener = std::function<void(const MembershipSnapshot&)>;

  virtual ~Membership() = default;
  virtual MembershipSnapshot Current() const = 0;
  // Starts watching; `on_change` is called for every new snapshot until Stop() returns.
  virtual void Start(Listener on_change) = 0;
  // Idempotent; after it returns, no listener call runs or follows.
  virtual void Stop() = 0;
};

}  // namespace vs::cluster
