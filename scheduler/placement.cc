#include "scheduler/placement.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace vs::scheduler {
namespace {

// 1 EiB. Anything larger is a unit mistake; the bound also keeps every sum of three such values
// far from int64 overflow.
constexpr uint64_t kMaxMemoryKiB = uint64_t{1} << 50;
constexpr double kMinOvercommitRatio = 1.0;
constexpr double kMaxOvercommitRatio = 100.0;
constexpr int kMaxShadowCount = 3;

// Why a host cannot take a shadow. The order of the checks in Cluster::Check decides which one
// is reported when several apply: what the host is first, then policy, then capacity.
enum class Rejection : uint8_t {
  kNone,
  kPrimaryHost,
  kExcluded,
  kDown,
  kPrimaryZone,
  kOverCostCap,
  kNotEnoughMemory,
  kNotEnoughVcpus,
  kCount,
};

// The per-host numbers the placement loop reads, kept compact so a pass over 1,000 hosts stays
// in cache. The original Host is only read again to build text.
struct HostState {
  int zone = 0;       // interned zone name
  int name_rank = 0;  // position in name order: the last tie-breaker, without string compares
  bool up = false;
  double cost = 0;
  int64_t free_memory_kib = 0;  // total - used - reserved; negative when already overcommitted
  int64_t vcpu_capacity = 0;    // total x overcommit ratio, rounded down
  int64_t free_vcpus = 0;       // capacity - used - reserved; may be negative likewise
  uint64_t excluded_stamp = 0;  // equals RequestContext::stamp when the request excludes the host
};

// One request resolved against the cluster: host and zone names replaced by indices.
struct RequestContext {
  size_t primary = 0;
  int primary_zone = 0;
  ZoneRule zone_rule = ZoneRule::kPreferOther;
  double max_cost = 0;  // +infinity without a cap
  int64_t vcpus = 0;
  int64_t memory_kib = 0;
  size_t count = 0;
  uint64_t stamp = 0;
};

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string FormatDouble(const char* format, double value) {
  int size = std::snprintf(nullptr, 0, format, value);
  std::string text(static_cast<size_t>(size), '\0');
  std::snprintf(text.data(), text.size() + 1, format, value);
  return text;
}

// "0.10", "0.125": at least two decimals, so costs read like money, more only when needed.
std::string FormatCost(double cost) {
  std::string text = FormatDouble("%.4f", cost);
  size_t keep = text.find('.') + 3;
  while (text.size() > keep && text.back() == '0') text.pop_back();
  return text;
}

std::string FormatMemory(int64_t kib) {
  if (kib % 1024 == 0) return std::to_string(kib / 1024) + " MiB";
  return FormatDouble("%.1f MiB", static_cast<double>(kib) / 1024);
}

// "a", "a and b", "a, b and c".
std::string JoinWithAnd(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += (i + 1 == items.size()) ? " and " : ", ";
    text += items[i];
  }
  return text;
}

bool IsNonNegativeNumber(double v) { return std::isfinite(v) && v >= 0; }

Status CheckMemory(const Host& host, std::string_view field, uint64_t kib) {
  if (kib <= kMaxMemoryKiB) return Status::Ok();
  return InvalidArgument("host " + Quoted(host.name) + ": " + std::string(field) + " " +
                         std::to_string(kib) + " is above 1 EiB; memory is counted in KiB");
}

Status ValidateHost(const Host& host, size_t index) {
  if (host.name.empty()) {
    return InvalidArgument("host #" + std::to_string(index) + " has an empty name; give every host its name");
  }
  if (!IsNonNegativeNumber(host.cost_per_hour)) {
    return InvalidArgument("host " + Quoted(host.name) + ": cost_per_hour " + FormatDouble("%g", host.cost_per_hour) +
                           " is not a non-negative number; set it in the host's config");
  }
  VS_RETURN_IF_ERROR(CheckMemory(host, "total_memory_kib", host.total_memory_kib));
  VS_RETURN_IF_ERROR(CheckMemory(host, "used_memory_kib", host.used_memory_kib));
  VS_RETURN_IF_ERROR(CheckMemory(host, "reserved_memory_kib", host.reserved_memory_kib));
  return Status::Ok();
}

