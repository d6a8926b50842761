// replication_bench: what dirty-bitmap replication costs and saves, on the real lab, each figure next to its
// baseline from the same run. Run by hand with the lab up and installed:
//   scripts/lab.sh up 3 && scripts/lab.sh install build && build/bench/replication_bench [--reps N]
//
// The lab links are shaped to 1 Gbit/s (tc) so that bytes cost what they cost on a real network.
//   1. Rounds on a 1 GiB disk (filled with data) after 512 KiB (8 runs of 64 KiB), 1 %, 10 %, 50 % of it was
//      rewritten (through QEMU's HMP qemu-io, runs spread over the disk): bytes sent / dirty bytes, the round's
//      duration and throughput, against the full copy over NBD (the seed round, same path and code) and `virsh
//      migrate --copy-storage-all` of the same disk (bytes, time, MiB/s of its mirror); then where each round's
//      time went (its recorded steps). The seed's time against --copy-storage-all's.
//   2. Guest impact: one guest's write throughput (acknowledged 64 KiB records/s, fsync'd, over 20 s) tagged with 1 s
//      rounds against the same guest untagged, tagged and untagged live in N alternating pairs (--guest-pairs,
//      default 5): each pair's ratio, their median and spread.
//   3. The resync after QEMU is killed with SIGKILL (1 % rewritten first): bytes sent against the disk size.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "bench/bench_lab.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kDisk = 1024 * kMiB;

// Waits until `name` is protected and its first round applied.
void WaitSeeded(const BenchLab& lab, const std::string& name) {
  json last;
  bool ok = WaitUntil(
      [&] {
        auto s = RunCliJson(lab.hosts()[0], "status " + name);
        if (!s.ok()) return false;
        last = *s;
        return last["replication"].is_object() && last["replication"]["rounds_applied"].get<uint64_t>() >= 1;
      },
      600s);
  if (!ok) lab.Die("no first round for " + name + ": " + last.dump());
}

json Sync(const BenchLab& lab, const std::string& name) {
  return lab.Must(RunCliJson(lab.hosts()[0], "--timeout 600 sync " + name), "sync " + name)["round"];
}

// Rewrites `runs` runs of `run_bytes` each, spread evenly over the disk, through QEMU (so that the dirty bitmap
// sees it), with a fresh pattern. Returns the bytes rewritten.
uint64_t DirtyRuns(const BenchLab& lab, const std::string& name, uint64_t runs, uint64_t run_bytes, int pattern) {
  const uint64_t segment = kDisk / runs;
  for (uint64_t r = 0; r < runs; ++r) {
    char cmd[256];
    std::snprintf(cmd, sizeof cmd, "write -P 0x%02x %llu %llu", pattern & 0xff,
                  static_cast<unsigned long long>(r * segment + 4 * kMiB), static_cast<unsigned long long>(run_bytes));
    // HMP answers an error as text with exit status 0: any output is a failure.
    CommandResult hmp = RunCommand("virsh -q -c " + lab.hosts()[0].uri + " qemu-monitor-command " + name +
                                   " --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"" + cmd + "\"'");
    if (hmp.exit_code != 0 || hmp.output.find_first_not_of(" \n") != std::string::npos) {
      lab.Die("HMP qemu-io: " + hmp.output);
    }
  }
  return runs * run_bytes;
}

// Acknowledged records per second over `window`, counted from the serial log.
double AckRate(const BenchLab& lab, const TestGuest& guest, std::chrono::seconds window) {
  const uint64_t before = lab.Must(guest.WaitForAcks(1, 120s), "first ACK");
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  const uint64_t after = lab.Must(guest.WaitForAcks(1, 10s), "ACKs");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return (after - before) / seconds;
}

std::unique_ptr<TestGuest> StartGuest(BenchLab& lab, TestGuest::Options options, bool prefill) {
  auto guest = lab.Must(TestGuest::Define(lab.conn(0), lab.hosts()[0], {}, options), "define " + options.name);
  if (prefill) lab.MustRun("qemu-io -f qcow2 -c 'write -P 0x11 0 " + std::to_string(options.disk_mib) + "M' " +
                           HostPath(lab.hosts()[0], guest->disk_path()) + " >/dev/null");
  lab.Must(lab.conn(0).StartDomain(options.name), "start " + options.name);
  return guest;
}

void WaitReleased(BenchLab& lab, const std::string& name) {
  // The shadow outlives its VM by the grace time; the next guest needs the capacity.
  WaitUntil([&] { return RunCliJson(lab.hosts()[0], "status " + name).status().code() == Code::kInternal; }, 120s);
}

