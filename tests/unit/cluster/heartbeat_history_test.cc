#include "shadowd/cluster/heartbeat_history.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "shadowd/cluster/membership_metrics.h"
#include "shadowd/store/memory_store.h"
#include "shadowd/store/rocksdb_store.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::cluster {
namespace {

using namespace std::chrono_literals;
using virtshadow::v1::MembershipEvent;

ClusterHosts ThreeHosts() {
  ClusterHosts hosts;
  hosts.this_host = "h1";
  for (int i = 1; i <= 3; ++i) {
    HostConfig host;
    host.name = "h" + std::to_string(i);
    host.zone = i % 2 ? "zone-a" : "zone-b";
    host.address = "10.77.0." + std::to_string(10 + i);
    hosts.hosts.push_back(host);
  }
  return hosts;
}

MembershipSnapshot Snap(std::vector<std::string> members, bool quorate, uint64_t ring = 1) {
  MembershipSnapshot snapshot;
  snapshot.connected = true;
  snapshot.quorate = quorate;
  snapshot.ring_id = ring;
  snapshot.this_node = "h1";
  snapshot.corosync_members = members;
  snapshot.members = std::move(members);
  return snapshot;
}

const HostHeartbeatView& HostIn(const MembershipView& view, const std::string& host) {
  for (const auto& h : view.hosts) {
    if (h.host == host) return h;
  }
  throw std::runtime_error("no host " + host);
}

std::vector<MembershipEvent::Kind> Kinds(const std::vector<MembershipEvent>& events) {
  std::vector<MembershipEvent::Kind> kinds;
  for (const auto& e : events) kinds.push_back(e.kind());
  return kinds;
}

class HeartbeatHistoryTest : public ::testing::Test {
 protected:
  store::MemoryStore store_;
  FakeClock clock_;
  HeartbeatHistory history_{store_, clock_, ThreeHosts(), {.max_events = 100, .persist_interval = 10s}};
  void SetUp() override { ASSERT_TRUE(history_.Load().ok()); }
};

TEST_F(HeartbeatHistoryTest, AHostIsNeverSeenUntilItJoinsThenAMemberWhoseLastSeenAdvances) {
  const WallTime t0 = clock_.WallNow();
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true)).ok());
  clock_.Advance(3s);
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true)).ok());

  MembershipView view = history_.View();
  EXPECT_TRUE(view.known);
  EXPECT_TRUE(view.quorate);
  EXPECT_EQ(HostIn(view, "h2").state, HostMembership::kMember);
  EXPECT_EQ(HostIn(view, "h2").since, t0) << "since is when it joined, not the last observation";
  EXPECT_EQ(HostIn(view, "h2").last_seen, t0 + 3s);
  EXPECT_TRUE(HostIn(view, "h2").corosync_member);
  EXPECT_EQ(HostIn(view, "h3").state, HostMembership::kNeverSeen);
  EXPECT_FALSE(HostIn(view, "h3").last_seen.has_value());
  EXPECT_FALSE(HostIn(view, "h3").corosync_member);

  auto events = history_.HostEvents("h2");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Kinds(*events), std::vector{MembershipEvent::JOINED}) << "an unchanged member records no new event";
  EXPECT_EQ((*events)[0].at_ms(), ToUnixMillis(t0));
  auto h3_events = history_.HostEvents("h3");
  ASSERT_TRUE(h3_events.ok());
  EXPECT_TRUE(h3_events->empty());
}

