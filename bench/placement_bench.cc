// Placement throughput against the roadmap target: 10,000 shadow requests over 1,000 hosts in 4
// zones, well under a second. Runs PlaceAll and, as a baseline, a naive placer that sorts every
// host by the full comparator for each request; checks that both choose the same hosts, then
// prints how many times faster PlaceAll is.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "scheduler/placement.h"

namespace {

using vs::scheduler::Host;
using vs::scheduler::PlacementOptions;
using vs::scheduler::ShadowRequest;
using vs::scheduler::ZoneRule;

constexpr int kHosts = 1000;
constexpr int kRequests = 10000;
constexpr uint64_t kGiB = 1024 * 1024;

struct Workload {
  std::vector<Host> hosts;
  std::vector<ShadowRequest> requests;
};

Workload MakeWorkload() {
  std::mt19937 rng(42);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const double costs[] = {0.08, 0.10, 0.12, 0.15};  // few distinct costs: many ties to break
  Workload w;
  for (int i = 0; i < kHosts; ++i) {
    Host h;
    h.name = "host-" + std::to_string(i);
    h.zone = "zone-" + std::to_string(i % 4);
    h.up = pick(0, 49) > 0;
    h.cost_per_hour = costs[pick(0, 3)];
    h.total_vcpus = pick(32, 96);
    h.total_memory_kib = uint64_t(pick(128, 512)) * kGiB;
    h.used_vcpus = pick(0, 2 * h.total_vcpus);
    h.used_memory_kib = h.total_memory_kib * pick(30, 80) / 100;
    w.hosts.push_back(h);
  }
  for (int i = 0; i < kRequests; ++i) {
    ShadowRequest r;
    r.vm_id = "vm-" + std::to_string(i);
    r.vm_name = r.vm_id;
    r.primary_host = w.hosts[pick(0, kHosts - 1)].name;
    r.shadow_vcpus = pick(1, 4);
    r.shadow_memory_kib = uint64_t(pick(1, 12)) * kGiB;
    int roll = pick(0, 9);
    r.shadow_count = roll < 7 ? 1 : roll < 9 ? 2 : 3;
    r.zone_rule = static_cast<ZoneRule>(pick(0, 2));
    if (pick(0, 4) == 0) r.max_cost_per_hour = 0.12;
    if (pick(0, 9) == 0) r.exclude_hosts.push_back(w.hosts[pick(0, kHosts - 1)].name);
    r.priority = pick(0, 9);
    w.requests.push_back(r);
  }
  return w;
}

std::vector<std::vector<std::string>> FastPlaceAll(const Workload& w) {
  auto placements = vs::scheduler::PlaceAll(w.hosts, w.requests);
  if (!placements.ok()) {
    std::fprintf(stderr, "PlaceAll failed: %s\n", placements.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<std::vector<std::string>> hosts;
  for (auto& p : *placements) hosts.push_back(std::move(p.hosts));
  return hosts;
}

// The obvious implementation: per request, every host's eligibility from strings, then a full sort.
std::vector<std::vector<std::string>> NaivePlaceAll(const Workload& w) {
  const double ratio = PlacementOptions().vcpu_overcommit_ratio;
  std::vector<Host> hosts = w.hosts;
  auto free_memory = [](const Host& h) {
    return int64_t(h.total_memory_kib) - int64_t(h.used_memory_kib) - int64_t(h.reserved_memory_kib);
  };
  std::vector<size_t> order(w.requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const ShadowRequest& x = w.requests[a];
    const ShadowRequest& y = w.requests[b];
    return std::tie(y.priority, x.vm_id) < std::tie(x.priority, y.vm_id);  // priority descending, then id
  });
  std::vector<std::vector<std::string>> result(w.requests.size());
  for (size_t i : order) {
    const ShadowRequest& r = w.requests[i];
    const Host& primary =
        *std::find_if(hosts.begin(), hosts.end(), [&](const Host& h) { return h.name == r.primary_host; });
    std::vector<bool> eligible(hosts.size());
    for (size_t h = 0; h < hosts.size(); ++h) {
      const Host& x = hosts[h];
      eligible[h] = x.name != primary.name &&
                    std::find(r.exclude_hosts.begin(), r.exclude_hosts.end(), x.name) == r.exclude_hosts.end() &&
                    x.up && !(r.zone_rule == ZoneRule::kRequireOther && x.zone == primary.zone) &&
                    x.cost_per_hour <= r.max_cost_per_hour.value_or(x.cost_per_hour) &&
                    free_memory(x) >= int64_t(r.shadow_memory_kib) &&
                    int64_t(x.total_vcpus * ratio) - x.used_vcpus - x.reserved_vcpus >= r.shadow_vcpus;
    }
    std::vector<size_t> ranked(hosts.size());
    std::iota(ranked.begin(), ranked.end(), 0);
    auto key = [&](size_t h) {
      const Host& x = hosts[h];
      bool fallback = r.zone_rule == ZoneRule::kPreferOther && x.zone == primary.zone;
      return std::tuple<bool, bool, double, int64_t, const std::string&>(!eligible[h], fallback, x.cost_per_hour,
                                                                         -free_memory(x), x.name);
    };
    std::sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
    for (size_t j = 0; j < ranked.size() && result[i].size() < size_t(r.shadow_count) && eligible[ranked[j]]; ++j) {
      Host& chosen = hosts[ranked[j]];
      result[i].push_back(chosen.name);
      chosen.reserved_memory_kib += r.shadow_memory_kib;
      chosen.reserved_vcpus += r.shadow_vcpus;
    }
  }
  return result;
}

// Remembers each benchmark's CPU time per iteration so main() can print the ratio. CPU time, not
// wall time: on a shared build machine the wall time mostly measures the neighbours.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration) cpu_ms_[run.run_name.function_name] = run.GetAdjustedCPUTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> cpu_ms_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const Workload workload = MakeWorkload();
  // A faster placer that places differently proves nothing: check they agree first.
  std::vector<std::vector<std::string>> fast = FastPlaceAll(workload);
  if (fast != NaivePlaceAll(workload)) {
    std::fprintf(stderr, "PlaceAll and the naive placer chose different hosts\n");
    return 1;
  }
  size_t shadows = 0;
  for (const auto& hosts : fast) shadows += hosts.size();
  std::printf("%d requests over %d hosts: %zu shadows placed; both placers agree\n", kRequests, kHosts, shadows);

  benchmark::RegisterBenchmark("BM_PlaceAll", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(FastPlaceAll(workload));
  })->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_NaivePlaceAll", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(NaivePlaceAll(workload));
  })->Unit(benchmark::kMillisecond);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto fast_cpu = reporter.cpu_ms_.find("BM_PlaceAll");
  auto naive_cpu = reporter.cpu_ms_.find("BM_NaivePlaceAll");
  if (fast_cpu != reporter.cpu_ms_.end() && naive_cpu != reporter.cpu_ms_.end() && fast_cpu->second > 0) {
    std::printf("naive / PlaceAll (CPU time): %.1fx\n", naive_cpu->second / fast_cpu->second);
  }
  benchmark::Shutdown();
  return 0;
}
