// Lab test of stability under jitter (issue 12): minutes of normal running with every host-to-host link
// delayed 20 ms +- 10 ms one way (`lab.sh jitter 20ms 10ms`) must bring no membership change, no quorum change, no
// fence and no promotion. Corosync runs with token 800 ms and token_coefficient 0 (scripts/lab.sh): this is the
// test that shows the short token holds under jitter.
//
// A writing guest runs on h1, protected with its shadow on another host. At the start each host's view of the
// cluster is recorded (`virt-shadow hosts`: quorum, Corosync's ring id, every host's membership and since when,
// which moves with any leave or join in the heartbeat history; its fence records), and where each Corosync log
// ends. Every ~10 s for VS_STABILITY_SECONDS (default 300, which keeps the test command within its budget; the
// ten-minute soak measured for issue 12 is VS_STABILITY_SECONDS=600) every host must still be quorate with all three
// members, on the same ring, with the same membership times, the guest must have acknowledged more records and
// replication applied more rounds. At the end: no Corosync reconfiguration or knet link loss in any host's log
// during the window, no fence record anywhere, no promotion record on any host, the VM still running on h1 with
// the same shadow.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "images/oracle/serial_log.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

using Steady = std::chrono::steady_clock;

// What one host says of the cluster: enough to tell any membership or quorum change between two moments.
struct ClusterView {
  bool known = false;
  bool quorate = false;
  uint64_t ring_id = 0;
  std::map<std::string, std::string> states;    // host -> "member", "absent", "never seen"
  std::map<std::string, int64_t> since_unix_ms;  // host -> when it became what it is (its newest join or leave)
  std::set<std::string> fenced;                  // this host's unreleased fence records, by VM uuid
};

// The average round trip of knet's pings on each of one host's links to the other nodes, in ms, as its Corosync
// reports it (corosync-cmapctl -m stats: latency_ave, in microseconds). It follows the recent pings: its
// latency_samples stops counting at 2048, which pings every 200 ms (knet_ping_interval, token / 4) reach within
// the ten-minute soak, so at its end it speaks of pings under jitter only (not so after the default five minutes,
// where it still averages in pings from before the jitter: it is printed, never asserted).
using KnetRoundTrips = std::vector<double>;

class StabilityTest : public SwitchoverTest {
 protected:
  std::optional<ClusterView> ViewFrom(size_t at) const {
    auto reply = CliJson(at, "hosts");
    if (!reply.ok() || !reply->contains("membership")) return std::nullopt;
    ClusterView view;
    view.known = (*reply)["membership"].value("known", false);
    view.quorate = (*reply)["membership"].value("quorate", false);
    view.ring_id = (*reply)["membership"].value("ring_id", uint64_t{0});
    for (const json& host : (*reply)["hosts"]) {
      if (!host.contains("membership")) continue;
      view.states[host["name"]] = host["membership"].value("state", "");
      view.since_unix_ms[host["name"]] = host["membership"].value("since_unix_ms", int64_t{0});
    }
    for (const json& fence : (*reply)["fenced"]) view.fenced.insert(fence.value("uuid", ""));
    return view;
  }

  // What changed in `now` against `start` (empty: nothing), for host `at`.
  std::string Changes(size_t at, const ClusterView& start, const ClusterView& now) const {
    std::ostringstream out;
    if (!now.known || !now.quorate) out << " not quorate (known " << now.known << ");";
    if (now.ring_id != start.ring_id) out << " ring " << start.ring_id << " -> " << now.ring_id << ";";
    for (const LabHost& host : hosts_) {
      const std::string state = now.states.count(host.name) ? now.states.at(host.name) : "missing";
      if (state != "member") out << " " << host.name << " is " << state << ";";
      if (now.since_unix_ms.count(host.name) && start.since_unix_ms.count(host.name) &&
          now.since_unix_ms.at(host.name) != start.since_unix_ms.at(host.name)) {
        out << " " << host.name << "'s membership changed at " << now.since_unix_ms.at(host.name) << ";";
      }
    }
    if (now.fenced != start.fenced) out << " fence records changed (" << now.fenced.size() << ");";
    const std::string changes = out.str();
    return changes.empty() ? "" : hosts_[at].name + ":" + changes;
  }