TEST_F(HeartbeatHistoryTest, LeavingAndRejoiningAreRecordedWithTheirTimes) {
  const WallTime t0 = clock_.WallNow();
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true, 4)).ok());
  clock_.Advance(2s);
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true, 4)).ok());
  clock_.Advance(5s);
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true, 8)).ok());

  MembershipView view = history_.View();
  EXPECT_EQ(HostIn(view, "h3").state, HostMembership::kAbsent);
  EXPECT_EQ(HostIn(view, "h3").since, t0 + 7s);
  EXPECT_EQ(HostIn(view, "h3").last_seen, t0 + 2s) << "last seen: the last observation that had it";
  EXPECT_EQ(view.ring_id, 8u);

  clock_.Advance(4s);
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true, 12)).ok());
  auto events = history_.HostEvents("h3");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(Kinds(*events), (std::vector{MembershipEvent::JOINED, MembershipEvent::LEFT, MembershipEvent::JOINED}));
  EXPECT_EQ((*events)[1].at_ms(), ToUnixMillis(t0 + 7s));
  EXPECT_EQ((*events)[1].ring_id(), 8u);
  EXPECT_EQ((*events)[1].members(), 2u);
  EXPECT_EQ((*events)[2].at_ms(), ToUnixMillis(t0 + 11s));
  EXPECT_EQ(HostIn(history_.View(), "h3").state, HostMembership::kMember);
}

TEST_F(HeartbeatHistoryTest, QuorumChangesAreRecordedOnlyWhenTheyChange) {
  for (bool quorate : {true, true, false, false, true}) {
    ASSERT_TRUE(history_.Observe(Snap({"h1"}, quorate)).ok());
    clock_.Advance(1s);
  }
  auto events = history_.QuorumEvents();
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Kinds(*events), (std::vector{MembershipEvent::QUORUM_GAINED, MembershipEvent::QUORUM_LOST,
                                         MembershipEvent::QUORUM_GAINED}));
}

TEST_F(HeartbeatHistoryTest, AnUnreachableEngineMeansNotQuorateAndKeepsTheHostsAsTheyWere) {
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true)).ok());
  clock_.Advance(1s);
  ASSERT_TRUE(history_.Observe(MembershipSnapshot{}).ok());
  MembershipView view = history_.View();
  EXPECT_FALSE(view.known);
  EXPECT_FALSE(view.quorate);
  EXPECT_EQ(HostIn(view, "h2").state, HostMembership::kMember) << "Corosync down here says nothing about h2";
  EXPECT_FALSE(HostIn(view, "h2").corosync_member);
  auto h2 = history_.HostEvents("h2");
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(h2->size(), 1u) << "no LEFT recorded for what could not be seen";
  auto quorum = history_.QuorumEvents();
  ASSERT_TRUE(quorum.ok());
  EXPECT_EQ(Kinds(*quorum), (std::vector{MembershipEvent::QUORUM_GAINED, MembershipEvent::QUORUM_LOST}));
}

TEST_F(HeartbeatHistoryTest, NodesAreMatchedByNameOrAddressAndUnknownNodesAreIgnored) {
  ASSERT_TRUE(history_.Observe(Snap({"h1", "10.77.0.12", "h9", "10.1.1.1"}, true)).ok());
  MembershipView view = history_.View();
  EXPECT_EQ(HostIn(view, "h2").state, HostMembership::kMember);
  EXPECT_EQ(HostIn(view, "h3").state, HostMembership::kNeverSeen);
  EXPECT_EQ(view.hosts.size(), 3u);
}

TEST_F(HeartbeatHistoryTest, EachHistoryIsBounded) {
  HeartbeatHistory bounded(store_, clock_, ThreeHosts(), {.max_events = 3, .persist_interval = 10s});
  ASSERT_TRUE(bounded.Load().ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(bounded.Observe(Snap(i % 2 ? std::vector<std::string>{"h1"} : std::vector<std::string>{"h1", "h3"},
                                     i % 2 == 0)).ok());
    clock_.Advance(1s);
  }
  auto events = bounded.HostEvents("h3");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ(events->back().kind(), MembershipEvent::LEFT) << "the newest kept: i = 9 had no h3";
  EXPECT_EQ(events->back().at_ms(), ToUnixMillis(clock_.WallNow() - 1s));
  auto quorum = bounded.QuorumEvents();
  ASSERT_TRUE(quorum.ok());
  EXPECT_EQ(quorum->size(), 3u);
  auto keys = store_.ScanKeys(store::HistoryPrefix(store::Table::kHeartbeat, "events:h3"));
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 3u);
}

