// What shadowd's Prometheus endpoint shows about the cluster's membership (HeartbeatHistory::View):
//   virt_shadow_host_member{host}                      1 while the host's shadowd is in this partition, else 0
//   virt_shadow_host_last_seen_timestamp_seconds{host} Unix time it was last seen a member (absent: never seen)
//   virt_shadow_quorate                                1 while this host's partition holds the quorum
//   virt_shadow_membership_known                       0 while the membership engine (Corosync) is unreachable
//   virt_shadow_members                                the hosts counted 1 by virt_shadow_host_member
//   virt_shadow_host_state{host,state}                 1 for the host's state in the heartbeat history (member,
//                                                      absent, never_seen; as last recorded while unknown), else 0
// While the membership is unknown every host counts as not a member: nothing says it is alive.
// Pure: values in, values out.
#pragma once

#include <vector>

#include "shadowd/cluster/heartbeat_history.h"
#include "shadowd/metrics/prometheus_text.h"

namespace vs::cluster {

std::vector<metrics::MetricFamily> MembershipMetrics(const MembershipView& view);

}  // namespace vs::cluster
