// Lab test of membership and heartbeats (issue 12, part 1): every host's shadowd follows its Corosync node
// (scripts/lab.sh starts one per host; lab.sh install sets membership = corosync). With the lab up, every host
// sees the three shadowds as members of a quorate partition; cutting h3's link makes h1 and h2 see it absent while
// staying quorate, and h3 see itself without quorum; healing it brings all three back. The detection times are
// measured from the cut (the heal) to the first `virt-shadow hosts` answer that shows the change, polled on every
// host, and printed. A host whose shadowd is stopped (its Corosync running) is seen so by the others, as a host that
// cannot fence itself, until its shadowd is back.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

class MembershipTest : public LabTest {
 protected:
  // host -> membership state ("member", "absent", ...) and the partition's quorum, from `virt-shadow hosts`
  // on hosts_[at]; nullopt when the CLI failed or shadowd follows no membership.
  struct Seen {
    std::map<std::string, std::string> states;
    std::map<std::string, bool> shadowd_stopped;
    bool known = false;
    bool quorate = false;
  };
  std::optional<Seen> SeenFrom(size_t at) const {
    auto reply = CliJson(at, "hosts");
    if (!reply.ok() || !reply->contains("membership")) return std::nullopt;
    Seen seen;
    seen.known = (*reply)["membership"].value("known", false);
    seen.quorate = (*reply)["membership"].value("quorate", false);
    for (const json& host : (*reply)["hosts"]) {
      seen.states[host.value("name", "")] = host.contains("membership") ? host["membership"].value("state", "") : "";
      seen.shadowd_stopped[host.value("name", "")] =
          host.contains("membership") && host["membership"].value("shadowd_stopped", false);
    }
    return seen;
  }
  bool AllMembersAndQuorate(size_t at) const {
    auto seen = SeenFrom(at);
    if (!seen || !seen->known || !seen->quorate) return false;
    for (const LabHost& host : hosts_) {
      if (seen->states[host.name] != "member") return false;
    }
    return true;
  }
  static double SecondsSince(Steady::time_point t) {
    return std::chrono::duration<double>(Steady::now() - t).count();
  }
  // For every host, the seconds from `since` to its first `virt-shadow hosts` answer for which `done` holds,
  // polled every 100 ms by one thread per host for at most `limit`; hosts that never got there are missing.
  template <typename Done>
  std::map<std::string, double> PollEachHost(Steady::time_point since, std::chrono::seconds limit, Done done) const {
    std::vector<double> seconds(hosts_.size(), -1);
    std::vector<std::thread> pollers;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      pollers.emplace_back([&, i] {
        while (Steady::now() < since + limit) {
          auto seen = SeenFrom(i);
          if (seen && done(hosts_[i].name, *seen)) {
            seconds[i] = SecondsSince(since);
            return;
          }
          std::this_thread::sleep_for(100ms);
        }
      });
    }
    for (auto& poller : pollers) poller.join();
    std::map<std::string, double> reached;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (seconds[i] >= 0) reached[hosts_[i].name] = seconds[i];
    }
    return reached;
  }
};