TEST_F(HeartbeatHistoryTest, LastSeenIsWrittenAtMostEveryPersistIntervalAndSurvivesARestart) {
  const WallTime t0 = clock_.WallNow();
  for (int s = 0; s <= 24; ++s) {
    ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true)).ok());
    clock_.Advance(1s);
  }
  EXPECT_EQ(HostIn(history_.View(), "h2").last_seen, t0 + 25s) << "a member of the current snapshot is seen now";
  HeartbeatHistory restarted(store_, clock_, ThreeHosts(), {.max_events = 100, .persist_interval = 10s});
  ASSERT_TRUE(restarted.Load().ok());
  MembershipView view = restarted.View();
  EXPECT_EQ(HostIn(view, "h2").last_seen, t0 + 20s) << "written at 0, 10 and 20 s";
  EXPECT_EQ(HostIn(view, "h2").since, t0);
  EXPECT_EQ(HostIn(view, "h2").state, HostMembership::kMember);
  EXPECT_FALSE(view.known) << "nothing observed since the restart";
}

TEST_F(HeartbeatHistoryTest, AHostWhoseShadowdStoppedIsSaidSoUntilTheSnapshotsSayOtherwise) {
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true)).ok());
  EXPECT_FALSE(HostIn(history_.View(), "h3").shadowd_stopped);
  MembershipSnapshot stopped = Snap({"h1", "h2"}, true);
  stopped.corosync_members = {"h1", "h2", "h3"};
  stopped.shadowd_stopped = {"h3"};
  ASSERT_TRUE(history_.Observe(stopped).ok());
  EXPECT_TRUE(HostIn(history_.View(), "h3").shadowd_stopped);
  EXPECT_FALSE(HostIn(history_.View(), "h2").shadowd_stopped);
  // h3 then leaves, node and all: the snapshot keeps saying its shadowd had stopped, and so does the view.
  MembershipSnapshot left = Snap({"h1", "h2"}, true, 2);
  left.shadowd_stopped = {"h3"};
  ASSERT_TRUE(history_.Observe(left).ok());
  EXPECT_TRUE(LeftWithItsCorosync(history_.View(), "h3"));
  EXPECT_TRUE(HostIn(history_.View(), "h3").shadowd_stopped);
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true, 3)).ok());
  EXPECT_FALSE(HostIn(history_.View(), "h3").shadowd_stopped);
}

TEST_F(HeartbeatHistoryTest, HostsAreGoneOnlyAfterTheirAbsenceLastedAndOnlyToAQuoratePartition) {
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true)).ok());
  // h3's shadowd left but its Corosync node stayed: a restarting shadowd, not a gone host.
  MembershipSnapshot shadowd_restarting = Snap({"h1", "h2"}, true, 2);
  shadowd_restarting.corosync_members = {"h1", "h2", "h3"};
  ASSERT_TRUE(history_.Observe(shadowd_restarting).ok());
  clock_.Advance(60s);
  EXPECT_THAT(HostsGoneFor(history_.View(), clock_.WallNow(), 5s), ::testing::IsEmpty());
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true, 2)).ok());
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true, 3)).ok());  // h3 left, node and all
  EXPECT_THAT(HostsGoneFor(history_.View(), clock_.WallNow(), 5s), ::testing::IsEmpty()) << "absent for 0 s";
  clock_.Advance(5s);
  EXPECT_THAT(HostsGoneFor(history_.View(), clock_.WallNow(), 5s), ::testing::ElementsAre("h3"));
  // Cut off itself, a host cannot tell who is gone.
  ASSERT_TRUE(history_.Observe(Snap({"h1"}, false, 3)).ok());
  clock_.Advance(10s);
  EXPECT_THAT(HostsGoneFor(history_.View(), clock_.WallNow(), 5s), ::testing::IsEmpty());
  // Back in a quorate partition with h2; h3 is still gone, and a host never seen is never "gone".
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, true, 4)).ok());
  EXPECT_THAT(HostsGoneFor(history_.View(), clock_.WallNow(), 5s), ::testing::ElementsAre("h3"));
  store::MemoryStore empty;
  HeartbeatHistory never{empty, clock_, ThreeHosts()};
  ASSERT_TRUE(never.Load().ok());
  ASSERT_TRUE(never.Observe(Snap({"h1", "h2"}, true)).ok());
  clock_.Advance(60s);
  EXPECT_THAT(HostsGoneFor(never.View(), clock_.WallNow(), 5s), ::testing::IsEmpty());
}