std::string RequestName(const ShadowRequest& r) {
  return "request for VM " + Quoted(r.vm_name) + " (id " + r.vm_id + ")";
}

// The hosts of one call, indexed for placement. Borrows `hosts` for its lifetime.
class Cluster {
 public:
  static StatusOr<Cluster> Build(std::span<const Host> hosts, const PlacementOptions& options);

  Status Validate(const ShadowRequest& request, size_t index) const;
  // Precondition: Validate(request) is OK.
  RequestContext Resolve(const ShadowRequest& request);
  // The k best eligible hosts, best first: one pass, keeping a sorted list of at most k.
  std::vector<size_t> ChooseBest(const RequestContext& ctx) const;
  // Call before Reserve() on the chosen hosts: the summary counts rejections as the request saw them.
  Placement MakePlacement(const ShadowRequest& request, const RequestContext& ctx,
                          std::span<const size_t> chosen) const;
  void Reserve(size_t host, const RequestContext& ctx);
  Explanation Explain(const ShadowRequest& request, const RequestContext& ctx) const;

 private:
  Cluster(std::span<const Host> hosts, double ratio) : hosts_(hosts), overcommit_ratio_(ratio) {}

  Rejection Check(size_t h, const RequestContext& ctx) const;
  // 0 for preferred hosts, 1 for the fallback: the primary's zone under prefer-other.
  int ZoneTier(size_t h, const RequestContext& ctx) const {
    return ctx.zone_rule == ZoneRule::kPreferOther && state_[h].zone == ctx.primary_zone ? 1 : 0;
  }
  bool RanksBefore(size_t a, size_t b, const RequestContext& ctx) const;
  std::string ShortfallSummary(const RequestContext& ctx, size_t placed) const;
  std::string RejectionReason(Rejection why, size_t h, const RequestContext& ctx) const;
  std::string ZonePhrase(size_t h, int rank, const RequestContext& ctx) const;
  std::string WhyAhead(size_t better, size_t worse, const RequestContext& ctx) const;

  std::span<const Host> hosts_;
  double overcommit_ratio_;
  std::vector<HostState> state_;
  std::unordered_map<std::string_view, size_t> index_by_name_;
  uint64_t last_stamp_ = 0;
};

StatusOr<Cluster> Cluster::Build(std::span<const Host> hosts, const PlacementOptions& options) {
  double ratio = options.vcpu_overcommit_ratio;
  if (!(ratio >= kMinOvercommitRatio && ratio <= kMaxOvercommitRatio)) {
    return InvalidArgument("vcpu_overcommit_ratio " + FormatDouble("%g", ratio) +
                           " must be between 1 (no overcommit) and 100");
  }
  Cluster cluster(hosts, ratio);
  cluster.state_.resize(hosts.size());
  cluster.index_by_name_.reserve(hosts.size());
  std::unordered_map<std::string_view, int> zone_ids;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const Host& host = hosts[i];
    VS_RETURN_IF_ERROR(ValidateHost(host, i));
    auto [it, inserted] = cluster.index_by_name_.emplace(host.name, i);
    if (!inserted) {
      return InvalidArgument("host name " + Quoted(host.name) + " appears twice (#" + std::to_string(it->second) +
                             " and #" + std::to_string(i) + "); host names must be unique");
    }
    HostState& s = cluster.state_[i];
    s.zone = zone_ids.emplace(host.zone, static_cast<int>(zone_ids.size())).first->second;
    s.up = host.up;
    s.cost = host.cost_per_hour;
    s.free_memory_kib = static_cast<int64_t>(host.total_memory_kib) - static_cast<int64_t>(host.used_memory_kib) -
                        static_cast<int64_t>(host.reserved_memory_kib);
    s.vcpu_capacity = static_cast<int64_t>(std::floor(host.total_vcpus * ratio));
    s.free_vcpus = s.vcpu_capacity - host.used_vcpus - host.reserved_vcpus;
  }
  std::vector<size_t> by_name(hosts.size());
  std::iota(by_name.begin(), by_name.end(), 0);
  std::sort(by_name.begin(), by_name.end(), [&](size_t a, size_t b) { return hosts[a].name < hosts[b].name; });
  for (size_t rank = 0; rank < by_name.size(); ++rank) cluster.state_[by_name[rank]].name_rank = static_cast<int>(rank);
  return cluster;
}

