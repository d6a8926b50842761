// hang_study: why a guest moved by virt-shadow once stopped making progress, measured side by side (issue 10).
// Run by hand with the lab up and shadowd installed:
//   scripts/lab.sh up 3 && scripts/lab.sh install build && build/bench/hang_study [--moves N] [--hold S]
//
// Two guests of the same kind run through the whole study (128 MiB disk, 256 MiB RAM, 10 fsync'd records/s,
// a 32 MiB memory area dirtied at 8 MiB/s: the guest of the lab tests): "hs-vs" is protected by virt-shadow,
// "hs-plain" is not. Every round moves each guest twice, four variants interleaved so that they share the
// machine's load and noise:
//   A  virt-shadow switchover, precopy held S seconds first (what the planner gave: 3.8-8.4 s in the lab)
//   B  virt-shadow switchover, postcopy at once (--precopy-hold 0, the default since issue 10)
//   C  virsh migrate --live --p2p --copy-storage-all --postcopy, switched as soon as libvirt accepts
//   D  the same, switched after holding precopy S seconds
// After each move the guest must acknowledge 3 new records within 30 s on its new host, with one boot id and
// no kernel trouble (oops, hung task, soft lockup, RCU stall) in its serial log. A guest that fails is reported
// with its serial log and replaced by a fresh one (never retried as if nothing happened). For each move the
// study also records whether libvirt accepted the postcopy switch or precopy completed first, and the downtime.
// The table at the end gives, per variant: moves, hangs (no progress), kernel trouble, precopy completions and
// the median downtime.
//
// Guests are named hs-*; a run removes any left by an interrupted one first, and its own at the end.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

#include "bench/bench_lab.h"
#include "images/oracle/serial_log.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr char kWorkload[] = "vs.rate=10 vs.dirty=32 vs.dirtyrate=8";

enum Variant { kSwitchoverHeld, kSwitchoverAtOnce, kPlainAtOnce, kPlainHeld, kVariants };
constexpr const char* kVariantName[kVariants] = {"A switchover, precopy held", "B switchover, postcopy at once",
                                                 "C plain postcopy at once", "D plain postcopy, precopy held"};

struct Tally {
  int moves = 0, hangs = 0, kernel_trouble = 0, precopy_completions = 0, failed_moves = 0;
  std::vector<double> downtimes_ms;
};

// One guest and where it runs.
struct Subject {
  std::string name;
  bool protected_by_virt_shadow = false;
  size_t at = 0;
  int generation = 0;  // a hung guest is replaced by hs-...-<generation+1>
  std::unique_ptr<TestGuest> guest;
};

std::string NameOf(const Subject& s) { return s.name + "-" + std::to_string(s.generation); }

void WaitProtected(BenchLab& lab, Subject& s) {
  json last;
  const bool ok = WaitUntil(
      [&] {
        auto status = RunCliJson(lab.hosts()[s.at], "status " + NameOf(s));
        if (!status.ok()) return false;
        last = *status;
        return last["state"] == "Protected" && last["replication"].is_object() &&
               last["replication"]["rounds_applied"].get<uint64_t>() >= 1;
      },
      240s);
  if (!ok) lab.Die(NameOf(s) + " was not protected and replicated on " + lab.hosts()[s.at].name + ": " + last.dump());
}

void StartSubject(BenchLab& lab, Subject& s) {
  s.guest.reset();
  ++s.generation;
  s.at = 0;
  std::vector<LabHost> also_on;
  if (!s.protected_by_virt_shadow) also_on.assign(lab.hosts().begin() + 1, lab.hosts().end());  // --copy-storage-all
  s.guest = lab.Must(TestGuest::Start(lab.conn(0), lab.hosts()[0], also_on,
                                      {.name = NameOf(s), .disk_mib = 128, .memory_mib = 256, .kernel_args = kWorkload,
                                       .metadata = s.protected_by_virt_shadow ? PolicyElement("vcpus='1' interval='2s'")
                                                                              : ""}),
                     "starting " + NameOf(s));
  lab.Must(s.guest->WaitForAcks(5, 180s), NameOf(s) + " boot");
  if (s.protected_by_virt_shadow) WaitProtected(lab, s);
}

