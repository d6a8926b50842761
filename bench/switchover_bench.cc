// switchover_bench: what the live switchover (issue 5) costs against plain libvirt live migration, on the real
// lab, all figures from the same run. Run by hand with the lab up and a shadowd with the switchover installed:
//   scripts/lab.sh up 3 && scripts/lab.sh install build && build/bench/switchover_bench [--reps N] [--deadline S]
//
// The guest: 256 MiB of RAM, a 1 GiB qcow2 disk of which 768 MiB hold data (written before it boots), writing
// 20 fsync'd records/s and dirtying a 32 MiB memory area at 8 MiB/s; lab links shaped to 1 Gbit/s (tc). Each
// repetition moves three such guests from h1, one per method, side by side (the baselines go to the host the
// switchover chose, so that all three cross the same link):
//   a) virt-shadow: the guest is protected (a shadow on another host, first replication round applied), then
//      `virt-shadow switchover VM --deadline S` on h1; from its record: request -> running on the target
//      (postcopy switch accepted), downtime (libvirt's job stats), bytes after the request (final round + disk
//      mirror + memory), request -> Done.
//   b) `virsh migrate --live --copy-storage-all` (virt::Hypervisor::MigrateLive, untagged guest, empty images
//      pre-created on the destination): running on the target = migration complete; downtime; disk + memory.
//   c) the same with --postcopy, switching as soon as libvirt accepts: running on the target = the switch.
//   d) virt-shadow, warmed up: a protected guest gets an AWS rebalance recommendation (an early warning, from the
//      fake metadata service every lab host polls every second), its switchover starts and holds its migration in
//      precopy under the warm-up cap for --warm-seconds (default 20); then the spot instance-action (the notice).
//      Times count from serving the instance-action, so they include up to one poll interval (1 s) before shadowd
//      sees it; the aim for the source host free: at most a fifth of c)'s time to completion.
// After each move the guest must keep acknowledging records on the target, with one boot id and no kernel
// trouble in its serial log; a reboot, an oops or a stall is printed with the repetition (never retried) and
// makes the exit status 1. Then: medians per method, ratios virt-shadow / baseline, and the largest RAM + dirty
// disk one cold VM can move within a 30 s deadline (switchover::LargestFittingTransfer) at the bandwidth of b)
// measured here: (disk + memory bytes) / migration time, which includes starting the destination QEMU, so it
// errs low.
//
// Guests are named swb-*; a run removes any swb-* domains and images left by an interrupted one first, and its
// own at the end (or when it fails), then unshapes the links. Serial logs stay in the lab's logs/ folder.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>
#include <vector>

#include "bench/bench_lab.h"
#include "images/oracle/serial_log.h"
#include "shadowd/switchover/planner.h"
#include "tests/lab/lab_env.h"
#include "tests/unit/notice/fake_cloud.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kDiskMiB = 1024;
constexpr uint64_t kPrefillMiB = 768;
constexpr char kWorkload[] = "vs.rate=20 vs.dirty=32 vs.dirtyrate=8";

double Ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double OrNan(const std::optional<uint64_t>& v) { return v ? double(*v) : NAN; }

// One move of one guest.
struct Move {
  double to_running_ms = NAN;   // request -> the guest runs on the target
  double downtime_ms = NAN;
  double bytes_after_request = NAN;
  double done_ms = NAN;         // request -> the move is over
  double source_free_ms = NAN;  // request -> the source host is no longer needed (the migration ended)
  std::string detail;           // method-specific figures
  std::string trouble;          // reboot, oops, stall, fallback: empty when the guest came through fine
};

enum Method { kVirtShadow, kPrecopy, kPostcopy, kWarm, kMethods };
constexpr const char* kMethodName[kMethods] = {"virt-shadow switchover", "migrate --copy-storage-all",
                                               "migrate --copy-storage-all --postcopy",
                                               "virt-shadow, warmed up (from the notice)"};
// Where the lab hosts' shadowd poll the cloud metadata services (scripts/lab.sh: the bridge's root address).
constexpr char kFakeCloudAddress[] = "10.77.0.1";
constexpr uint16_t kFakeCloudPort = 18169;