Status Cluster::Validate(const ShadowRequest& r, size_t index) const {
  if (r.vm_id.empty()) {
    return InvalidArgument("request #" + std::to_string(index) + " (VM " + Quoted(r.vm_name) +
                           ") has an empty vm_id; set it to the VM's UUID");
  }
  if (r.shadow_count < 1 || r.shadow_count > kMaxShadowCount) {
    return InvalidArgument(RequestName(r) + ": shadow_count " + std::to_string(r.shadow_count) +
                           " is out of range; use 1 to 3");
  }
  if (r.shadow_vcpus == 0) return InvalidArgument(RequestName(r) + ": shadow_vcpus is 0; a shadow needs at least 1");
  if (r.shadow_memory_kib == 0 || r.shadow_memory_kib > kMaxMemoryKiB) {
    return InvalidArgument(RequestName(r) + ": shadow_memory_kib " + std::to_string(r.shadow_memory_kib) +
                           " must be between 1 KiB and 1 EiB");
  }
  if (r.zone_rule != ZoneRule::kPreferOther && r.zone_rule != ZoneRule::kRequireOther &&
      r.zone_rule != ZoneRule::kAny) {
    return InvalidArgument(RequestName(r) + ": zone_rule " + std::to_string(static_cast<int>(r.zone_rule)) +
                           " is not one of prefer-other, require-other, any");
  }
  if (r.max_cost_per_hour && !IsNonNegativeNumber(*r.max_cost_per_hour)) {
    return InvalidArgument(RequestName(r) + ": max_cost_per_hour " + FormatDouble("%g", *r.max_cost_per_hour) +
                           " is not a non-negative number; leave it unset for no cap");
  }
  if (!index_by_name_.contains(r.primary_host)) {
    return InvalidArgument(RequestName(r) + ": primary_host " + Quoted(r.primary_host) + " is not among the " +
                           std::to_string(hosts_.size()) + " hosts given; pass every host, including down ones");
  }
  return Status::Ok();
}

RequestContext Cluster::Resolve(const ShadowRequest& r) {
  RequestContext ctx;
  ctx.primary = index_by_name_.at(r.primary_host);
  ctx.primary_zone = state_[ctx.primary].zone;
  ctx.zone_rule = r.zone_rule;
  ctx.max_cost = r.max_cost_per_hour.value_or(std::numeric_limits<double>::infinity());
  ctx.vcpus = r.shadow_vcpus;
  ctx.memory_kib = static_cast<int64_t>(r.shadow_memory_kib);
  ctx.count = static_cast<size_t>(r.shadow_count);
  // A fresh stamp per request marks its excluded hosts without clearing the previous request's.
  ctx.stamp = ++last_stamp_;
  for (const std::string& name : r.exclude_hosts) {
    auto it = index_by_name_.find(name);
    if (it != index_by_name_.end()) state_[it->second].excluded_stamp = ctx.stamp;
  }
  return ctx;
}

Rejection Cluster::Check(size_t h, const RequestContext& ctx) const {
  const HostState& s = state_[h];
  if (h == ctx.primary) return Rejection::kPrimaryHost;
  if (s.excluded_stamp == ctx.stamp) return Rejection::kExcluded;
  if (!s.up) return Rejection::kDown;
  if (ctx.zone_rule == ZoneRule::kRequireOther && s.zone == ctx.primary_zone) return Rejection::kPrimaryZone;
  if (s.cost > ctx.max_cost) return Rejection::kOverCostCap;
  if (s.free_memory_kib < ctx.memory_kib) return Rejection::kNotEnoughMemory;
  if (s.free_vcpus < ctx.vcpus) return Rejection::kNotEnoughVcpus;
  return Rejection::kNone;
}

