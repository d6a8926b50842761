// Shadow placement: for a VM running on its primary host, chooses the host(s) that hold its
// shadow(s) -- a reduced-size copy that is defined but not running and reserves capacity there.
//
// Pure functions of their inputs: no I/O, no clock, no global or static mutable state.
// Thread-compatible: concurrent calls are safe as long as no caller mutates the inputs meanwhile.
// Inputs are borrowed for the duration of the call only; results own all their data.
//
// Rules, applied to every host (the first that fails is the reason reported):
//   1. never the primary's host;  2. never a host on the request's exclude list;  3. never a host
//   that is down;  4. zone: require-other rejects the primary's zone;  5. never a host costing more
//   per hour than the request's cap;  6. the shadow must fit the host's free memory (total - used -
//   reserved; memory is never overcommitted);  7. ... and its free vCPUs, where the capacity is
//   total x vcpu_overcommit_ratio, rounded down.
// Eligible hosts are ranked by: zone tier (prefer-other only: hosts outside the primary's zone
// first, its own zone as a fallback), then cost per hour ascending, then free memory descending,
// then name. The k best distinct hosts are chosen.
//
// Failure modes: malformed input (empty or duplicate names, k outside 1..3, zero-sized shadow,
// unknown primary host, NaN or negative costs, absurd sizes) is InvalidArgument naming the host or
// request and the field. A request that cannot be (fully) placed is NOT an error: its Placement
// says kUnplaced / kPartiallyPlaced and its summary says why.
//
// Cost: PlaceAll is O(R log R + R * H) for R requests over H hosts: one pass over compact host
// records per request keeping the k best, no strings built unless a request falls short.
// Explanations (strings for every host) are made only by Explain, for one request at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace vs::scheduler {

// A host as the scheduler sees it. Memory in KiB, as libvirt reports it.
struct Host {
  std::string name;  // unique among the hosts passed to one call
  std::string zone;
  bool up = true;
  double cost_per_hour = 0;  // from config; any currency, the same for all hosts
  // Capacity available to guests.
  uint32_t total_vcpus = 0;
  uint64_t total_memory_kib = 0;
  // Used by running domains.
  uint32_t used_vcpus = 0;
  uint64_t used_memory_kib = 0;
  // Sum of all shadow reservations already on this host.
  uint32_t reserved_vcpus = 0;
  uint64_t reserved_memory_kib = 0;
};

enum class ZoneRule {
  kPreferOther,   // hosts outside the primary's zone first, then hosts in it
  kRequireOther,  // only hosts outside the primary's zone
  kAny,           // zone does not matter
};

// Where to put the shadow(s) of one VM.
struct ShadowRequest {
  std::string vm_id;  // the VM's UUID; unique within one PlaceAll call
  std::string vm_name;
  std::string primary_host;  // must be one of the hosts passed (even if down)
  uint32_t shadow_vcpus = 0;
  uint64_t shadow_memory_kib = 0;
  int shadow_count = 1;  // k: shadows this request places, 1..3, each on a distinct host
  ZoneRule zone_rule = ZoneRule::kPreferOther;
  std::optional<double> max_cost_per_hour;  // hosts costing more are excluded; none: no cap
  // Hosts not to use, e.g. those already holding another shadow of this VM. Names that match no
  // host are ignored: a host removed from the cluster must not make the request fail.
  std::vector<std::string> exclude_hosts;
  int priority = 0;  // PlaceAll places higher priorities first
};

struct PlacementOptions {
  double vcpu_overcommit_ratio = 4.0;  // vCPUs that may be allotted per physical vCPU, 1..100
};

enum class PlacementOutcome { kPlaced, kPartiallyPlaced, kUnplaced };

struct Placement {
  std::string vm_id;
  PlacementOutcome outcome = PlacementOutcome::kUnplaced;
  std::vector<std::string> hosts;  // chosen hosts, best first; fewer than k unless kPlaced
  // Empty when placed; otherwise one sentence saying why, shown as "unprotected: <summary>".
  std::string summary;
};

enum class Verdict { kChosen, kEligibleNotChosen, kRejected };

struct HostVerdict {
  std::string host;
  Verdict verdict = Verdict::kRejected;
  int rank = 0;        // 1-based among eligible hosts (chosen ones included); 0 when rejected
  std::string reason;  // plain words, e.g. "rejected: host is down"
};

struct Explanation {
  Placement placement;
  // Every host exactly once: eligible hosts by rank, then rejected hosts by name.
  std::vector<HostVerdict> hosts;
};

// Places the shadow(s) of one request.
StatusOr<Placement> Place(std::span<const Host> hosts, const ShadowRequest& request,
                          const PlacementOptions& options = {});

// Places many requests in priority order (higher first, then vm_id), each seeing the
// reservations made by the ones before it. The result is index-aligned with `requests`.
// Any malformed host or request fails the whole call before anything is placed.
StatusOr<std::vector<Placement>> PlaceAll(std::span<const Host> hosts,
                                          std::span<const ShadowRequest> requests,
                                          const PlacementOptions& options = {});

// Place() plus a verdict and reason for every host. Builds a string per host: for one VM on
// demand (status, CLI), not for batch placement.
StatusOr<Explanation> Explain(std::span<const Host> hosts, const ShadowRequest& request,
                              const PlacementOptions& options = {});

}  // namespace vs::scheduler