std::unique_ptr<TestGuest> StartGuest(BenchLab& lab, const std::string& name, const std::string& metadata,
                                      const std::vector<LabHost>& also_on) {
  auto guest = lab.Must(TestGuest::Define(lab.conn(0), lab.hosts()[0], also_on,
                                          {.name = name, .disk_mib = kDiskMiB, .memory_mib = 256,
                                           .kernel_args = kWorkload, .metadata = metadata}),
                        "define " + name);
  lab.MustRun("qemu-io -f qcow2 -c 'write -P 0x11 0 " + std::to_string(kPrefillMiB) + "M' " +
              HostPath(lab.hosts()[0], guest->disk_path()) + " >/dev/null");
  lab.Must(lab.conn(0).StartDomain(name), "start " + name);
  lab.Must(guest->WaitForAcks(3, 180s).status(), name + " boot");
  return guest;
}

// What went wrong with the guest across the move: it must keep acknowledging records, from one boot, with no
// kernel trouble. Empty when nothing did.
std::string GuestTrouble(const TestGuest& guest) {
  std::string trouble;
  const size_t acked = oracle::ParseSerialLog(guest.SerialLog()).acks.size();
  if (!guest.WaitForAcks(acked + 3, 60s).ok()) trouble += "STALLED (no new ACK within 60 s); ";
  const oracle::SerialLog log = oracle::ParseSerialLog(guest.SerialLog());
  if (log.boot_ids.size() > 1) trouble += "REBOOTED (" + std::to_string(log.boot_ids.size()) + " boot ids); ";
  if (!log.oops_lines.empty()) trouble += "KERNEL TROUBLE: " + log.oops_lines.front() + "; ";
  if (!trouble.empty()) trouble += "serial log " + guest.serial_log_path();
  return trouble;
}

size_t IndexOf(BenchLab& lab, const std::string& host) {
  for (size_t i = 0; i < lab.hosts().size(); ++i) {
    if (lab.hosts()[i].name == host) return i;
  }
  lab.Die("the switchover record names an unknown host " + host);
}

void WaitProtected(BenchLab& lab, const std::string& name) {
  json last;
  const bool ok = WaitUntil(
      [&] {
        auto s = RunCliJson(lab.hosts()[0], "status " + name);
        if (!s.ok()) return false;
        last = *s;
        return last["state"] == "Protected" && last["replication"].is_object() &&
               last["replication"]["rounds_applied"].get<uint64_t>() >= 1;
      },
      600s);
  if (!ok) lab.Die(name + " is not protected with a first round applied: " + last.dump());
}