bool Cluster::RanksBefore(size_t a, size_t b, const RequestContext& ctx) const {
  const HostState& x = state_[a];
  const HostState& y = state_[b];
  int tier_x = ZoneTier(a, ctx);
  int tier_y = ZoneTier(b, ctx);
  if (tier_x != tier_y) return tier_x < tier_y;
  if (x.cost != y.cost) return x.cost < y.cost;
  if (x.free_memory_kib != y.free_memory_kib) return x.free_memory_kib > y.free_memory_kib;
  return x.name_rank < y.name_rank;
}

std::vector<size_t> Cluster::ChooseBest(const RequestContext& ctx) const {
  std::vector<size_t> best;
  best.reserve(ctx.count + 1);
  for (size_t h = 0; h < state_.size(); ++h) {
    if (Check(h, ctx) != Rejection::kNone) continue;
    if (best.size() == ctx.count && !RanksBefore(h, best.back(), ctx)) continue;
    auto pos = std::find_if(best.begin(), best.end(), [&](size_t b) { return RanksBefore(h, b, ctx); });
    best.insert(pos, h);
    if (best.size() > ctx.count) best.pop_back();
  }
  return best;
}

void Cluster::Reserve(size_t h, const RequestContext& ctx) {
  state_[h].free_memory_kib -= ctx.memory_kib;
  state_[h].free_vcpus -= ctx.vcpus;
}

Placement Cluster::MakePlacement(const ShadowRequest& request, const RequestContext& ctx,
                                 std::span<const size_t> chosen) const {
  Placement placement;
  placement.vm_id = request.vm_id;
  for (size_t h : chosen) placement.hosts.push_back(hosts_[h].name);
  if (chosen.size() == ctx.count) {
    placement.outcome = PlacementOutcome::kPlaced;
    return placement;
  }
  placement.outcome = chosen.empty() ? PlacementOutcome::kUnplaced : PlacementOutcome::kPartiallyPlaced;
  placement.summary = ShortfallSummary(ctx, chosen.size());
  return placement;
}

std::string Cluster::ShortfallSummary(const RequestContext& ctx, size_t placed) const {
  std::string head = placed == 0 ? "no host can take a shadow of " + FormatMemory(ctx.memory_kib) + " and " +
                                       std::to_string(ctx.vcpus) + (ctx.vcpus == 1 ? " vCPU" : " vCPUs")
                                 : "only " + std::to_string(placed) + " of " + std::to_string(ctx.count) +
                                       " shadows placed";
  size_t others = hosts_.size() - 1;
  if (others == 0) return head + ": there is no host other than the primary's";

  std::array<size_t, static_cast<size_t>(Rejection::kCount)> counts{};
  for (size_t h = 0; h < state_.size(); ++h) ++counts[static_cast<size_t>(Check(h, ctx))];
  struct Phrase {
    Rejection why;
    const char* one;
    const char* many;
  };
  const Phrase phrases[] = {
      {Rejection::kNotEnoughMemory, "lacks memory", "lack memory"},
      {Rejection::kNotEnoughVcpus, "lacks vCPUs", "lack vCPUs"},
      {Rejection::kDown, "is down", "are down"},
      {Rejection::kPrimaryZone, "is in the primary's zone (the policy requires another)",
       "are in the primary's zone (the policy requires another)"},
      {Rejection::kOverCostCap, "costs more than the cap", "cost more than the cap"},
      {Rejection::kExcluded, "is excluded by the request", "are excluded by the request"},
  };
  std::vector<std::string> parts;
  for (const Phrase& p : phrases) {
    size_t n = counts[static_cast<size_t>(p.why)];
    if (n == 0) continue;
    std::string part = std::to_string(n) + " " + (n == 1 ? p.one : p.many);
    if (p.why == Rejection::kOverCostCap) part += " " + FormatCost(ctx.max_cost) + "/h";
    parts.push_back(std::move(part));
  }
  std::string other_hosts = std::to_string(others) + (others == 1 ? " other host" : " other hosts");
  // Every other host was chosen and there are still too few of them.
  if (parts.empty()) return head + ": there " + (others == 1 ? "is" : "are") + " only " + other_hosts;
  return head + ": of the " + other_hosts + ", " + JoinWithAnd(parts);
}