// "" when the guest keeps going; else what is wrong.
std::string Trouble(const TestGuest& guest, bool* hung, bool* kernel) {
  const size_t acked = oracle::ParseSerialLog(guest.SerialLog()).acks.size();
  *hung = !guest.WaitForAcks(acked + 3, 30s).ok();
  const oracle::SerialLog log = oracle::ParseSerialLog(guest.SerialLog());
  *kernel = !log.oops_lines.empty() || log.boot_ids.size() > 1;
  std::string trouble;
  if (*hung) trouble += "NO PROGRESS (no new ACK within 30 s); ";
  if (log.boot_ids.size() > 1) trouble += "REBOOTED; ";
  if (!log.oops_lines.empty()) trouble += "KERNEL: " + log.oops_lines.front() + "; ";
  if (!trouble.empty()) trouble += "serial log " + guest.serial_log_path();
  return trouble;
}

// Moves `s` by `variant`; fills the tally; replaces a guest that stops making progress.
void MoveOnce(BenchLab& lab, Subject& s, Variant variant, int hold_s, int round, Tally& tally) {
  const size_t from = s.at;
  size_t to = (from + 1) % lab.hosts().size();
  double downtime = NAN;
  bool postcopy = false;
  std::string detail;
  if (s.protected_by_virt_shadow) {
    const int hold = variant == kSwitchoverHeld ? hold_s : 0;
    auto reply = RunCliJson(lab.hosts()[from], "--timeout 300 switchover " + NameOf(s) +
                                                   " --deadline 120 --precopy-hold " + std::to_string(hold));
    if (!reply.ok()) {
      ++tally.failed_moves;
      std::printf("round %2d  %-32s %s: the switchover failed: %s\n", round, kVariantName[variant], NameOf(s).c_str(),
                  reply.status().ToString().c_str());
      return;
    }
    const json& record = (*reply)["record"];
    if (record["phase"] != "SWITCHOVER_PHASE_DONE") {
      ++tally.failed_moves;
      std::printf("round %2d  %-32s %s: ended %s: %s\n", round, kVariantName[variant], NameOf(s).c_str(),
                  record["phase"].get<std::string>().c_str(), record.dump().c_str());
      if (record["phase"] != "SWITCHOVER_PHASE_GUEST_FAILED") return;
    }
    for (size_t i = 0; i < lab.hosts().size(); ++i) {
      if (lab.hosts()[i].name == record["target_host"]) to = i;
    }
    downtime = RecordField(record, "downtime_ms");
    postcopy = RecordField(record, "postcopy_switched") > 0;
    detail = "migration " + std::to_string(int(RecordField(record, "migration_ms"))) + " ms, guest check: " +
             record.value("guest_check", std::string("-"));
  } else {
    virt::MigrationOptions options;
    options.postcopy = true;
    options.copy_storage_all = true;
    options.move_definition = true;
    options.timeout = 600s;
    options.tls = UsesTls(lab.hosts()[to].uri);
    const Duration hold = variant == kPlainHeld ? Duration(std::chrono::seconds(hold_s)) : Duration::zero();
    options.switch_to_postcopy = [hold](Duration since_start) { return since_start >= hold; };
    auto result = lab.conn(from).MigrateLive(NameOf(s), lab.hosts()[to].uri, options);
    if (!result.ok()) {
      ++tally.failed_moves;
      std::printf("round %2d  %-32s %s: the migration failed: %s\n", round, kVariantName[variant], NameOf(s).c_str(),
                  result.status().ToString().c_str());
      return;
    }
    downtime = result->downtime_ms ? double(*result->downtime_ms) : NAN;
    postcopy = result->postcopy_started_after.has_value();
    detail = "migration " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(result->elapsed).count()) +
             " ms";
  }
  s.at = to;
  s.guest->MovedTo(lab.conn(to));
  ++tally.moves;
  if (!postcopy) ++tally.precopy_completions;
  if (!std::isnan(downtime)) tally.downtimes_ms.push_back(downtime);
  bool hung = false, kernel = false;
  const std::string trouble = Trouble(*s.guest, &hung, &kernel);
  if (hung) ++tally.hangs;
  if (kernel) ++tally.kernel_trouble;
  std::printf("round %2d  %-32s %s %s->%s  %s  downtime %5.0f ms  %s  %s\n", round, kVariantName[variant],
              NameOf(s).c_str(), lab.hosts()[from].name.c_str(), lab.hosts()[to].name.c_str(),
              postcopy ? "postcopy switch " : "PRECOPY COMPLETED", downtime, detail.c_str(),
              trouble.empty() ? "guest ok" : trouble.c_str());
  std::fflush(stdout);
  if (!trouble.empty()) {
    (void)lab.conn(s.at).DestroyDomain(NameOf(s));
    (void)lab.conn(s.at).UndefineDomain(NameOf(s));
    StartSubject(lab, s);
  } else if (s.protected_by_virt_shadow) {
    WaitProtected(lab, s);  // its new shadow, replicated, before the next move
  }
}