  std::string CorosyncLog(size_t at) const { return LabDir() + "/" + hosts_[at].name + "/corosync.log"; }
  static uintmax_t SizeOf(const std::string& path) {
    std::error_code ignored;
    const uintmax_t size = std::filesystem::file_size(path, ignored);
    return ignored ? 0 : size;
  }
  // What `path` gained after its first `offset` bytes.
  static std::string Tail(const std::string& path, uintmax_t offset) {
    std::ifstream in(path);
    in.seekg(static_cast<std::streamoff>(offset));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static std::vector<std::string> LinesWith(const std::string& text, const std::regex& pattern) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (std::regex_search(line, pattern)) lines.push_back(line);
    }
    return lines;
  }

  KnetRoundTrips RoundTripsOf(size_t at) const {
    CommandResult stats = RunCommand(LabScript() + " exec " + hosts_[at].name + " corosync-cmapctl -m stats");
    static const std::regex kAverage(R"(^stats\.knet\.node\d+\.link\d+\.latency_ave \(\w+\) = (\d+))");
    KnetRoundTrips round_trips;
    std::istringstream in(stats.output);
    for (std::string line; std::getline(in, line);) {
      std::smatch match;
      // 0 is its own node's loopback link, which pings nothing.
      if (std::regex_search(line, match, kAverage) && std::stoull(match[1]) > 0) {
        round_trips.push_back(static_cast<double>(std::stoull(match[1])) / 1000);
      }
    }
    return round_trips;
  }

  // The worst lateness of hosts_[at]'s delayer after its drawn delay (its exit line, tests/lab/net_delay.cc), in ms;
  // -1 when it said nothing.
  double DelayerWorstLateMs(size_t at) const {
    std::ifstream out(LabDir() + "/" + hosts_[at].name + "/netdelay.out");
    static const std::regex kExitLine(R"(released late by [\d.]+ ms on average, ([\d.]+) ms at worst)");
    double worst = -1;
    for (std::string line; std::getline(out, line);) {
      std::smatch match;
      if (std::regex_search(line, match, kExitLine)) worst = std::stod(match[1]);
    }
    return worst;
  }

  // Whether every host's delayer of `lab.sh jitter` still runs (else the window would pass without jitter).
  std::string DelayersMissing() const {
    std::string missing;
    for (const LabHost& host : hosts_) {
      std::ifstream pid_file(LabDir() + "/" + host.name + "/netdelay.pid");
      pid_t pid = 0;
      if (!(pid_file >> pid) || pid <= 0 || kill(pid, 0) != 0) missing += " " + host.name;
    }
    return missing;
  }

  // A promotion record of the VM on any host (`status` answers with one on a host that promoted it).
  std::string PromotionsOf(const std::string& uuid) const {
    std::string found;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      auto status = CliJson(i, "status " + uuid);
      if (status.ok() && (*status)["promotion"].is_object()) {
        found += " " + hosts_[i].name + ": " + (*status)["promotion"].dump();
      }
    }
    return found;
  }

  static int StabilitySeconds() {
    const char* configured = std::getenv("VS_STABILITY_SECONDS");
    return configured != nullptr && std::atoi(configured) > 0 ? std::atoi(configured) : 300;
  }
  static double SecondsSince(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }
};

