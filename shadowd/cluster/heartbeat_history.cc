#include "shadowd/cluster/heartbeat_history.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "shadowd/store/history.h"
#include "shadowd/store/keys.h"

namespace vs::cluster {
namespace {

using virtshadow::v1::HostHeartbeat;
using virtshadow::v1::MembershipEvent;

constexpr char kQuorumSeries[] = "quorum";
std::string StateId(const std::string& host) { return "state:" + host; }
std::string EventsId(const std::string& host) { return "events:" + host; }

// The seq after the newest entry of history `id` (1 for an empty one).
StatusOr<uint64_t> NextSeq(const store::Store& store, const std::string& id) {
  const std::string prefix = store::HistoryPrefix(store::Table::kHeartbeat, id);
  VS_ASSIGN_OR_RETURN(std::vector<std::string> keys, store.ScanKeys(prefix));
  if (keys.empty()) return uint64_t{1};
  const std::string_view digits = std::string_view(keys.back()).substr(prefix.size());
  uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    return DataLoss("heartbeat history key '" + keys.back() + "' does not end in a sequence number");
  }
  return seq + 1;
}

}  // namespace

std::string_view HostMembershipName(HostMembership state) {
  switch (state) {
    case HostMembership::kNeverSeen: return "never seen";
    case HostMembership::kMember: return "member";
    case HostMembership::kAbsent: return "absent";
  }
  return "unknown";
}

HeartbeatHistory::HeartbeatHistory(store::Store& store, Clock& clock, ClusterHosts hosts, HeartbeatOptions options)
    : store_(store), clock_(clock), hosts_(std::move(hosts)), options_(options) {}

Status HeartbeatHistory::Load() {
  std::map<std::string, HostHeartbeat> states;
  std::map<std::string, uint64_t> next_seq;
  for (const HostConfig& host : hosts_.hosts) {
    const std::string key = store::Key(store::Table::kHeartbeat, StateId(host.name));
    VS_ASSIGN_OR_RETURN(std::optional<HostHeartbeat> state, store::GetProto<HostHeartbeat>(store_, key));
    if (state) states[host.name] = *state;
    VS_ASSIGN_OR_RETURN(next_seq[EventsId(host.name)], NextSeq(store_, EventsId(host.name)));
  }
  VS_ASSIGN_OR_RETURN(next_seq[kQuorumSeries], NextSeq(store_, kQuorumSeries));
  VS_ASSIGN_OR_RETURN(std::vector<MembershipEvent> quorum,
                      store::ScanProtos<MembershipEvent>(
                          store_, store::HistoryPrefix(store::Table::kHeartbeat, kQuorumSeries)));
  MutexLock lock(mu_);
  states_ = std::move(states);
  persisted_seen_ms_.clear();
  for (const auto& [host, state] : states_) persisted_seen_ms_[host] = state.last_seen_ms();
  next_seq_ = std::move(next_seq);
  quorate_.reset();
  if (!quorum.empty()) quorate_ = quorum.back().kind() == MembershipEvent::QUORUM_GAINED;
  loaded_ = true;
  return Status::Ok();
}

const HostConfig* HeartbeatHistory::HostOf(const std::string& node) const {
  // By hand rather than ClusterHosts::Find, which lives in vs_cluster with the libvirt parts.
  for (const HostConfig& host : hosts_.hosts) {
    if (host.name == node) return &host;
  }
  for (const HostConfig& host : hosts_.hosts) {
    if (!host.address.empty() && host.address == node) return &host;
  }
  return nullptr;
}

Status HeartbeatHistory::AppendEvent(store::WriteBatch& batch, const std::string& series, uint64_t seq,
                                     const MembershipEvent& event) const {
  return store::AppendBounded(store_, batch, store::Table::kHeartbeat, series, seq, event, options_.max_events);
}