// h1's switchover record of `name` requested at or after `since_ms` in one of `phases`; dies after `timeout`.
json WaitPhase(BenchLab& lab, const std::string& name, int64_t since_ms, const std::vector<std::string>& phases,
               std::chrono::seconds timeout) {
  json found, last;
  const bool seen = WaitUntil(
      [&] {
        auto list = RunCliJson(lab.hosts()[0], "switchovers");
        if (!list.ok() || !(*list)["records"].is_array()) return false;
        last = *list;
        for (const json& record : (*list)["records"]) {
          if (record["vm_name"] == name && RecordField(record, "requested_unix_ms") >= since_ms &&
              std::find(phases.begin(), phases.end(), record["phase"].get<std::string>()) != phases.end()) {
            found = record;
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!seen) lab.Die("no switchover of " + name + " reached " + phases.front() + ": " + last.dump());
  return found;
}

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

// a) Protect the guest, switch it over from h1 (d: warmed up by `cloud`'s early warning, then its notice); returns
// the move and the target's index.
Move SwitchOver(BenchLab& lab, const std::string& name, int deadline_s, size_t& target,
                notice::test_support::FakeCloud* cloud = nullptr, std::chrono::seconds warm = 0s) {
  auto guest = StartGuest(lab, name, PolicyElement("vcpus='1' interval='5s'"), {});
  WaitProtected(lab, name);
  json record;
  double requested = 0;
  if (cloud == nullptr) {
    auto reply =
        RunCliJson(lab.hosts()[0], "--timeout 600 switchover " + name + " --deadline " + std::to_string(deadline_s));
    if (!reply.ok()) lab.Die("switchover " + name + ": " + reply.status().ToString());
    record = (*reply)["record"];
    requested = RecordField(record, "requested_unix_ms");
  } else {
    const std::string h1 = lab.hosts()[0].name;
    const int64_t warned = NowMs();
    cloud->SetAwsRebalance(h1, std::chrono::system_clock::now());
    const json held = WaitPhase(lab, name, warned, {"SWITCHOVER_PHASE_MIGRATING"}, 120s);
    if (!held.value("warm", false)) lab.Die("the early warning's switchover of " + name + " is not warm: " + held.dump());
    std::this_thread::sleep_for(warm);
    requested = static_cast<double>(NowMs());
    cloud->SetAwsInstanceAction(h1, "terminate", std::chrono::system_clock::now() + std::chrono::seconds(deadline_s));
    record = WaitPhase(lab, name, warned,
                       {"SWITCHOVER_PHASE_DONE", "SWITCHOVER_PHASE_FAILED", "SWITCHOVER_PHASE_GUEST_FAILED"}, 300s);
    cloud->ClearAll(h1);
    CommandResult undrain = RunCli(lab.hosts()[0], "undrain " + h1);
    if (undrain.exit_code != 0) lab.Die("undrain " + h1 + ": " + undrain.output);
  }
  if (record["phase"] != "SWITCHOVER_PHASE_DONE") lab.Die("switchover " + name + " did not finish: " + record.dump());
  target = IndexOf(lab, record["target_host"]);
  guest->MovedTo(lab.conn(target));

  Move move;
  move.to_running_ms = RecordField(record, "running_on_target_unix_ms") - requested;
  move.done_ms = RecordField(record, "finished_unix_ms") - requested;
  move.source_free_ms = RecordField(record, "source_free_unix_ms") - requested;
  move.downtime_ms = record.contains("downtime_ms") ? RecordField(record, "downtime_ms") : NAN;
  const double final_round = RecordField(record, "final_round_bytes");
  const double disk = RecordField(record, "migrated_disk_bytes"), memory = RecordField(record, "migrated_memory_bytes");
  move.bytes_after_request = final_round + disk + memory;
  char detail[256];
  std::snprintf(detail, sizeof detail, "final round %.1f + disk mirror %.1f + memory %.1f MiB, precopy hold %.0f ms%s",
                final_round / kMiB, disk / kMiB, memory / kMiB, RecordField(record, "precopy_planned_ms"),
                cloud ? ", bytes since the warning" : "");
  move.detail = detail;
  move.trouble = GuestTrouble(*guest);
  if (record.value("fallback", false)) move.trouble += "FALLBACK (--copy-storage-all): " + record.value("check_result", "");

  guest.reset();  // destroyed and undefined on the target; its new shadow goes after the grace time
  WaitUntil([&] { return !RunCliJson(lab.hosts()[target], "status " + name).ok(); }, 120s);
  WaitUntil([&] {
    for (size_t i = 0; i < lab.hosts().size(); ++i) {
      auto names = lab.conn(i).ListDomainNames();
      if (names.ok() && std::count(names->begin(), names->end(), name + "-shadow") > 0) return false;
    }
    return true;
  }, 120s);
  lab.RemoveImages(name + ".");
  return move;
}

// b), c) An untagged guest, migrated from h1 to `target` by libvirt.
Move Migrate(BenchLab& lab, const std::string& name, size_t target, bool postcopy) {
  auto guest = StartGuest(lab, name, "", {lab.hosts()[target]});
  virt::MigrationOptions options;
  options.postcopy = postcopy;
  options.copy_storage_all = true;
  options.timeout = 600s;
  options.tls = UsesTls(lab.hosts()[target].uri);
  auto result = lab.Must(lab.conn(0).MigrateLive(name, lab.hosts()[target].uri, options),
                         std::string(kMethodName[postcopy ? kPostcopy : kPrecopy]) + " of " + name);
  guest->MovedTo(lab.conn(target));

  Move move;
  move.done_ms = Ms(result.elapsed);
  move.source_free_ms = move.done_ms;  // libvirt's migration returns once the source is no longer needed
  if (postcopy) {
    if (!result.postcopy_started_after) lab.Die(name + ": libvirt never accepted the postcopy switch");
    move.to_running_ms = Ms(*result.postcopy_started_after);
  } else {
    move.to_running_ms = move.done_ms;
  }
  move.downtime_ms = OrNan(result.downtime_ms);
  const double disk = OrNan(result.disk_bytes_processed), memory = OrNan(result.memory_bytes_processed);
  move.bytes_after_request = disk + memory;
  char detail[256];
  std::snprintf(detail, sizeof detail, "disk %.1f + memory %.1f MiB", disk / kMiB, memory / kMiB);
  move.detail = detail;
  if (postcopy && result.postcopy_page_requests) {
    move.detail += ", " + std::to_string(*result.postcopy_page_requests) + " postcopy page requests";
  }
  move.trouble = GuestTrouble(*guest);
  guest.reset();
  return move;
}

void PrintMove(int rep, Method method, const std::string& route, const Move& m) {
  std::printf("rep %d  %-38s %s  running %7.0f ms  downtime %6.0f ms  after request %7.1f MiB  source free %7.0f ms  "
              "done %7.0f ms  (%s)  %s\n",
              rep, kMethodName[method], route.c_str(), m.to_running_ms, m.downtime_ms, m.bytes_after_request / kMiB,
              m.source_free_ms, m.done_ms, m.detail.c_str(), m.trouble.empty() ? "guest ok" : m.trouble.c_str());
  std::fflush(stdout);
}

int Run(int reps, int deadline_s, std::chrono::seconds warm) {
  BenchLab lab({.tool = "switchover_bench",
                .prefix = "swb-",
                .min_hosts = 3,
                .on_die = [] { RunCommand(LabScript() + " shape off"); }});
  CommandResult help = RunCli(lab.hosts()[0], "switchovers");
  if (help.exit_code != 0) lab.Die("h1's shadowd does not answer `switchovers` (not installed from a build with the "
                                   "switchover? scripts/lab.sh install BUILD): " + help.output);
  lab.CleanUp();
  lab.MustRun(LabScript() + " shape 1gbit");
  auto cloud = lab.Must(notice::test_support::FakeCloud::Start(kFakeCloudAddress, kFakeCloudPort),
                        "the fake metadata service on " + std::string(kFakeCloudAddress));

  std::vector<Move> moves[kMethods];
  bool troubled = false;
  for (int rep = 1; rep <= reps; ++rep) {
    size_t target = 1;
    const std::string suffix = std::to_string(rep);
    moves[kVirtShadow].push_back(SwitchOver(lab, "swb-vs-" + suffix, deadline_s, target));
    const std::string route = lab.hosts()[0].name + "->" + lab.hosts()[target].name;
    PrintMove(rep, kVirtShadow, route, moves[kVirtShadow].back());
    moves[kPrecopy].push_back(Migrate(lab, "swb-pre-" + suffix, target, false));
    PrintMove(rep, kPrecopy, route, moves[kPrecopy].back());
    moves[kPostcopy].push_back(Migrate(lab, "swb-post-" + suffix, target, true));
    PrintMove(rep, kPostcopy, route, moves[kPostcopy].back());
    if (warm.count() > 0) {
      size_t warm_target = 1;
      moves[kWarm].push_back(SwitchOver(lab, "swb-warm-" + suffix, deadline_s, warm_target, cloud.get(), warm));
      PrintMove(rep, kWarm, lab.hosts()[0].name + "->" + lab.hosts()[warm_target].name, moves[kWarm].back());
    }
    for (const auto& list : moves) troubled |= !list.back().trouble.empty();
  }
  lab.CleanUp();
  lab.MustRun(LabScript() + " shape off");

  auto median = [&](Method method, double Move::*field) {
    std::vector<double> values;
    for (const Move& m : moves[method]) values.push_back(m.*field);
    return Median(values);
  };
  std::printf("\nswitchover_bench: 256 MiB RAM, 1 GiB disk (%llu MiB data), \"%s\", links 1 Gbit/s, deadline %d s, "
              "%d repetitions (medians)\n\n",
              static_cast<unsigned long long>(kPrefillMiB), kWorkload, deadline_s, reps);
  std::printf("%-40s %12s %12s %16s %15s %12s\n", "method", "running ms", "downtime ms", "MiB after req.",
              "source free ms", "done ms");
  for (int m = 0; m < kMethods; ++m) {
    const Method method = static_cast<Method>(m);
    std::printf("%-40s %12.0f %12.0f %16.1f %15.0f %12.0f\n", kMethodName[m], median(method, &Move::to_running_ms),
                median(method, &Move::downtime_ms), median(method, &Move::bytes_after_request) / kMiB,
                median(method, &Move::source_free_ms), median(method, &Move::done_ms));
  }
  for (Method ours : {kVirtShadow, kWarm}) {
    if (moves[ours].empty()) continue;
    std::printf("\n%-40s %12s %12s %16s %15s\n", (std::string(kMethodName[ours]) + " /").c_str(), "running",
                "downtime", "bytes after req.", "source free");
    for (Method baseline : {kPrecopy, kPostcopy}) {
      auto ratio = [&](double Move::*field) { return median(ours, field) / median(baseline, field); };
      std::printf("%-40s %12.3f %12.3f %16.3f %15.3f\n", kMethodName[baseline], ratio(&Move::to_running_ms),
                  ratio(&Move::downtime_ms), ratio(&Move::bytes_after_request), ratio(&Move::source_free_ms));
    }
  }
  std::printf("(aims: downtime at most the postcopy migration's; source free at most 0.5 of its time to completion, "
              "0.2 warmed up)\n");

  // e) The bandwidth of b) in this run, and what fits a 30 s deadline at it.
  std::vector<double> rates;
  for (const Move& m : moves[kPrecopy]) rates.push_back(m.bytes_after_request / (m.done_ms / 1000));
  const double bandwidth = Median(rates);
  switchover::LinkFacts link{.bandwidth_bytes_per_s = std::isnan(bandwidth) ? 0 : bandwidth,
                             .fixed_start_cost = 1500ms,
                             .snapshot_cost = 150ms,
                             .safety_margin = 0.2};
  const uint64_t fits = lab.Must(switchover::LargestFittingTransfer(link, 30s), "LargestFittingTransfer");
  std::printf("\nbandwidth of migrate --copy-storage-all here: %.1f MiB/s (%.0f Mbit/s); largest RAM + dirty disk "
              "that fits a 30 s deadline (start 1.5 s, snapshot 0.15 s, margin 0.2): %.0f MiB\n",
              bandwidth / kMiB, bandwidth * 8 / 1e6, double(fits) / kMiB);
  if (troubled) std::printf("\nGUEST TROUBLE in at least one repetition: see the lines above\n");
  return troubled ? 1 : 0;
}

}  // namespace
}  // namespace vs::lab

int main(int argc, char** argv) {
  int reps = 3, deadline_s = 30, warm_s = 20;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--deadline" && i + 1 < argc) {
      deadline_s = std::clamp(std::atoi(argv[++i]), 1, 3600);
    } else if (arg == "--warm-seconds" && i + 1 < argc) {
      warm_s = std::clamp(std::atoi(argv[++i]), 0, 600);
    } else {
      std::fprintf(stderr, "usage: switchover_bench [--reps N] [--deadline SECONDS] [--warm-seconds S (20; 0 skips "
                           "the warmed-up case)]   (needs the lab up and installed)\n");
      return 2;
    }
  }
  return vs::lab::Run(reps, deadline_s, std::chrono::seconds(warm_s));
}