std::string Cluster::RejectionReason(Rejection why, size_t h, const RequestContext& ctx) const {
  const Host& host = hosts_[h];
  const HostState& s = state_[h];
  switch (why) {
    case Rejection::kPrimaryHost:
      return "rejected: it is the primary's host";
    case Rejection::kExcluded:
      return "rejected: excluded by the request (it holds another shadow of this VM, still defines the VM, "
             "or is not the host a failback asked for)";
    case Rejection::kDown:
      return "rejected: host is down";
    case Rejection::kPrimaryZone:
      return "rejected: " + host.zone + " is the primary's zone and the policy requires another zone";
    case Rejection::kOverCostCap:
      return "rejected: costs " + FormatCost(s.cost) + "/h, above the policy's cap " + FormatCost(ctx.max_cost) + "/h";
    case Rejection::kNotEnoughMemory:
      return "rejected: not enough memory: needs " + FormatMemory(ctx.memory_kib) + ", " +
             FormatMemory(std::max<int64_t>(s.free_memory_kib, 0)) + " free (" +
             FormatMemory(static_cast<int64_t>(host.total_memory_kib)) + " total, " +
             FormatMemory(static_cast<int64_t>(host.used_memory_kib)) + " used, " +
             FormatMemory(static_cast<int64_t>(host.reserved_memory_kib)) + " reserved)";
    case Rejection::kNotEnoughVcpus:
      return "rejected: not enough vCPUs: needs " + std::to_string(ctx.vcpus) + ", " +
             std::to_string(std::max<int64_t>(s.free_vcpus, 0)) + " free (" + std::to_string(host.total_vcpus) +
             " physical x " + FormatDouble("%g", overcommit_ratio_) + " overcommit = " +
             std::to_string(s.vcpu_capacity) + ", " + std::to_string(host.used_vcpus) + " used, " +
             std::to_string(host.reserved_vcpus) + " reserved)";
    case Rejection::kNone:
    case Rejection::kCount:
      break;
  }
  return "eligible";
}

std::string Cluster::ZonePhrase(size_t h, int rank, const RequestContext& ctx) const {
  const std::string& zone = hosts_[h].zone;
  if (ctx.zone_rule == ZoneRule::kAny) return "in zone " + zone;
  if (state_[h].zone != ctx.primary_zone) return "in another zone (" + zone + ")";
  // Only prefer-other ranks a host of the primary's zone; at rank 1 that means no other zone fits.
  return "in the primary's zone (" + zone + ")" + (rank == 1 ? ", as no host in another zone fits" : "");
}

// Why `better` ranks just ahead of `worse`: the first criterion of RanksBefore that differs.
std::string Cluster::WhyAhead(size_t better, size_t worse, const RequestContext& ctx) const {
  const HostState& x = state_[better];
  const HostState& y = state_[worse];
  if (ZoneTier(better, ctx) != ZoneTier(worse, ctx)) return "is outside the primary's zone";
  if (x.cost != y.cost) return "is cheaper (" + FormatCost(x.cost) + "/h vs " + FormatCost(y.cost) + "/h)";
  if (x.free_memory_kib != y.free_memory_kib) {
    return "costs the same and has more free memory (" + FormatMemory(x.free_memory_kib) + " vs " +
           FormatMemory(y.free_memory_kib) + ")";
  }
  return "costs the same, has as much free memory and sorts first by name";
}