TEST_F(HeartbeatHistoryTest, LeftWithItsCorosyncIsTheShadowdAndTheNodeGoneFromAKnownView) {
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2", "h3"}, true)).ok());
  MembershipSnapshot shadowd_restarting = Snap({"h1", "h2"}, true, 2);
  shadowd_restarting.corosync_members = {"h1", "h2", "h3"};
  ASSERT_TRUE(history_.Observe(shadowd_restarting).ok());
  EXPECT_FALSE(LeftWithItsCorosync(history_.View(), "h3")) << "its node is here: a restarting shadowd";
  ASSERT_TRUE(history_.Observe(Snap({"h1", "h2"}, false, 3)).ok());  // node and all, even without quorum
  EXPECT_TRUE(LeftWithItsCorosync(history_.View(), "h3"));
  EXPECT_FALSE(LeftWithItsCorosync(history_.View(), "h2"));
  EXPECT_FALSE(LeftWithItsCorosync(history_.View(), "h9")) << "not a configured host";
  HeartbeatHistory restarted(store_, clock_, ThreeHosts());
  ASSERT_TRUE(restarted.Load().ok());
  EXPECT_FALSE(LeftWithItsCorosync(restarted.View(), "h3")) << "nothing observed yet: the view is not known";
}

TEST_F(HeartbeatHistoryTest, TheViewCarriesTheMembershipsDetectionTime) {
  MembershipSnapshot snapshot = Snap({"h1", "h2", "h3"}, true);
  snapshot.failure_detection = 1760ms;
  ASSERT_TRUE(history_.Observe(snapshot).ok());
  EXPECT_EQ(history_.View().failure_detection, 1760ms);
}

TEST_F(HeartbeatHistoryTest, ObservingBeforeLoadingIsRefused) {
  HeartbeatHistory unloaded(store_, clock_, ThreeHosts());
  EXPECT_EQ(unloaded.Observe(Snap({"h1"}, true)).code(), Code::kFailedPrecondition);
}

// A store whose writes fail while `fail` is set.
class FlakyStore final : public store::Store {
 public:
  bool fail = false;
  StatusOr<std::optional<std::string>> Get(std::string_view key) const override { return inner_.Get(key); }
  Status Write(const store::WriteBatch& batch) override {
    return fail ? Unavailable("disk went away") : inner_.Write(batch);
  }
  StatusOr<std::vector<store::Entry>> Scan(std::string_view prefix) const override { return inner_.Scan(prefix); }
  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override {
    return inner_.ScanKeys(prefix);
  }

 private:
  store::MemoryStore inner_;
};

TEST(HeartbeatHistory, AFailedWriteChangesNothingAndTheNextObservationRecordsTheChangeOnce) {
  FlakyStore store;
  FakeClock clock;
  HeartbeatHistory history(store, clock, ThreeHosts());
  ASSERT_TRUE(history.Load().ok());
  store.fail = true;
  EXPECT_EQ(history.Observe(Snap({"h1", "h2"}, true)).code(), Code::kUnavailable);
  EXPECT_EQ(HostIn(history.View(), "h2").state, HostMembership::kNeverSeen);
  store.fail = false;
  ASSERT_TRUE(history.Observe(Snap({"h1", "h2"}, true)).ok());
  auto events = history.HostEvents("h2");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u);
  auto quorum = history.QuorumEvents();
  ASSERT_TRUE(quorum.ok());
  EXPECT_EQ(quorum->size(), 1u);
}