int Run(int reps, int guest_pairs) {
  // Its TestGuests remove themselves on the way through; the prefix makes a failed run remove what it left too.
  BenchLab lab({.tool = "replication_bench",
                .prefix = "rb-",
                .min_hosts = 3,
                .on_die = [] { RunCommand(LabScript() + " shape off"); }});
  lab.MustRun(LabScript() + " shape 1gbit");
  const std::string interval_1h = PolicyElement("vcpus='1' interval='1h'");

  // ---- 2. Guest impact: one writing guest, tagged with 1 s rounds and untagged in turn (live, through its metadata),
  // in alternating order pair by pair so that a drift of the machine hits both sides alike.
  std::vector<double> plain_rates, replicated_rates;
  if (guest_pairs > 0) {
    auto writer = StartGuest(lab, {.name = "rb-tput", .disk_mib = 256, .kernel_args = "vs.rate=1000"}, false);
    const std::string uri = "--uri http://virt-shadow.org/xmlns/policy/1.0";
    auto tag = [&](bool on) {
      const std::string args = on ? "--key shadow --set \"<policy vcpus='1' interval='1s'/>\"" : "--remove";
      lab.MustRun("virsh -q -c " + lab.hosts()[0].uri + " metadata rb-tput " + uri + " " + args + " --live");
      if (on) {
        WaitSeeded(lab, "rb-tput");
      } else {
        WaitReleased(lab, "rb-tput");
      }
    };
    for (int pair = 0; pair < guest_pairs; ++pair) {
      for (bool replicated : {pair % 2 == 1, pair % 2 == 0}) {
        if (replicated) tag(true);
        (replicated ? replicated_rates : plain_rates).push_back(AckRate(lab, *writer, 20s));
        if (replicated) tag(false);
      }
    }
  }

  // ---- 1. Rounds on a 1 GiB disk full of data.
  auto guest = StartGuest(lab, {.name = "rb-rounds", .disk_mib = 1024, .kernel_args = "vs.rate=1", .metadata = interval_1h},
                          true);
  WaitSeeded(lab, "rb-rounds");
  json status = lab.Must(RunCliJson(lab.hosts()[0], "status rb-rounds"), "status");
  json seed = status["replication"]["recent_rounds"][0];
  // Each case: what it rewrites (runs of 64 KiB-aligned bytes spread over the disk), and per repetition the round's
  // figures as the primary recorded them (steps: where its time went).
  struct Case {
    std::string label;
    uint64_t runs, run_bytes;
    std::vector<double> ratio, duration;
    std::map<std::string, std::vector<double>> steps;
  };
  std::vector<Case> cases = {{"512 KiB", 8, 64 * 1024},
                             {"1 %", 32, kDisk / 100 / 32 / (64 * 1024) * 64 * 1024},
                             {"10 %", 32, kDisk / 10 / 32 / (64 * 1024) * 64 * 1024},
                             {"50 %", 32, kDisk / 2 / 32}};
  int pattern = 0x20;
  for (int rep = 0; rep < reps; ++rep) {
    for (Case& c : cases) {
      Sync(lab, "rb-rounds");  // start from a clean bitmap
      const uint64_t dirty = DirtyRuns(lab, "rb-rounds", c.runs, c.run_bytes, ++pattern);
      json round = Sync(lab, "rb-rounds");
      c.ratio.push_back(round["bytes_sent"].get<double>() / dirty);
      c.duration.push_back(round["duration_ms"].get<double>());
      for (const auto& [step, ms] : round["steps"].items()) c.steps[step].push_back(ms.get<double>());
    }
  }

  // ---- 3. Resync after SIGKILL of QEMU, 1 % rewritten first.
  Sync(lab, "rb-rounds");
  const uint64_t dirty = DirtyRuns(lab, "rb-rounds", cases[1].runs, cases[1].run_bytes, ++pattern);
  lab.MustRun("pkill -KILL -f 'guest=[r]b-rounds,'");
  WaitUntil([&] {
    auto state = lab.conn(0).GetDomainState("rb-rounds");
    return state.ok() && *state == virt::DomainState::kShutoff;
  }, 30s);
  lab.Must(lab.conn(0).StartDomain("rb-rounds"), "restart rb-rounds");
  json resync;
  WaitUntil([&] {
    (void)RunCliJson(lab.hosts()[0], "--timeout 600 sync rb-rounds");
    auto s = RunCliJson(lab.hosts()[0], "status rb-rounds");
    if (!s.ok()) return false;
    for (const json& r : (*s)["replication"]["recent_rounds"]) {
      if (r["mode"] == "resync") resync = r;
    }
    return resync.is_object();
  }, 300s);
  if (!resync.is_object()) lab.Die("no resync round after the SIGKILL");
  guest.reset();
  WaitReleased(lab, "rb-rounds");

  // ---- Baseline: virsh migrate --copy-storage-all of the same kind of disk (1 GiB of data), untagged.
  auto mig = StartGuest(lab, {.name = "rb-mig", .disk_mib = 1024, .kernel_args = "vs.rate=1"}, true);
  lab.MustRun("qemu-img create -q -f qcow2 " + HostPath(lab.hosts()[2], mig->disk_path()) + " 1G");
  lab.Must(mig->WaitForAcks(1, 120s).status(), "rb-mig boot");
  virt::MigrationOptions options;
  options.postcopy = false;
  options.copy_storage_all = true;
  options.tls = UsesTls(lab.hosts()[2].uri);
  auto migrated =
      lab.Must(lab.conn(0).MigrateLive("rb-mig", lab.hosts()[2].uri, options), "migrate --copy-storage-all");
  mig->MovedTo(lab.conn(2));
  mig.reset();
  std::remove(HostPath(lab.hosts()[2], "/var/lib/libvirt/images/rb-mig.qcow2").c_str());
  lab.MustRun(LabScript() + " shape off");

  const double seed_bytes = seed["bytes_sent"], seed_ms = seed["duration_ms"];
  const double migrate_bytes = migrated.disk_bytes_processed.value_or(0);
  const double migrate_ms = std::chrono::duration<double, std::milli>(migrated.elapsed).count();
  std::printf("replication_bench: 1 GiB qcow2 disk full of data, lab links 1 Gbit/s, %d repetitions (medians)\n\n", reps);
  std::printf("baselines: full copy over NBD (seed round) %.0f MiB in %.0f ms; virsh migrate --copy-storage-all "
              "moved %.0f MiB of disk in %.0f ms\n\n", seed_bytes / kMiB, seed_ms, migrate_bytes / kMiB, migrate_ms);
  const double migrate_rate = migrate_ms > 0 ? migrate_bytes / kMiB / (migrate_ms / 1000) : 0;
  std::printf("seed (full copy of 1 GiB) against --copy-storage-all: %.0f ms / %.0f ms = %.2f (aim: 1.2 or less)\n\n",
              seed_ms, migrate_ms, migrate_ms > 0 ? seed_ms / migrate_ms : 0.0);
  std::printf("%-9s %-11s %-10s %-11s %-15s %-17s %-17s %-15s\n", "dirtied", "sent/dirty", "round ms", "MiB/s",
              "MiB/s / migrate", "round/full-copy t", "sent/full-copy B", "sent/migrate B");
  for (const Case& c : cases) {
    const double r = Median(c.ratio), d = Median(c.duration);
    const double sent = r * c.runs * c.run_bytes;
    const double rate = d > 0 ? sent / kMiB / (d / 1000) : 0;
    std::printf("%-9s %-11.3f %-10.0f %-11.1f %-15.3f %-17.3f %-17.3f %-15.3f\n", c.label.c_str(), r, d, rate,
                migrate_rate > 0 ? rate / migrate_rate : 0.0, d / seed_ms, sent / seed_bytes,
                migrate_bytes > 0 ? sent / migrate_bytes : 0.0);
  }
  std::printf("(migrate's mirror: %.1f MiB/s; aims: the 50 %% round (512 MiB) at 0.9 of it or more, the 512 KiB round "
              "at 300 ms or less)\n\nwhere a round's time goes (median ms of each step, from the round's record):\n%-9s",
              migrate_rate, "dirtied");
  for (const auto& [step, values] : cases[0].steps) std::printf(" %s", step.c_str());
  std::printf("\n");
  for (const Case& c : cases) {
    std::printf("%-9s", c.label.c_str());
    for (const auto& [step, values] : c.steps) std::printf(" %*.0f", int(step.size()), Median(values));
    std::printf("\n");
  }
  if (guest_pairs > 0) {
    std::vector<double> ratios;
    std::printf("\nguest writes (64 KiB fsync'd records/s over 20 s), one guest, %d alternating pairs:\n", guest_pairs);
    for (size_t i = 0; i < plain_rates.size(); ++i) {
      ratios.push_back(plain_rates[i] > 0 ? replicated_rates[i] / plain_rates[i] : 0.0);
      std::printf("  pair %zu: untagged %.1f, with 1 s rounds %.1f: ratio %.3f\n", i + 1, plain_rates[i],
                  replicated_rates[i], ratios.back());
    }
    const auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("  median ratio %.3f (spread %.3f to %.3f; aim: 0.95 or better)\n", Median(ratios), *low, *high);
  }
  const double resync_sent = resync["bytes_sent"];
  std::printf("resync after SIGKILL (%.0f MiB rewritten before the kill): %.1f MiB sent = %.4f of the disk, %.3f of "
              "the full copy, in %.0f ms\n",
              double(dirty) / kMiB, resync_sent / kMiB, resync_sent / kDisk, resync_sent / seed_bytes,
              resync["duration_ms"].get<double>());
  return 0;
}

}  // namespace
}  // namespace vs::lab

int main(int argc, char** argv) {
  int reps = 3;
  int guest_pairs = 5;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--guest-pairs" && i + 1 < argc) {
      guest_pairs = std::max(0, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: replication_bench [--reps N] [--guest-pairs N (default 5, 0 skips)]   (needs the lab up and installed)\n");
      return 2;
    }
  }
  return vs::lab::Run(reps, guest_pairs);
}
