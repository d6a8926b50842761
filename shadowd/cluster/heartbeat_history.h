// HeartbeatHistory: what this host has seen of every configured host's membership, kept in the store so that
// it survives a restart of shadowd: per host its newest state (member or absent, since when, when last seen)
// and a bounded history of its joins and leaves, plus a bounded history of this partition's quorum changes.
// Fed with Membership snapshots (membership.h); read by `virt-shadow hosts` and the metrics. Pure: no engine
// of its own, time from the Clock.
//
// Store layout (table kHeartbeat, keys.h): Key("state:HOST") the host's newest HostHeartbeat;
// HistoryKey("events:HOST", seq) its MembershipEvents (JOINED/LEFT); HistoryKey("quorum", seq) this host's
// quorum changes (QUORUM_GAINED/LOST). Each history keeps at most `max_events` entries (AppendBounded).
//
// Last seen: View() gives a member of the current snapshot as seen now. A member's last_seen advances with
// every Observe in memory, and is written to the store when it
// changes state or when the stored value is `persist_interval` old, so that observing every 500 ms does not
// mean a synced write every 500 ms. After a restart a host's last_seen is therefore at most that interval
// older than the last time this host saw it.
//
// Matching: a snapshot names nodes as the engine's nodelist does; a name matches the configured host of that
// name, or else the host whose address it is. Names matching no configured host are ignored.
//
// A snapshot with connected == false (the engine unreachable) tells nothing about the other hosts: their states
// are kept as they were (View().known says it), but the partition counts as not quorate.
//
// Ownership: borrows the store and the clock (they must outlive it). Thread-safety: every method may be called
// from any thread (one mutex); Observe calls are serialised by it. Failure modes: Load and Observe return the
// store's errors (DataLoss for a damaged record); a failed Observe changes nothing, in memory or in the store,
// and the next Observe tries again. Observe before a successful Load is FailedPrecondition.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/membership.pb.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/cluster/membership.h"
#include "shadowd/store/store.h"

namespace vs::cluster {

struct HeartbeatOptions {
  size_t max_events = 100;                         // per history (each host's, the quorum's), >= 1
  Duration persist_interval = std::chrono::seconds(10);  // see "Last seen" above
};

enum class HostMembership { kNeverSeen, kMember, kAbsent };
std::string_view HostMembershipName(HostMembership state);  // "never seen", "member", "absent"

struct HostHeartbeatView {
  std::string host;
  HostMembership state = HostMembership::kNeverSeen;
  std::optional<WallTime> since;      // when it became a member or absent (unset when never seen)
  std::optional<WallTime> last_seen;  // the last time it was seen a member (unset when never)
  bool corosync_member = false;       // its Corosync is in this partition (in the last connected snapshot)
  // Its shadowd stopped while its Corosync stayed and has not come back (MembershipSnapshot::shadowd_stopped, in
  // the last connected snapshot): it cannot fence itself.
  bool shadowd_stopped = false;
};

struct MembershipView {
  bool known = false;    // the last snapshot came from a reachable engine
  bool quorate = false;  // false whenever !known
  uint64_t ring_id = 0;
  Duration failure_detection{0};  // MembershipSnapshot::failure_detection of the last known snapshot
  std::vector<HostHeartbeatView> hosts;  // configuration order
};

// Whether a known view says `host` left with its Corosync: its shadowd was seen leaving and its Corosync node is
// not in this partition either (crashed, cut off, powered down). A host whose shadowd alone is away (restarting)
// has not: its libvirtd and its VMs are most likely fine. False for a host never seen and for an unknown view.
// The one definition of "left"; HostsGoneFor adds quorum and duration. Pure.
bool LeftWithItsCorosync(const MembershipView& view, const std::string& host);

// The hosts gone from this partition: absent (their shadowd left) for at least `after` at `now`, and their
// Corosync node is not in the partition either (a host whose shadowd restarts but whose node is up is not gone:
// its libvirtd and its VMs are most likely fine). None unless the view is known and quorate: a partition
// without quorum cannot tell whether the others are gone or itself is the one cut off. A host never seen is not
// counted (it may not have been started yet). `after` runs from the shadowd's leaving, which the node's may
// follow later. Pure.
std::vector<std::string> HostsGoneFor(const MembershipView& view, WallTime now, Duration after);

class HeartbeatHistory {
 public:
  HeartbeatHistory(store::Store& store, Clock& clock, ClusterHosts hosts, HeartbeatOptions options = {});