TEST(HeartbeatHistory, StatesAndHistoriesSurviveARestartOfTheRocksDbStore) {
  test_support::TempDir dir;
  FakeClock clock;
  const WallTime t0 = clock.WallNow();
  {
    auto store = store::OpenRocksDbStore(dir.Sub("store"), {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    HeartbeatHistory history(**store, clock, ThreeHosts());
    ASSERT_TRUE(history.Load().ok());
    ASSERT_TRUE(history.Observe(Snap({"h1", "h2", "h3"}, true)).ok());
    clock.Advance(5s);
    ASSERT_TRUE(history.Observe(Snap({"h1", "h2"}, true)).ok());
  }
  auto store = store::OpenRocksDbStore(dir.Sub("store"), {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  HeartbeatHistory history(**store, clock, ThreeHosts());
  ASSERT_TRUE(history.Load().ok());
  MembershipView view = history.View();
  EXPECT_EQ(HostIn(view, "h3").state, HostMembership::kAbsent);
  EXPECT_EQ(HostIn(view, "h3").since, t0 + 5s);
  EXPECT_EQ(HostIn(view, "h3").last_seen, t0);
  EXPECT_EQ(HostIn(view, "h2").state, HostMembership::kMember);
  // The histories continue where they ended (a sequence number reused would be refused).
  clock.Advance(5s);
  ASSERT_TRUE(history.Observe(Snap({"h1", "h2", "h3"}, false)).ok());
  auto events = history.HostEvents("h3");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Kinds(*events), (std::vector{MembershipEvent::JOINED, MembershipEvent::LEFT, MembershipEvent::JOINED}));
  auto quorum = history.QuorumEvents();
  ASSERT_TRUE(quorum.ok());
  EXPECT_EQ(Kinds(*quorum), (std::vector{MembershipEvent::QUORUM_GAINED, MembershipEvent::QUORUM_LOST}))
      << "the quorum state before the restart is known, so only the change is recorded";
}

// A Membership the test drives: Emit() plays the engine's thread.
class FakeMembership final : public Membership {
 public:
  MembershipSnapshot Current() const override { return current; }
  void Start(Listener on_change) override { listener = std::move(on_change); }
  void Stop() override { listener = nullptr; ++stops; }
  void Emit(MembershipSnapshot snapshot) {
    current = std::move(snapshot);
    if (listener) listener(current);
  }
  MembershipSnapshot current;
  Listener listener;
  int stops = 0;
};

TEST(MembershipRecorder, RecordsChangesAsTheyHappenAndAdvancesLastSeenOnTick) {
  store::MemoryStore store;
  FakeClock clock;
  HeartbeatHistory history(store, clock, ThreeHosts());
  ASSERT_TRUE(history.Load().ok());
  FakeMembership membership;
  std::vector<Status> errors;
  MembershipRecorder recorder(membership, history, [&](const Status& s) { errors.push_back(s); });
  recorder.Start();
  const WallTime t0 = clock.WallNow();
  membership.Emit(Snap({"h1", "h2", "h3"}, true));
  EXPECT_EQ(HostIn(history.View(), "h3").state, HostMembership::kMember) << "seen without waiting for a tick";
  clock.Advance(2s);
  ASSERT_TRUE(recorder.Tick().ok());
  EXPECT_EQ(HostIn(history.View(), "h3").last_seen, t0 + 2s);
  auto events = history.HostEvents("h3");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u) << "a tick without a change records no event";
  clock.Advance(1s);
  membership.Emit(Snap({"h1", "h2"}, true));
  EXPECT_EQ(HostIn(history.View(), "h3").state, HostMembership::kAbsent);
  EXPECT_EQ(HostIn(history.View(), "h3").since, t0 + 3s);
  EXPECT_TRUE(errors.empty());
  recorder.Stop();
  EXPECT_EQ(membership.stops, 1);
  EXPECT_FALSE(membership.listener) << "no change reaches the history after Stop";
}

TEST(MembershipRecorder, TheFirstListenerSeesEachChangeBeforeTheHistoryRecordsIt) {
  store::MemoryStore store;
  FakeClock clock;
  HeartbeatHistory history(store, clock, ThreeHosts());
  ASSERT_TRUE(history.Load().ok());
  FakeMembership membership;
  std::vector<HostMembership> h3_when_first_saw;
  std::vector<bool> quorate_seen;
  MembershipRecorder recorder(
      membership, history, [](const Status&) {}, [&](const MembershipSnapshot& snapshot) {
        quorate_seen.push_back(snapshot.quorate);
        h3_when_first_saw.push_back(HostIn(history.View(), "h3").state);
      });
  recorder.Start();
  membership.Emit(Snap({"h1", "h2", "h3"}, true));
  membership.Emit(Snap({"h1"}, false));
  EXPECT_EQ(quorate_seen, (std::vector<bool>{true, false}));
  EXPECT_EQ(h3_when_first_saw, (std::vector<HostMembership>{HostMembership::kNeverSeen, HostMembership::kMember}))
      << "called before the history's write";
  EXPECT_EQ(HostIn(history.View(), "h3").state, HostMembership::kAbsent);
}

TEST(MembershipMetrics, ExportMembershipLastSeenAndQuorum) {
  store::MemoryStore store;
  FakeClock clock;
  HeartbeatHistory history(store, clock, ThreeHosts());
  ASSERT_TRUE(history.Load().ok());
  const WallTime t0 = clock.WallNow();
  ASSERT_TRUE(history.Observe(Snap({"h1", "h2"}, true)).ok());
  auto families = MembershipMetrics(history.View());
  ASSERT_EQ(families.size(), 6u);
  EXPECT_EQ(families[0].name, "virt_shadow_host_member");
  ASSERT_EQ(families[0].samples.size(), 3u);
  EXPECT_EQ(families[0].samples[1].labels, (std::vector<std::pair<std::string, std::string>>{{"host", "h2"}}));
  EXPECT_EQ(families[0].samples[1].value, 1.0);
  EXPECT_EQ(families[0].samples[2].value, 0.0) << "h3 never seen";
  EXPECT_EQ(families[1].name, "virt_shadow_host_last_seen_timestamp_seconds");
  ASSERT_EQ(families[1].samples.size(), 2u) << "no sample for a host never seen";
  EXPECT_EQ(families[1].samples[1].value, static_cast<double>(ToUnixMillis(t0)) / 1000.0);
  EXPECT_EQ(families[2].name, "virt_shadow_quorate");
  EXPECT_EQ(families[2].samples.at(0).value, 1.0);
  EXPECT_EQ(families[3].samples.at(0).value, 1.0);
  EXPECT_EQ(families[4].name, "virt_shadow_members");
  EXPECT_EQ(families[4].samples.at(0).value, 2.0);
  auto text = metrics::RenderPrometheusText(families);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("virt_shadow_host_state{host=\"h2\",state=\"member\"} 1\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("virt_shadow_host_state{host=\"h2\",state=\"absent\"} 0\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("virt_shadow_host_state{host=\"h3\",state=\"never_seen\"} 1\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("virt_shadow_host_state{host=\"h3\",state=\"member\"} 0\n"), std::string::npos) << *text;

  ASSERT_TRUE(history.Observe(MembershipSnapshot{}).ok());
  families = MembershipMetrics(history.View());
  EXPECT_EQ(families[0].samples[1].value, 0.0) << "nothing is known alive while Corosync is unreachable";
  EXPECT_EQ(families[2].samples.at(0).value, 0.0);
  EXPECT_EQ(families[3].samples.at(0).value, 0.0);
  EXPECT_EQ(families[4].samples.at(0).value, 0.0) << "no member counted while Corosync is unreachable";
  text = metrics::RenderPrometheusText(families);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("virt_shadow_host_member{host=\"h2\"} 0"), std::string::npos) << *text;
}

}  // namespace
}  // namespace vs::cluster
