// many_vms_bench: many protected VMs on one host, each writing, each replicated every 5 s: does every replica stay
// within twice its interval, and what does a round cost? Issue 14, item 4. Run by hand with the lab up and
// installed:
//   scripts/lab.sh up 3 && scripts/lab.sh install build && build/bench/many_vms_bench [--guests N] [--minutes M]
//
// N small guests (default 8) run on h1, each writing records (vs.rate, 64 KiB each, fsync'd) and tagged with a
// 5 s interval; their shadows go to h2 and h3. The lab links are shaped to 1 Gbit/s. Two phases, one after the
// other on the same guests, each M minutes (default 10):
//   1. h1's shadowd with its round_concurrency (default 4: rounds of different VMs at once, RoundQueue's order);
//   2. the baseline: round_concurrency = 1, one round at a time, as every earlier version ran them.
// Sampled every second from h1's metrics endpoint: every VM's lag (the age of its replica's point in time), the
// rounds waiting for a free runner; and at each phase's ends the rounds applied, bytes sent, failures, and the CPU
// time of shadowd on every host (process_cpu_seconds_total). Printed per phase: each VM's p50/p95/max lag, the worst
// p95 against the aim (2x the interval), CPU per round and per MiB, and each guest's acknowledged records/s (every
// guest must keep writing: one that stops is a failure, not a figure).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/bench_lab.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr double kMiB = 1024.0 * 1024.0;

// One scrape of a metrics endpoint: "name{labels}" -> value.
using Scrape = std::map<std::string, double>;

