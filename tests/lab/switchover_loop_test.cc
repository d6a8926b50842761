// Lab test of what users repeat (issue 10): ONE writing guest moved live around the three hosts many times in a
// row, with its replication rounds running, each move at a random moment of the round cycle, alternating
// `virt-shadow switchover` and a maintenance drain. State one move leaves behind (an unflattened top, a bitmap
// of an earlier host, a record not finished) is what breaks the next one, so after EVERY move:
//   - the record is Done, the guest runs only on the new host, on its image at its usual path (no top);
//   - the guest keeps acknowledging new records (progress, not just "running");
//   - the data-loss oracle reads the running guest's disk and finds every acknowledged record, one boot id
//     and no kernel trouble in the serial log;
//   - the image carries at most the new host's own bitmaps (earlier hosts' are removed on arrival);
//   - a new shadow is placed and replicated on the third host.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/lab/lab_env.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

constexpr int kMoves = 30;
constexpr char kGuest[] = "sw-loop";

// The names of the persistent dirty bitmaps in a qcow2 image (read with -U while the guest runs).
StatusOr<std::vector<std::string>> BitmapsOf(const std::string& root_path) {
  CommandResult info = RunCommand("qemu-img info -U --output=json " + root_path);
  if (info.exit_code != 0) return Internal("qemu-img info " + root_path + ": " + info.output);
  const json parsed = json::parse(info.output, nullptr, false);
  if (parsed.is_discarded()) return Internal("qemu-img info printed no JSON: " + info.output);
  std::vector<std::string> names;
  const json& data = parsed["format-specific"]["data"];
  if (data.contains("bitmaps")) {
    for (const json& bitmap : data["bitmaps"]) names.push_back(bitmap["name"].get<std::string>());
  }
  return names;
}

class SwitchoverLoopTest : public SwitchoverTest {};

TEST_F(SwitchoverLoopTest, OneWritingGuestMovedThirtyTimesLosesNothingAndKeepsRunning) {
  ASSERT_GE(hosts_.size(), 3u);
  size_t shadow = 0;
  std::unique_ptr<TestGuest> started = StartProtectedGuest(kGuest, &shadow);
  ASSERT_TRUE(started);
  TestGuest& guest = *started;
  size_t at = 0;

  // A fixed seed unless VS_LOOP_SEED says otherwise, so that a failing sequence can be replayed.
  const unsigned seed = std::getenv("VS_LOOP_SEED") ? std::strtoul(std::getenv("VS_LOOP_SEED"), nullptr, 10) : 20261204;
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> pause_ms(0, 2500);  // rounds run every 2 s: anywhere in a round's cycle
  std::printf("seed %u\n", seed);
  uint64_t records_checked = 0;
  for (int move = 1; move <= kMoves; ++move) {
    SCOPED_TRACE("move " + std::to_string(move) + " of " + std::to_string(kMoves));
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
    const int64_t requested = NowMs();
    const bool by_drain = move % 2 == 0;
    CommandResult asked = by_drain ? Cli(at, "--timeout 300 drain " + hosts_[at].name + " --deadline 60")
                                   : Cli(at, "--timeout 300 switchover " + guest.name() + " --deadline 60");
    EXPECT_EQ(asked.exit_code, 0) << asked.output;
    auto record = WaitSwitchoverDone(guest.name(), at, requested, 120s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow, /*source_leaving=*/by_drain));
    if (by_drain) Undrain(at);
    const size_t from = at;
    at = shadow;

    auto report = guest.Check(hosts_[at]);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(report->ok()) << "after move " << move << ": " << oracle::FormatReportText(*report);
    EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted";
    EXPECT_TRUE(report->oops_lines.items.empty()) << "kernel trouble after move " << move << ": "
                                                  << oracle::FormatReportText(*report);
    ASSERT_TRUE(report->last_acked_seq.has_value());
    records_checked = *report->last_acked_seq;

    auto bitmaps = BitmapsOf(HostPath(hosts_[at], guest.disk_path()));
    ASSERT_TRUE(bitmaps.ok()) << bitmaps.status().ToString();
    EXPECT_LE(bitmaps->size(), 2u) << "bitmaps pile up in " << guest.disk_path() << " on " << hosts_[at].name << ": "
                                   << json(*bitmaps).dump();
    auto next_shadow = WaitProtected(guest.name(), at);
    ASSERT_TRUE(next_shadow.ok()) << next_shadow.status().ToString();
    std::printf("move %d: %s -> %s by %s, downtime %s ms, %llu acknowledged records checked, bitmaps %s\n", move,
                hosts_[from].name.c_str(), hosts_[at].name.c_str(), by_drain ? "drain" : "switchover",
                (*record)["downtime_ms"].dump().c_str(), static_cast<unsigned long long>(records_checked),
                json(*bitmaps).dump().c_str());
    shadow = *next_shadow;
  }
  ASSERT_TRUE(conns_[at]->DestroyDomain(guest.name()).ok());
  // A running QEMU keeps the bitmaps that came with a migration in memory only (qemu-img -U above sees the
  // file); it writes every persistent bitmap into the image when it closes it. So this is the full count.
  auto bitmaps = BitmapsOf(HostPath(hosts_[at], guest.disk_path()));
  ASSERT_TRUE(bitmaps.ok()) << bitmaps.status().ToString();
  std::printf("bitmaps in the image after %d moves, the guest stopped: %s\n", kMoves, json(*bitmaps).dump().c_str());
  EXPECT_LE(bitmaps->size(), 2u) << "bitmaps of earlier hosts piled up in memory: " << json(*bitmaps).dump();
  auto report = guest.Check(hosts_[at]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("after %d moves: %s\n", kMoves, oracle::FormatReportText(*report).c_str());
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  RemoveImages(kGuest);
}

}  // namespace
}  // namespace vs::lab