int Run(int rounds, int hold_s) {
  BenchLab lab({.tool = "hang_study", .prefix = "hs-", .min_hosts = 3});
  lab.CleanUp();
  Subject virt_shadow{.name = "hs-vs", .protected_by_virt_shadow = true};
  Subject plain{.name = "hs-plain"};
  StartSubject(lab, virt_shadow);
  StartSubject(lab, plain);
  std::map<Variant, Tally> tallies;
  for (int round = 1; round <= rounds; ++round) {
    // Alternate which variant of each pair goes first, so that neither always follows the other.
    const bool flip = round % 2 == 0;
    for (Variant v : {flip ? kSwitchoverAtOnce : kSwitchoverHeld, flip ? kPlainHeld : kPlainAtOnce,
                      flip ? kSwitchoverHeld : kSwitchoverAtOnce, flip ? kPlainAtOnce : kPlainHeld}) {
      Subject& s = v == kSwitchoverHeld || v == kSwitchoverAtOnce ? virt_shadow : plain;
      MoveOnce(lab, s, v, hold_s, round, tallies[v]);
    }
  }
  const std::string header = "variant (hold " + std::to_string(hold_s) + " s)";
  std::printf("\n%-34s %6s %6s %8s %10s %8s %10s\n", header.c_str(), "moves", "hangs", "kernel", "precopy", "failed",
              "downtime");
  for (int v = 0; v < kVariants; ++v) {
    const Tally& t = tallies[Variant(v)];
    std::printf("%-34s %6d %6d %8d %10d %8d %7.0f ms\n", kVariantName[v], t.moves, t.hangs, t.kernel_trouble,
                t.precopy_completions, t.failed_moves, Median(t.downtimes_ms));
  }
  std::printf("(hangs: no new acknowledged record within 30 s after the move; kernel: oops, hang report or reboot in "
              "the serial log; precopy: migrations that completed before the postcopy switch; downtime: median)\n");
  lab.CleanUp();
  return 0;
}

}  // namespace
}  // namespace vs::lab

int main(int argc, char** argv) {
  int rounds = 10, hold = 6;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--moves" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--hold" && i + 1 < argc) {
      hold = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: hang_study [--moves N (moves per variant, default 10)] [--hold S (default 6)]\n");
      return 2;
    }
  }
  if (rounds < 1 || hold < 0) {
    std::fprintf(stderr, "hang_study: --moves must be >= 1 and --hold >= 0\n");
    return 2;
  }
  return vs::lab::Run(rounds, hold);
}
