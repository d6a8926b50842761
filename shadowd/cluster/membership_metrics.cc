#include "shadowd/cluster/membership_metrics.h"

#include <algorithm>
#include <string>

namespace vs::cluster {

std::vector<metrics::MetricFamily> MembershipMetrics(const MembershipView& view) {
  using metrics::MetricFamily;
  MetricFamily member{"virt_shadow_host_member",
                      "1 while the host's shadowd is a member of this host's partition (Corosync process group).",
                      MetricFamily::Type::kGauge, {}};
  MetricFamily last_seen{"virt_shadow_host_last_seen_timestamp_seconds",
                         "Unix time at which this host last saw the host as a member.", MetricFamily::Type::kGauge,
                         {}};
  MetricFamily state{"virt_shadow_host_state",
                     "1 for the host's state in this host's heartbeat history (member, absent, never_seen), 0 for "
                     "the others; kept as last recorded while the membership is unknown.",
                     MetricFamily::Type::kGauge, {}};
  double members = 0;
  for (const HostHeartbeatView& host : view.hosts) {
    const bool is_member = view.known && host.state == HostMembership::kMember;
    members += is_member ? 1 : 0;
    member.samples.push_back({{{"host", host.host}}, is_member ? 1.0 : 0.0});
    for (HostMembership candidate : {HostMembership::kMember, HostMembership::kAbsent, HostMembership::kNeverSeen}) {
      std::string name(HostMembershipName(candidate));
      std::replace(name.begin(), name.end(), ' ', '_');
      state.samples.push_back({{{"host", host.host}, {"state", name}}, host.state == candidate ? 1.0 : 0.0});
    }
    if (host.last_seen) {
      last_seen.samples.push_back(
          {{{"host", host.host}}, static_cast<double>(ToUnixMillis(*host.last_seen)) / 1000.0});
    }
  }
  MetricFamily quorate{"virt_shadow_quorate", "1 while this host's partition holds the quorum (votequorum).",
                       MetricFamily::Type::kGauge, {{{}, view.quorate ? 1.0 : 0.0}}};
  MetricFamily known{"virt_shadow_membership_known", "0 while this host's Corosync is unreachable.",
                     MetricFamily::Type::kGauge, {{{}, view.known ? 1.0 : 0.0}}};
  MetricFamily count{"virt_shadow_members", "Hosts whose shadowd is a member of this host's partition.",
                     MetricFamily::Type::kGauge, {{{}, members}}};
  return {member, last_seen, quorate, known, count, state};
}

}  // namespace vs::cluster
