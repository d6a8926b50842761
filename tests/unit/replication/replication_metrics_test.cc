// ReplicationMetrics: the replication families as Prometheus sees them (rendered by shadowd/metrics).
#include "shadowd/replication/replication_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::replication {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using virtshadow::v1::ReplicaRecord;
using virtshadow::v1::ReplicationRecord;

constexpr char kVm1Labels[] = R"({vm="vm1",uuid="uuid-1",shadow_host="h2"})";
constexpr char kVm2Labels[] = R"({vm="vm2",uuid="uuid-2",shadow_host="h3"})";

class ReplicationMetricsTest : public ::testing::Test {
 protected:
  ReplicationMetricsTest() {
    const int64_t now_ms = ToUnixMillis(clock_.WallNow());
    replicated_.set_vm_uuid("uuid-1");
    replicated_.set_vm_name("vm1");
    replicated_.set_shadow_host("h2");
    replicated_.mutable_applied()->set_taken_unix_ms(now_ms - 42'500);
    replicated_.mutable_applied()->set_bytes_sent(1'048'576);
    replicated_.mutable_applied()->set_changed_bytes(2'097'152);
    replicated_.mutable_applied()->set_duration_ms(1'500);
    replicated_.set_rounds_applied(7);
    replicated_.set_bytes_sent_total(123'456'789);
    replicated_.set_rounds_failed(2);
    replicated_.set_consecutive_failures(1);

    never_applied_.set_vm_uuid("uuid-2");
    never_applied_.set_vm_name("vm2");
    never_applied_.set_shadow_host("h3");
    never_applied_.set_rounds_failed(3);
    never_applied_.set_consecutive_failures(3);

    held_.set_vm_uuid("uuid-9");
    held_.set_primary_host("h4");
    held_.mutable_applied()->set_taken_unix_ms(now_ms - 10'000);
    held_empty_.set_vm_uuid("uuid-8");
    held_empty_.set_primary_host("h4");
  }

  std::string Render() {
    auto text = metrics::RenderPrometheusText(
        ReplicationMetrics({replicated_, never_applied_}, {held_, held_empty_}, clock_.WallNow()));
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.ok() ? *text : "";
  }

  FakeClock clock_;
  ReplicationRecord replicated_;
  ReplicationRecord never_applied_;
  ReplicaRecord held_;
  ReplicaRecord held_empty_;
};

TEST_F(ReplicationMetricsTest, EveryFamilyIsAnnouncedWithItsType) {
  const std::string text = metrics::RenderPrometheusText(ReplicationMetrics({}, {}, clock_.WallNow())).value();
  for (const char* gauge :
       {"virt_shadow_replication_lag_seconds", "virt_shadow_replication_last_round_bytes",
        "virt_shadow_replication_last_round_changed_bytes", "virt_shadow_replication_last_round_duration_seconds",
        "virt_shadow_replication_consecutive_failures", "virt_shadow_replica_age_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + gauge + " gauge\n"));
    EXPECT_THAT(text, HasSubstr(std::string("# HELP ") + gauge + " "));
  }
  for (const char* counter : {"virt_shadow_replication_rounds_total", "virt_shadow_replication_sent_bytes_total",
                              "virt_shadow_replication_round_failures_total"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + counter + " counter\n"));
  }
  EXPECT_THAT(text, Not(HasSubstr("{")));  // no VM: no series
}

TEST_F(ReplicationMetricsTest, AReplicatedVmHasItsRoundFiguresAndLag) {
  const std::string text = Render();
  const std::string labels = kVm1Labels;
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_lag_seconds" + labels + " 42.5\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_last_round_bytes" + labels + " 1048576\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_last_round_changed_bytes" + labels + " 2097152\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_last_round_duration_seconds" + labels + " 1.5\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_rounds_total" + labels + " 7\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_sent_bytes_total" + labels + " 123456789\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_round_failures_total" + labels + " 2\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_consecutive_failures" + labels + " 1\n"));
}

TEST_F(ReplicationMetricsTest, LagGrowsWithTheClock) {
  clock_.Advance(std::chrono::milliseconds(17'250));
  EXPECT_THAT(Render(), HasSubstr(std::string("virt_shadow_replication_lag_seconds") + kVm1Labels + " 59.75\n"));
  EXPECT_THAT(Render(), HasSubstr(R"(virt_shadow_replica_age_seconds{uuid="uuid-9",primary_host="h4"} 27.25)"));
}

TEST_F(ReplicationMetricsTest, AVmWithoutAnAppliedRoundHasCountersButNoLag) {
  const std::string text = Render();
  const std::string labels = kVm2Labels;
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_rounds_total" + labels + " 0\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_round_failures_total" + labels + " 3\n"));
  EXPECT_THAT(text, HasSubstr("virt_shadow_replication_consecutive_failures" + labels + " 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("virt_shadow_replication_lag_seconds" + labels)));
  EXPECT_THAT(text, Not(HasSubstr("virt_shadow_replication_last_round_bytes" + labels)));
}

TEST_F(ReplicationMetricsTest, HeldReplicasShowTheirAgeWhenTheyHaveOne) {
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr(R"(virt_shadow_replica_age_seconds{uuid="uuid-9",primary_host="h4"} 10)" "\n"));
  EXPECT_THAT(text, Not(HasSubstr(R"(uuid="uuid-8")")));
}

TEST_F(ReplicationMetricsTest, LabelValuesFromRecordsAreEscaped) {
  replicated_.set_vm_name("vm\"1\\\n");
  EXPECT_THAT(Render(), HasSubstr(R"(virt_shadow_replication_rounds_total{vm="vm\"1\\\n",uuid="uuid-1")"));
}

TEST(QueueMetricsTest, ShowTheRunnersWhatRunsAndHowLongEachDueRoundWaits) {
  const std::vector<ReplicationSchedule> targets = {{{"uuid-1", "vm1", "h2"}, std::chrono::seconds(5), 100},
                                                    {{"uuid-2", "vm2", "h2"}, std::chrono::seconds(5), 100},
                                                    {{"uuid-3", "vm3", "h3"}, std::chrono::seconds(5), 100}};
  const std::vector<RoundQueue::Entry> queue = {
      {"uuid-1", /*running=*/true, false, -std::chrono::seconds(1), 0},
      {"uuid-2", false, false, -std::chrono::milliseconds(2500), 1},
      {"uuid-3", false, false, std::chrono::seconds(3), 0}};
  auto text = metrics::RenderPrometheusText(QueueMetrics(queue, targets, 4));
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_THAT(*text, HasSubstr("virt_shadow_replication_runners 4\n"));
  EXPECT_THAT(*text, HasSubstr("virt_shadow_replication_rounds_running 1\n"));
  EXPECT_THAT(*text, HasSubstr("virt_shadow_replication_rounds_waiting 1\n"));
  EXPECT_THAT(*text, HasSubstr(R"(virt_shadow_replication_round_waiting_seconds{vm="vm2",uuid="uuid-2"} 2.5)"));
  // A running round and a round not yet due wait for nothing.
  EXPECT_THAT(*text, HasSubstr(R"(virt_shadow_replication_round_waiting_seconds{vm="vm1",uuid="uuid-1"} 0)"));
  EXPECT_THAT(*text, HasSubstr(R"(virt_shadow_replication_round_waiting_seconds{vm="vm3",uuid="uuid-3"} 0)"));
}

}  // namespace
}  // namespace vs::replication
