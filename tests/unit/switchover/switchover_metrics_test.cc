// The switchover and drain metrics: the tally of ended switchovers, the last switchover of each VM, the drain.
#include "shadowd/switchover/switchover_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace vs::switchover {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::HasSubstr;
using ::testing::Not;

v1::SwitchoverRecord Ended(const std::string& vm, v1::SwitchoverPhase phase, uint64_t downtime_ms,
                           int64_t requested_ms, int64_t finished_ms) {
  v1::SwitchoverRecord record;
  record.set_vm_name(vm);
  record.set_vm_uuid("uuid-" + vm);
  record.set_target_host("h2");
  record.set_phase(phase);
  record.set_downtime_ms(downtime_ms);
  record.set_requested_unix_ms(requested_ms);
  record.set_finished_unix_ms(finished_ms);
  return record;
}

std::string Text(const std::vector<metrics::MetricFamily>& families) {
  StatusOr<std::string> text = metrics::RenderPrometheusText(families);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

TEST(SwitchoverTallyTest, StartsWithEveryOutcomeAtZero) {
  const std::string text = Text(SwitchoverTally().Families());
  EXPECT_THAT(text, HasSubstr("# TYPE virt_shadow_switchovers_total counter\n"));
  for (const char* outcome : {"done", "failed", "guest_failed"}) {
    EXPECT_THAT(text, HasSubstr(std::string("virt_shadow_switchovers_total{outcome=\"") + outcome + "\"} 0\n"));
  }
  EXPECT_THAT(text, HasSubstr("# TYPE virt_shadow_switchover_downtime_seconds summary\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_downtime_seconds_count 0\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_duration_seconds_count 0\n"));
}

TEST(SwitchoverTallyTest, CountsOutcomesAndSumsKnownDowntimesAndDurations) {
  SwitchoverTally tally;
  tally.Count(Ended("a", v1::SWITCHOVER_PHASE_DONE, 200, 1'000, 31'000));
  tally.Count(Ended("b", v1::SWITCHOVER_PHASE_GUEST_FAILED, 300, 1'000, 11'000));
  tally.Count(Ended("c", v1::SWITCHOVER_PHASE_DONE, 0, 1'000, 2'000));     // figures lost in a restart
  tally.Count(Ended("d", v1::SWITCHOVER_PHASE_FAILED, 999, 1'000, 5'000));  // never moved: no downtime
  tally.Count(Ended("e", v1::SWITCHOVER_PHASE_MIGRATING, 100, 1'000, 0));   // not ended: ignored
  const std::string text = Text(tally.Families());
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchovers_total{outcome=\"done\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchovers_total{outcome=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchovers_total{outcome=\"guest_failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_downtime_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_downtime_seconds_sum 0.5\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_duration_seconds_count 4\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_duration_seconds_sum 45\n"));
}

// The time the source host was still needed: only for switchovers whose migration ended.
TEST(SwitchoverTallyTest, SumsTheTimeTheSourceHostWasNeeded) {
  SwitchoverTally tally;
  v1::SwitchoverRecord moved = Ended("a", v1::SWITCHOVER_PHASE_DONE, 200, 1'000, 31'000);
  moved.set_source_free_unix_ms(4'500);
  tally.Count(moved);
  tally.Count(Ended("b", v1::SWITCHOVER_PHASE_FAILED, 0, 1'000, 5'000));  // never migrated
  const std::string text = Text(tally.Families());
  EXPECT_THAT(text, HasSubstr("# TYPE virt_shadow_switchover_source_needed_seconds summary\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_source_needed_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchover_source_needed_seconds_sum 3.5\n"));

  v1::SwitchoverRecord last = moved;
  const std::string per_vm = Text(SwitchoverMetrics({last}));
  EXPECT_THAT(per_vm, HasSubstr("virt_shadow_switchover_last_source_needed_seconds{vm=\"a\",uuid=\"uuid-a\","
                                "target_host=\"h2\"} 3.5\n"));
}

TEST(SwitchoverMetricsTest, TheLastSwitchoverOfEachVmAndThoseInProgress) {
  const std::string text = Text(SwitchoverMetrics({
      Ended("a", v1::SWITCHOVER_PHASE_DONE, 250, 1'000, 21'000),
      Ended("b", v1::SWITCHOVER_PHASE_FAILED, 0, 1'000, 4'000),
      Ended("c", v1::SWITCHOVER_PHASE_MIGRATING, 0, 1'000, 0),
      Ended("d", v1::SWITCHOVER_PHASE_CHECKING, 0, 1'000, 0),
  }));
  EXPECT_THAT(text, HasSubstr("virt_shadow_switchovers_in_progress 2\n"));
  EXPECT_THAT(text,
              HasSubstr("virt_shadow_switchover_last_downtime_seconds{vm=\"a\",uuid=\"uuid-a\",target_host=\"h2\"} 0.25\n"));
  EXPECT_THAT(text, Not(HasSubstr("virt_shadow_switchover_last_downtime_seconds{vm=\"b\"")));
  EXPECT_THAT(text,
              HasSubstr("virt_shadow_switchover_last_duration_seconds{vm=\"a\",uuid=\"uuid-a\",target_host=\"h2\"} 20\n"));
  EXPECT_THAT(text,
              HasSubstr("virt_shadow_switchover_last_duration_seconds{vm=\"b\",uuid=\"uuid-b\",target_host=\"h2\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("vm=\"c\"")));
}

TEST(DrainMetricsTest, NotDrainingShowsZeroesAndNoDeadline) {
  const std::string text = Text(DrainMetrics(std::nullopt, 5));
  EXPECT_THAT(text, HasSubstr("virt_shadow_drain_in_progress 0\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_drain_vms_left 0\n")) << "VMs are only 'left' while draining";
  EXPECT_THAT(text, HasSubstr("# TYPE virt_shadow_drain_deadline_timestamp_seconds gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("\nvirt_shadow_drain_deadline_timestamp_seconds ")));
}

TEST(DrainMetricsTest, DrainingShowsTheVmsLeftAndTheDeadline) {
  v1::DrainRecord drain;
  drain.set_kind("preemption");
  drain.set_deadline_unix_ms(1'764'900'030'000);
  const std::string text = Text(DrainMetrics(drain, 3));
  EXPECT_THAT(text, HasSubstr("virt_shadow_drain_in_progress 1\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_drain_vms_left 3\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_drain_deadline_timestamp_seconds 1764900030\n"));

  drain.set_deadline_unix_ms(0);  // an operator's drain without a deadline
  EXPECT_THAT(Text(DrainMetrics(drain, 3)), Not(HasSubstr("virt_shadow_drain_deadline_timestamp_seconds 0")));
}

}  // namespace
}  // namespace vs::switchover