TEST_F(StabilityTest, MinutesOfJitterBringNoMembershipChangeNoFenceNoPromotion) {
  ASSERT_EQ(hosts_.size(), 3u) << "the test needs the 3-host lab";
  const int window_seconds = StabilitySeconds();
  size_t shadow = 0;
  std::unique_ptr<TestGuest> guest = StartProtectedGuest("st-steady", &shadow);
  ASSERT_TRUE(guest);
  const std::string name = guest->name();

  std::vector<ClusterView> start(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto view = ViewFrom(i);
          // Against itself, Changes says only what is wrong in it: not quorate, a host not a member.
          if (!view || !Changes(i, *view, *view).empty()) return false;
          start[i] = *view;
          return true;
        },
        30s))
        << hosts_[i].name << " is not quorate with all three members: " << Cli(i, "hosts").output;
  }
  auto status = CliJson(0, "status " + name);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  const std::string uuid = (*status)["uuid"];
  const json shadow_at_start = (*status)["shadows"][0];
  ASSERT_TRUE((*status)["fence"].is_null()) << status->dump();
  ASSERT_EQ(PromotionsOf(uuid), "");
  const uint64_t rounds_at_start = (*status)["replication"]["rounds_applied"];
  const uint64_t failed_at_start = (*status)["replication"]["rounds_failed"];
  const size_t acks_at_start = oracle::ParseSerialLog(guest->SerialLog()).acks.size();
  std::vector<uintmax_t> log_ends;
  for (size_t i = 0; i < hosts_.size(); ++i) log_ends.push_back(SizeOf(CorosyncLog(i)));

  // The jitter, removed whatever happens below.
  const std::string lab = LabScript();
  CommandResult jitter = RunCommand(lab + " jitter 20ms 10ms");
  ASSERT_EQ(jitter.exit_code, 0) << jitter.output;
  struct JitterOff {
    std::string lab;
    bool done = false;
    ~JitterOff() {
      if (!done) RunCommand(lab + " jitter off");
    }
  } jitter_off{lab};

  // Every ~10 s: the cluster as every host sees it, the guest's acknowledged records, the rounds applied. The first
  // sample that shows a change ends the window: what follows a lost membership is not normal running any more.
  const auto began = Steady::now();
  const auto window = std::chrono::seconds(window_seconds);
  int samples = 0;
  size_t acks = acks_at_start;
  uint64_t rounds = rounds_at_start;
  std::string first_change;
  while (SecondsSince(began) < window_seconds && first_change.empty()) {
    std::this_thread::sleep_until(std::min(began + window, began + std::chrono::seconds(10 * (samples + 1))));
    ++samples;
    std::string changes;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      auto view = ViewFrom(i);
      changes += view ? Changes(i, start[i], *view) : hosts_[i].name + ": `virt-shadow hosts` failed; ";
    }
    const std::string missing = DelayersMissing();
    if (!missing.empty()) changes += " the jitter's delayer is gone on" + missing + ";";
    const size_t acks_now = oracle::ParseSerialLog(guest->SerialLog()).acks.size();
    if (acks_now <= acks) changes += " the guest acknowledged nothing new (" + std::to_string(acks_now) + ");";
    auto now = CliJson(0, "status " + name);
    const uint64_t rounds_now = now.ok() ? (*now)["replication"]["rounds_applied"].get<uint64_t>() : 0;
    if (rounds_now <= rounds) changes += " no round applied (" + std::to_string(rounds_now) + ");";
    std::printf("t=%.0fs: acks %zu, rounds applied %llu%s%s\n", SecondsSince(began), acks_now - acks_at_start,
                static_cast<unsigned long long>(rounds_now - rounds_at_start), changes.empty() ? "" : ", ",
                changes.c_str());
    std::fflush(stdout);
    acks = std::max(acks, acks_now);
    rounds = std::max(rounds, rounds_now);
    if (!changes.empty()) first_change = "at " + std::to_string(SecondsSince(began)) + " s:" + changes;
  }
  const double ran = SecondsSince(began);
  KnetRoundTrips round_trips;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const KnetRoundTrips of_host = RoundTripsOf(i);
    round_trips.insert(round_trips.end(), of_host.begin(), of_host.end());
  }
  CommandResult off = RunCommand(lab + " jitter off");
  jitter_off.done = true;
  EXPECT_EQ(off.exit_code, 0) << off.output;
  double delayer_late_ms = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) delayer_late_ms = std::max(delayer_late_ms, DelayerWorstLateMs(i));
  EXPECT_EQ(first_change, "") << "the cluster changed under jitter";

  // Corosync's own account of the window: a reconfiguration ("A new membership") or a knet link lost is a change
  // even if shadowd's view missed it between samples; token warnings and retransmissions are counted.
  static const std::regex kReconfiguration(R"(A new membership|Members (joined|left)|link: host: \d+ link: \d+ is down)");
  static const std::regex kTokenTrouble(R"(Token has not been received|Retransmit List)");
  size_t token_warnings = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const std::string window_log = Tail(CorosyncLog(i), log_ends[i]);
    std::vector<std::string> reconfigurations = LinesWith(window_log, kReconfiguration);
    token_warnings += LinesWith(window_log, kTokenTrouble).size();
    std::string lines;
    for (const std::string& line : reconfigurations) lines += "\n  " + line;
    EXPECT_TRUE(reconfigurations.empty()) << hosts_[i].name << "'s Corosync reconfigured under jitter:" << lines;
  }

  // No fence, no promotion; the VM where it was, with the same shadow.
  auto at_end = CliJson(0, "status " + name);
  ASSERT_TRUE(at_end.ok()) << at_end.status().ToString();
  EXPECT_TRUE((*at_end)["fence"].is_null()) << "fenced: " << (*at_end)["fence"].dump();
  EXPECT_EQ(PromotionsOf(uuid), "") << "promoted under jitter";
  EXPECT_EQ((*at_end)["primary_host"], hosts_[0].name);
  EXPECT_EQ((*at_end)["state"], "Protected") << at_end->dump();
  ASSERT_EQ((*at_end)["shadows"].size(), 1u) << at_end->dump();
  EXPECT_EQ((*at_end)["shadows"][0], shadow_at_start) << "the shadow moved";
  auto state = conns_[0]->GetDomainState(name);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  const uint64_t failed = (*at_end)["replication"]["rounds_failed"].get<uint64_t>() - failed_at_start;

  double round_trip_sum = 0, round_trip_worst = 0;
  for (double round_trip : round_trips) {
    round_trip_sum += round_trip;
    round_trip_worst = std::max(round_trip_worst, round_trip);
  }
  // The worst one-way delay: the largest draw (delay + jitter) plus the delayer's worst lateness.
  std::printf("stability: %.0f s of 20 ms +- 10 ms jitter, %d samples, %llu rounds applied (%llu failed), %zu acks, "
              "knet ping RTT %.1f ms on average over %zu links (worst link %.1f ms), one-way delay at worst %.1f ms "
              "(30 ms drawn + %.1f ms late), %zu token warnings or retransmit lines in Corosync's logs, shadow on %s\n",
              ran, samples, static_cast<unsigned long long>(rounds - rounds_at_start),
              static_cast<unsigned long long>(failed), acks - acks_at_start,
              round_trips.empty() ? -1.0 : round_trip_sum / static_cast<double>(round_trips.size()), round_trips.size(),
              round_trip_worst, 30 + delayer_late_ms, delayer_late_ms, token_warnings, hosts_[shadow].name.c_str());
}

}  // namespace
}  // namespace vs::lab