Scrape ScrapeMetrics(const BenchLab& lab, const LabHost& host) {
  CommandResult got = RunCommand("curl -sf --max-time 5 http://" + host.address + ":9177/metrics");
  if (got.exit_code != 0) lab.Die("metrics of " + host.name + ": curl exit " + std::to_string(got.exit_code));
  Scrape out;
  std::istringstream lines(got.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// The value of `family` for the VM named `vm` (its series carries vm="..."), NaN when absent.
double VmValue(const Scrape& scrape, const std::string& family, const std::string& vm) {
  const std::string prefix = family + "{vm=\"" + vm + "\"";
  auto it = scrape.lower_bound(prefix);
  if (it == scrape.end() || it->first.compare(0, prefix.size(), prefix) != 0) return std::nan("");
  return it->second;
}

double Value(const Scrape& scrape, const std::string& series) {
  auto it = scrape.find(series);
  return it == scrape.end() ? std::nan("") : it->second;
}

double Percentile(std::vector<double> values, double p) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

// Restarts h1's shadowd with `concurrency` runners (its configuration's round_concurrency).
void SetConcurrency(const BenchLab& lab, int concurrency) {
  const std::string conf = LabDir() + "/h1/shadowd.conf";
  lab.MustRun("sed -i '/^round_concurrency/d' " + conf + " && sed -i '/^\\[shadowd\\]/a round_concurrency = " +
              std::to_string(concurrency) + "' " + conf);
  lab.MustRun(LabScript() + " shadowd h1 stop >/dev/null && " + LabScript() + " shadowd h1 start >/dev/null");
}

struct PhaseResult {
  std::string label;
  std::map<std::string, std::vector<double>> lag;  // per VM, one sample a second
  std::vector<double> waiting;                     // rounds waiting for a runner, one sample a second
  double rounds = 0, bytes = 0, failures = 0;
  double cpu_primary = 0, cpu_shadows = 0;          // seconds of shadowd CPU
  std::map<std::string, double> acks_per_s;        // per guest
  double seconds = 0;
};

PhaseResult RunPhase(const BenchLab& lab, const std::string& label, const std::vector<std::unique_ptr<TestGuest>>& guests,
                     std::chrono::seconds duration) {
  PhaseResult result{.label = label};
  const auto& hosts = lab.hosts();
  auto totals = [&](const Scrape& primary, const char* family) {
    double sum = 0;
    for (const auto& guest : guests) sum += VmValue(primary, family, guest->name());
    return sum;
  };
  auto cpu = [&](const std::vector<Scrape>& scrapes, size_t i) {
    return Value(scrapes[i], "process_cpu_seconds_total");
  };
  std::vector<Scrape> before;
  for (const LabHost& host : hosts) before.push_back(ScrapeMetrics(lab, host));
  std::map<std::string, uint64_t> acks_before;
  for (const auto& guest : guests) acks_before[guest->name()] = lab.Must(guest->WaitForAcks(1, 60s), "ACKs");
  const auto start = std::chrono::steady_clock::now();
  for (auto next = start; std::chrono::steady_clock::now() - start < duration;) {
    next += 1s;
    std::this_thread::sleep_until(next);
    const Scrape now = ScrapeMetrics(lab, hosts[0]);
    for (const auto& guest : guests) {
      result.lag[guest->name()].push_back(VmValue(now, "virt_shadow_replication_lag_seconds", guest->name()));
    }
    result.waiting.push_back(Value(now, "virt_shadow_replication_rounds_waiting"));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<Scrape> after;
  for (const LabHost& host : hosts) after.push_back(ScrapeMetrics(lab, host));
  for (const auto& guest : guests) {
    const uint64_t acks = lab.Must(guest->WaitForAcks(acks_before[guest->name()] + 1, 60s),
                                   guest->name() + " made no progress in phase " + label);
    result.acks_per_s[guest->name()] = (acks - acks_before[guest->name()]) / result.seconds;
  }
  result.rounds = totals(after[0], "virt_shadow_replication_rounds_total") -
                  totals(before[0], "virt_shadow_replication_rounds_total");
  result.bytes = totals(after[0], "virt_shadow_replication_sent_bytes_total") -
                 totals(before[0], "virt_shadow_replication_sent_bytes_total");
  result.failures = totals(after[0], "virt_shadow_replication_round_failures_total") -
                    totals(before[0], "virt_shadow_replication_round_failures_total");
  result.cpu_primary = cpu(after, 0) - cpu(before, 0);
  for (size_t i = 1; i < hosts.size(); ++i) result.cpu_shadows += cpu(after, i) - cpu(before, i);
  return result;
}

// Prints a phase; returns its worst p95 lag.
double Print(const PhaseResult& phase, double interval_s) {
  std::printf("\n== %s: %.0f s\n", phase.label.c_str(), phase.seconds);
  std::printf("%-10s %10s %10s %10s %12s\n", "VM", "lag p50 s", "lag p95 s", "lag max s", "acks/s");
  double worst = 0;
  for (const auto& [vm, samples] : phase.lag) {
    const double p95 = Percentile(samples, 0.95);
    worst = std::max(worst, std::isnan(p95) ? 1e9 : p95);
    std::printf("%-10s %10.1f %10.1f %10.1f %12.1f\n", vm.c_str(), Percentile(samples, 0.5), p95,
                Percentile(samples, 1.0), phase.acks_per_s.at(vm));
  }
  const double mib = phase.bytes / kMiB;
  std::printf("worst p95 lag %.1f s = %.2f x the %.0f s interval (aim <= 2)\n", worst, worst / interval_s, interval_s);
  std::printf("rounds waiting for a runner: mean %.2f, p95 %.0f, max %.0f\n",
              [&] {
                double sum = 0;
                for (double w : phase.waiting) sum += w;
                return phase.waiting.empty() ? 0.0 : sum / phase.waiting.size();
              }(),
              Percentile(phase.waiting, 0.95), Percentile(phase.waiting, 1.0));
  std::printf("rounds applied %.0f (%.2f/s), failed %.0f, sent %.1f MiB\n", phase.rounds, phase.rounds / phase.seconds,
              phase.failures, mib);
  std::printf("shadowd CPU: primary %.1f s, shadow hosts %.1f s; per round %.1f + %.1f ms; per MiB %.1f + %.1f ms\n",
              phase.cpu_primary, phase.cpu_shadows, 1000 * phase.cpu_primary / phase.rounds,
              1000 * phase.cpu_shadows / phase.rounds, 1000 * phase.cpu_primary / mib, 1000 * phase.cpu_shadows / mib);
  return worst;
}

int Run(int guest_count, std::chrono::seconds phase_length, int concurrency, int rate) {
  BenchLab lab({.tool = "many_vms_bench",
                .prefix = "mvb-",
                .min_hosts = 3,
                .on_die = [] {
                  RunCommand(LabScript() + " shape off");
                  RunCommand("sed -i '/^round_concurrency/d' " + LabDir() + "/h1/shadowd.conf && " + LabScript() +
                             " shadowd h1 stop && " + LabScript() + " shadowd h1 start");
                }});
  lab.CleanUp();
  lab.MustRun(LabScript() + " shape 1gbit");
  constexpr double kInterval = 5;
  const std::string policy = PolicyElement("vcpus='1' interval='5s'");
  std::vector<std::unique_ptr<TestGuest>> guests;
  for (int i = 0; i < guest_count; ++i) {
    const std::string name = "mvb-" + std::to_string(i + 1);
    guests.push_back(lab.Must(TestGuest::Start(lab.conn(0), lab.hosts()[0], {},
                                               {.name = name, .disk_mib = 64, .memory_mib = 192,
                                                .kernel_args = "vs.rate=" + std::to_string(rate), .metadata = policy}),
                              "start " + name));
  }
  SetConcurrency(lab, concurrency);
  std::printf("many_vms_bench: %d guests on %s writing %d x 64 KiB records/s each, 5 s interval, 1 Gbit/s links\n",
              guest_count, lab.hosts()[0].name.c_str(), rate);
  // Every guest protected and seeded before anything is measured.
  for (const auto& guest : guests) {
    json last;
    const bool seeded = WaitUntil(
        [&] {
          auto s = RunCliJson(lab.hosts()[0], "status " + guest->name());
          if (!s.ok()) return false;
          last = *s;
          return last["replication"].is_object() && last["replication"]["rounds_applied"].get<uint64_t>() >= 1;
        },
        600s);
    if (!seeded) lab.Die("no first round for " + guest->name() + ": " + last.dump());
  }
  std::this_thread::sleep_for(15s);  // the seeds' backlog of rounds drains before the clock starts

  const std::string measured = "round_concurrency = " + std::to_string(concurrency);
  const double worst = Print(RunPhase(lab, measured, guests, phase_length), kInterval);
  SetConcurrency(lab, 1);
  std::this_thread::sleep_for(15s);  // the restart's burst of rounds
  const double worst_baseline = Print(RunPhase(lab, "baseline: round_concurrency = 1", guests, phase_length), kInterval);

  std::printf("\nworst p95 lag: %.1f s with %d runners, %.1f s with one (ratio %.2f); aim <= %.0f s\n", worst,
              concurrency, worst_baseline, worst / worst_baseline, 2 * kInterval);
  lab.MustRun("sed -i '/^round_concurrency/d' " + LabDir() + "/h1/shadowd.conf");
  lab.MustRun(LabScript() + " shadowd h1 stop >/dev/null && " + LabScript() + " shadowd h1 start >/dev/null");
  guests.clear();
  lab.CleanUp();
  lab.MustRun(LabScript() + " shape off");
  return 0;
}

}  // namespace
}  // namespace vs::lab

int main(int argc, char** argv) {
  int guests = 8, minutes = 10, concurrency = 4, rate = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--guests") {
      guests = next();
    } else if (arg == "--minutes") {
      minutes = next();
    } else if (arg == "--concurrency") {
      concurrency = next();
    } else if (arg == "--rate") {
      rate = next();
    } else {
      guests = 0;
    }
    if (guests < 1 || minutes < 1 || concurrency < 1 || rate < 1) {
      std::fprintf(stderr, "usage: many_vms_bench [--guests N (8)] [--minutes M per phase (10)] [--concurrency C (4)] "
                           "[--rate records/s per guest (5)]   (needs the lab up and installed)\n");
      return 2;
    }
  }
  return vs::lab::Run(guests, std::chrono::minutes(minutes), concurrency, rate);
}