Status HeartbeatHistory::Observe(const MembershipSnapshot& snapshot) {
  const int64_t now_ms = ToUnixMillis(clock_.WallNow());
  std::set<std::string> members;
  std::vector<std::string> corosync_members, shadowd_stopped;
  for (const std::string& node : snapshot.members) {
    if (const HostConfig* host = HostOf(node)) members.insert(host->name);
  }
  for (const std::string& node : snapshot.corosync_members) {
    if (const HostConfig* host = HostOf(node)) corosync_members.push_back(host->name);
  }
  for (const std::string& node : snapshot.shadowd_stopped) {
    if (const HostConfig* host = HostOf(node)) shadowd_stopped.push_back(host->name);
  }

  MutexLock lock(mu_);
  if (!loaded_) return FailedPrecondition("the heartbeat history was not loaded from the store");
  // Everything is computed on copies and applied only once the batch is written.
  std::map<std::string, HostHeartbeat> states = states_;
  std::map<std::string, uint64_t> next_seq = next_seq_;
  std::map<std::string, int64_t> persisted = persisted_seen_ms_;
  store::WriteBatch batch;

  if (snapshot.connected) {
    for (const HostConfig& host : hosts_.hosts) {
      const bool member = members.count(host.name) > 0;
      auto found = states.find(host.name);
      if (found == states.end() && !member) continue;  // never seen, still not seen: nothing to record
      HostHeartbeat& state = states[host.name];
      state.set_host(host.name);
      const bool changed = found == states.end() || state.member() != member;
      if (member) state.set_last_seen_ms(now_ms);
      if (changed) {
        state.set_member(member);
        state.set_since_ms(now_ms);
        state.set_ring_id(snapshot.ring_id);
        MembershipEvent event;
        event.set_kind(member ? MembershipEvent::JOINED : MembershipEvent::LEFT);
        event.set_at_ms(now_ms);
        event.set_host(host.name);
        event.set_ring_id(snapshot.ring_id);
        event.set_members(static_cast<uint32_t>(members.size()));
        VS_RETURN_IF_ERROR(AppendEvent(batch, EventsId(host.name), next_seq[EventsId(host.name)]++, event));
      }
      const bool stale = member && now_ms - persisted[host.name] >=
                                       std::chrono::duration_cast<std::chrono::milliseconds>(
                                           options_.persist_interval).count();
      if (changed || stale) {
        batch.PutProto(store::Key(store::Table::kHeartbeat, StateId(host.name)), state);
        persisted[host.name] = state.last_seen_ms();
      }
    }
  }
  const bool quorate = snapshot.connected && snapshot.quorate;
  if (!quorate_.has_value() || *quorate_ != quorate) {
    MembershipEvent event;
    event.set_kind(quorate ? MembershipEvent::QUORUM_GAINED : MembershipEvent::QUORUM_LOST);
    event.set_at_ms(now_ms);
    event.set_ring_id(snapshot.ring_id);
    event.set_members(static_cast<uint32_t>(members.size()));
    VS_RETURN_IF_ERROR(AppendEvent(batch, kQuorumSeries, next_seq[kQuorumSeries]++, event));
  }
  if (!batch.ops().empty()) VS_RETURN_IF_ERROR(store_.Write(batch));

  states_ = std::move(states);
  next_seq_ = std::move(next_seq);
  persisted_seen_ms_ = std::move(persisted);
  quorate_ = quorate;
  known_ = snapshot.connected;
  if (snapshot.connected) {
    ring_id_ = snapshot.ring_id;
    failure_detection_ = snapshot.failure_detection;
    corosync_members_ = std::move(corosync_members);
    shadowd_stopped_ = std::move(shadowd_stopped);
  }
  return Status::Ok();
}

MembershipView HeartbeatHistory::View() const {
  MutexLock lock(mu_);
  MembershipView view;
  view.known = known_;
  view.quorate = known_ && quorate_.value_or(false);
  view.ring_id = ring_id_;
  view.failure_detection = failure_detection_;
  for (const HostConfig& host : hosts_.hosts) {
    HostHeartbeatView out;
    out.host = host.name;
    out.corosync_member = known_ && std::find(corosync_members_.begin(), corosync_members_.end(), host.name) !=
                                        corosync_members_.end();
    out.shadowd_stopped =
        std::find(shadowd_stopped_.begin(), shadowd_stopped_.end(), host.name) != shadowd_stopped_.end();
    if (auto found = states_.find(host.name); found != states_.end()) {
      const HostHeartbeat& state = found->second;
      out.state = state.member() ? HostMembership::kMember : HostMembership::kAbsent;
      if (state.since_ms() != 0) out.since = FromUnixMillis(state.since_ms());
      if (state.last_seen_ms() != 0) out.last_seen = FromUnixMillis(state.last_seen_ms());
      // A member of the current (connected) snapshot is seen now: the membership thread would have said
      // otherwise. This keeps last seen true while the loop, whose tick advances the stored value, is held up.
      if (known_ && state.member()) out.last_seen = clock_.WallNow();
    }
    view.hosts.push_back(std::move(out));
  }
  return view;
}

StatusOr<std::vector<MembershipEvent>> HeartbeatHistory::HostEvents(const std::string& host) const {
  return store::ScanProtos<MembershipEvent>(store_, store::HistoryPrefix(store::Table::kHeartbeat, EventsId(host)));
}

StatusOr<std::vector<MembershipEvent>> HeartbeatHistory::QuorumEvents() const {
  return store::ScanProtos<MembershipEvent>(store_, store::HistoryPrefix(store::Table::kHeartbeat, kQuorumSeries));
}

void MembershipRecorder::Start() {
  membership_.Start([this](const MembershipSnapshot& snapshot) {
    if (first_) first_(snapshot);
    if (Status observed = history_.Observe(snapshot); !observed.ok() && on_error_) on_error_(observed);
  });
}

namespace {
bool LeftWithItsCorosync(const HostHeartbeatView& host) {
  return host.state == HostMembership::kAbsent && !host.corosync_member;
}
}  // namespace

bool LeftWithItsCorosync(const MembershipView& view, const std::string& host) {
  if (!view.known) return false;
  const auto found =
      std::find_if(view.hosts.begin(), view.hosts.end(), [&](const HostHeartbeatView& h) { return h.host == host; });
  return found != view.hosts.end() && LeftWithItsCorosync(*found);
}

std::vector<std::string> HostsGoneFor(const MembershipView& view, WallTime now, Duration after) {
  std::vector<std::string> gone;
  if (!view.known || !view.quorate) return gone;
  for (const HostHeartbeatView& host : view.hosts) {
    if (LeftWithItsCorosync(host) && host.since && now - *host.since >= after) gone.push_back(host.host);
  }
  return gone;
}

}  // namespace vs::cluster