TEST_F(MembershipTest, ACutHostIsSeenAbsentByTheQuorateRestAndLosesQuorumItselfThenRejoins) {
  ASSERT_EQ(hosts_.size(), 3u) << "the test needs the 3-host lab";
  const std::string lab = LabScript();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    EXPECT_TRUE(WaitUntil([&] { return AllMembersAndQuorate(i); }, 30s))
        << hosts_[i].name << " never saw all three shadowds as members of a quorate partition: "
        << Cli(i, "hosts").output;
  }
  ASSERT_FALSE(HasFailure());

  // The cut. Whatever happens below, the link comes back.
  ASSERT_EQ(RunCommand(lab + " cut h3").exit_code, 0);
  const auto cut = Steady::now();
  struct Heal {
    std::string lab;
    ~Heal() { RunCommand(lab + " heal h3"); }
  } heal{lab};

  // h1 and h2: h3 absent, quorum kept (2 of 3 votes); h3: quorum lost. Each host polled by a thread of its own,
  // so that a slow answer from one (its loop held up by the cut peer) does not delay the others' measurement.
  std::map<std::string, double> detected = PollEachHost(cut, 20s, [](const std::string& name, const Seen& seen) {
    if (name == "h3") return seen.known && !seen.quorate;
    auto h3 = seen.states.find("h3");
    return seen.known && seen.quorate && h3 != seen.states.end() && h3->second == "absent";
  });
  for (const auto& [host, seconds] : detected) std::printf("cut h3: %s saw it after %.2f s\n", host.c_str(), seconds);
  std::fflush(stdout);
  for (const char* host : {"h1", "h2", "h3"}) {
    ASSERT_TRUE(detected.count(host)) << host << " did not see the cut within 20 s: "
                                      << Cli(host[1] - '1', "hosts").output;
    EXPECT_LT(detected[host], 8.0) << host << ": Corosync with token 1000 ms should tell within about 4 s";
  }
  // h1 and h2 still see each other; the metrics say the same as the CLI.
  auto h1 = SeenFrom(0);
  ASSERT_TRUE(h1);
  EXPECT_EQ(h1->states["h2"], "member");
  EXPECT_EQ(h1->states["h1"], "member");
  CommandResult metrics = RunCommand("curl -s --max-time 5 http://" + hosts_[0].address + ":9177/metrics");
  EXPECT_NE(metrics.output.find("virt_shadow_host_member{host=\"h3\"} 0"), std::string::npos) << metrics.output;
  EXPECT_NE(metrics.output.find("virt_shadow_host_member{host=\"h2\"} 1"), std::string::npos) << metrics.output;
  EXPECT_NE(metrics.output.find("virt_shadow_quorate 1"), std::string::npos) << metrics.output;
  EXPECT_NE(metrics.output.find("virt_shadow_host_last_seen_timestamp_seconds{host=\"h3\"}"), std::string::npos);

  // The heal: all three members of one quorate partition again.
  ASSERT_EQ(RunCommand(lab + " heal h3").exit_code, 0);
  const auto healed = Steady::now();
  std::map<std::string, double> rejoined = PollEachHost(healed, 30s, [this](const std::string&, const Seen& seen) {
    if (!seen.known || !seen.quorate) return false;
    for (const LabHost& host : hosts_) {
      if (!seen.states.count(host.name) || seen.states.at(host.name) != "member") return false;
    }
    return true;
  });
  for (const auto& [host, seconds] : rejoined) {
    std::printf("heal h3: %s saw all three members, quorate, after %.2f s\n", host.c_str(), seconds);
  }
  std::fflush(stdout);
  for (size_t i = 0; i < hosts_.size(); ++i) {
    EXPECT_TRUE(rejoined.count(hosts_[i].name)) << hosts_[i].name << " did not see the heal within 30 s: "
                                                << Cli(i, "hosts").output;
  }
}

TEST_F(MembershipTest, AHostWhoseShadowdStoppedIsSeenAsOneThatCannotFenceItselfUntilItIsBack) {
  ASSERT_EQ(hosts_.size(), 3u) << "the test needs the 3-host lab";
  ASSERT_TRUE(WaitUntil([&] { return AllMembersAndQuorate(0); }, 30s)) << Cli(0, "hosts").output;
  const std::string lab = LabScript();
  ASSERT_EQ(RunCommand(lab + " shadowd h3 kill").exit_code, 0);
  struct Restart {
    std::string lab;
    ~Restart() { RunCommand(lab + " shadowd h3 start"); }
  } restart{lab};
  auto stopped_seen = [&] {
    auto seen = SeenFrom(0);
    return seen && seen->quorate && seen->states["h3"] == "absent" && seen->shadowd_stopped["h3"];
  };
  EXPECT_TRUE(WaitUntil(stopped_seen, 20s)) << Cli(0, "hosts").output;
  EXPECT_NE(Cli(0, "hosts").output.find("(shadowd stopped: no self-fence)"), std::string::npos)
      << Cli(0, "hosts").output;
  auto seen = SeenFrom(1);
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->shadowd_stopped["h3"]) << "h2 sees it too";
  EXPECT_FALSE(seen->shadowd_stopped["h1"]);

  ASSERT_EQ(RunCommand(lab + " shadowd h3 start").exit_code, 0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto back = SeenFrom(0);
        return back && back->states["h3"] == "member" && !back->shadowd_stopped["h3"];
      },
      30s))
      << Cli(0, "hosts").output;
}

}  // namespace
}  // namespace vs::lab