  // Reads every host's newest state and where each history ends. Call once before Observe.
  Status Load();
  // Records what changed since the last snapshot (one store batch) and advances the members' last_seen.
  Status Observe(const MembershipSnapshot& snapshot);
  MembershipView View() const;

  // The stored histories, oldest first.
  StatusOr<std::vector<virtshadow::v1::MembershipEvent>> HostEvents(const std::string& host) const;
  StatusOr<std::vector<virtshadow::v1::MembershipEvent>> QuorumEvents() const;

 private:
  // The configured host `node` names (by name, else by address); nullptr when none.
  const HostConfig* HostOf(const std::string& node) const;
  Status AppendEvent(store::WriteBatch& batch, const std::string& series, uint64_t seq,
                     const virtshadow::v1::MembershipEvent& event) const VS_REQUIRES(mu_);

  store::Store& store_;
  Clock& clock_;
  const ClusterHosts hosts_;
  const HeartbeatOptions options_;

  mutable Mutex mu_;
  bool loaded_ VS_GUARDED_BY(mu_) = false;
  std::map<std::string, virtshadow::v1::HostHeartbeat> states_ VS_GUARDED_BY(mu_);  // host -> newest state
  std::map<std::string, int64_t> persisted_seen_ms_ VS_GUARDED_BY(mu_);  // host -> last_seen in the store
  std::map<std::string, uint64_t> next_seq_ VS_GUARDED_BY(mu_);           // history id -> its next seq
  std::optional<bool> quorate_ VS_GUARDED_BY(mu_);  // as last recorded (the newest quorum event)
  bool known_ VS_GUARDED_BY(mu_) = false;
  uint64_t ring_id_ VS_GUARDED_BY(mu_) = 0;
  Duration failure_detection_ VS_GUARDED_BY(mu_){0};
  std::vector<std::string> corosync_members_ VS_GUARDED_BY(mu_);  // configured host names
  std::vector<std::string> shadowd_stopped_ VS_GUARDED_BY(mu_);   // configured host names
};

// Feeds a HeartbeatHistory from a Membership: every change as it happens (on the membership's thread), and
// Tick() (the daemon's loop, every 500 ms) observes the current snapshot again, so that members' last_seen
// advances between changes and a failed write is retried.
// `first`, when set, sees every change before the history records it (the self-fence: it must not wait for a
// store write), on the membership's thread; it must return at once.
// Ownership: borrows both (they must outlive it). Thread-safety: Start/Stop/Tick from one thread; the
// membership's thread calls into the history, which is thread-safe. Failure modes: Tick returns the history's
// error; an error on the membership's thread goes to `on_error` (the next Tick retries).
class MembershipRecorder {
 public:
  MembershipRecorder(Membership& membership, HeartbeatHistory& history, std::function<void(const Status&)> on_error,
                     Membership::Listener first = nullptr)
      : membership_(membership), history_(history), on_error_(std::move(on_error)), first_(std::move(first)) {}
  ~MembershipRecorder() { Stop(); }

  void Start();
  void Stop() { membership_.Stop(); }
  Status Tick() { return history_.Observe(membership_.Current()); }

 private:
  Membership& membership_;
  HeartbeatHistory& history_;
  const std::function<void(const Status&)> on_error_;
  const Membership::Listener first_;
};

}  // namespace vs::cluster
