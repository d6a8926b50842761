#include "shadowd/cluster/membership_metrics.h"

namespace vs::cluster {

std::vector<metrics::MetricFamily> MembershipMetrics(const MembershipView& view) {
  using metrics::MetricFamily;
  MetricFamily member{"virt_shadow_host_member",
                      "1 while the host's shadowd is a member of this host's partition (Corosync process group).",
                      MetricFamily::Type::kGauge, {}};
  MetricFamily last_seen{"virt_shadow_host_last_seen_timestamp_seconds",
                         "Unix time at which this host last saw the host as a member.", MetricFamily::Type::kGauge,
                         {}};
  for (const HostHeartbeatView& host : view.hosts) {
    const bool is_member = view.known && host.state == HostMembership::kMember;
    member.samples.push_back({{{"host", host.host}}, is_member ? 1.0 : 0.0});
    if (host.last_seen) {
      last_seen.samples.push_back(
          {{{"host", host.host}}, static_cast<double>(ToUnixMillis(*host.last_seen)) / 1000.0});
    }
  }
  MetricFamily quorate{"virt_shadow_quorate", "1 while this host's partition holds the quorum (votequorum).",
                       MetricFamily::Type::kGauge, {{{}, view.quorate ? 1.0 : 0.0}}};
  MetricFamily known{"virt_shadow_membership_known", "0 while this host's Corosync is unreachable.",
                     MetricFamily::Type::kGauge, {{{}, view.known ? 1.0 : 0.0}}};
  return {member, last_seen, quorate, known};
}

}  // namespace vs::cluster