Explanation Cluster::Explain(const ShadowRequest& request, const RequestContext& ctx) const {
  std::vector<Rejection> rejections(state_.size());
  std::vector<size_t> ranked;
  std::vector<size_t> rejected;
  for (size_t h = 0; h < state_.size(); ++h) {
    rejections[h] = Check(h, ctx);
    (rejections[h] == Rejection::kNone ? ranked : rejected).push_back(h);
  }
  std::sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) { return RanksBefore(a, b, ctx); });
  std::sort(rejected.begin(), rejected.end(),
            [&](size_t a, size_t b) { return state_[a].name_rank < state_[b].name_rank; });
  size_t chosen_count = std::min(ranked.size(), ctx.count);

  Explanation explanation;
  explanation.placement = MakePlacement(request, ctx, std::span(ranked).first(chosen_count));
  const std::string eligible_count = std::to_string(ranked.size());
  for (size_t i = 0; i < ranked.size(); ++i) {
    size_t h = ranked[i];
    int rank = static_cast<int>(i + 1);
    HostVerdict v{hosts_[h].name, i < chosen_count ? Verdict::kChosen : Verdict::kEligibleNotChosen, rank, ""};
    std::string where = "(" + FormatCost(state_[h].cost) + "/h) " + ZonePhrase(h, rank, ctx);
    if (v.verdict == Verdict::kChosen) {
      v.reason = rank == 1 ? "chosen: cheapest eligible host " + where
                           : "chosen: rank " + std::to_string(rank) + " of " + eligible_count +
                                 " eligible hosts " + where;
    } else {
      v.reason = "eligible but not chosen: rank " + std::to_string(rank) + " of " + eligible_count + " " + where;
    }
    if (i > 0) {
      v.reason += "; ranked after " + hosts_[ranked[i - 1]].name + ", which " + WhyAhead(ranked[i - 1], h, ctx);
    } else if (ranked.size() > 1 && ZoneTier(h, ctx) == ZoneTier(ranked[1], ctx) &&
               state_[h].cost == state_[ranked[1]].cost) {
      // The cheapest host won a tie: say what broke it.
      v.reason += "; ahead of " + hosts_[ranked[1]].name + " because it " + WhyAhead(h, ranked[1], ctx);
    }
    explanation.hosts.push_back(std::move(v));
  }
  for (size_t h : rejected) {
    explanation.hosts.push_back({hosts_[h].name, Verdict::kRejected, 0, RejectionReason(rejections[h], h, ctx)});
  }
  return explanation;
}

}  // namespace

StatusOr<std::vector<Placement>> PlaceAll(std::span<const Host> hosts, std::span<const ShadowRequest> requests,
                                          const PlacementOptions& options) {
  VS_ASSIGN_OR_RETURN(Cluster cluster, Cluster::Build(hosts, options));
  std::unordered_map<std::string_view, size_t> index_by_vm_id;
  index_by_vm_id.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    VS_RETURN_IF_ERROR(cluster.Validate(requests[i], i));
    auto [it, inserted] = index_by_vm_id.emplace(requests[i].vm_id, i);
    if (!inserted) {
      return InvalidArgument("vm_id " + requests[i].vm_id + " appears in requests #" + std::to_string(it->second) +
                             " and #" + std::to_string(i) + "; ask for all its shadows in one request (shadow_count)");
    }
  }
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].priority != requests[b].priority) return requests[a].priority > requests[b].priority;
    return requests[a].vm_id < requests[b].vm_id;
  });
  std::vector<Placement> placements(requests.size());
  for (size_t i : order) {
    RequestContext ctx = cluster.Resolve(requests[i]);
    std::vector<size_t> chosen = cluster.ChooseBest(ctx);
    placements[i] = cluster.MakePlacement(requests[i], ctx, chosen);
    for (size_t h : chosen) cluster.Reserve(h, ctx);
  }
  return placements;
}

StatusOr<Placement> Place(std::span<const Host> hosts, const ShadowRequest& request, const PlacementOptions& options) {
  VS_ASSIGN_OR_RETURN(std::vector<Placement> placements, PlaceAll(hosts, std::span(&request, 1), options));
  return std::move(placements.front());
}

StatusOr<Explanation> Explain(std::span<const Host> hosts, const ShadowRequest& request,
                              const PlacementOptions& options) {
  VS_ASSIGN_OR_RETURN(Cluster cluster, Cluster::Build(hosts, options));
  VS_RETURN_IF_ERROR(cluster.Validate(request, 0));
  RequestContext ctx = cluster.Resolve(request);
  return cluster.Explain(request, ctx);
}

}  // namespace vs::scheduler
