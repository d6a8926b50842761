// Lab test of the primary's self-fence (issue 12, docs/failover.md "Self-fencing"): the writing guest runs on h1,
// protected with its shadow on another host; h1's link is cut (its processes live on). Sampled every 100 ms through
// h1's libvirtd unix socket (the host's private /run, seen from here: the cut also cuts the test's qemu+tcp
// connection), the guest must
// be paused within the bound: Corosync's detection (about 3.7 s with token 1000) plus fence_action (2 s), and stay
// paused for the whole cut; shadowd's record says how long the pause took from the quorum loss it noticed. After the
// heal h1 asks the shadow host (QueryPromotion): with no promotion the guest is resumed and makes progress. A shadow
// host without the QueryPromotion server (before branch `promote` is merged) answers UNIMPLEMENTED: then the guest
// must stay paused (checked), a start of it is refused by the hook with shadowd up and down (checked), and the
// resume is skipped with a note.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "images/oracle/serial_log.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

using Steady = std::chrono::steady_clock;

class PartitionTest : public SwitchoverTest {
 protected:
  // A connection to hosts_[at]'s libvirtd through its unix socket, which a cut link does not reach.
  std::unique_ptr<virt::Hypervisor> LocalSocket(size_t at) {
    auto conn = runtime_->Connect("qemu+unix:///system?socket=" + HostPath(hosts_[at], "/run/libvirt/libvirt-sock"),
                                  *clock_);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    return conn.ok() ? std::move(*conn) : nullptr;
  }
  static std::string StateName(const StatusOr<virt::DomainState>& state) {
    if (!state.ok()) return state.status().ToString();
    switch (*state) {
      case virt::DomainState::kRunning: return "running";
      case virt::DomainState::kPaused: return "paused";
      default: return std::string(virt::DomainStateName(*state));
    }
  }
  // The guest's state on hosts_[at] as its own libvirtd says, from inside the host's namespace.
  std::string StateInside(size_t at, const std::string& name) const {
    CommandResult result = RunCommand(LabScript() + " exec " + hosts_[at].name +
                                      " virsh -q -c qemu:///system domstate " + name + " 2>&1");
    std::string state = result.output;
    while (!state.empty() && (state.back() == '\n' || state.back() == ' ')) state.pop_back();
    return state;
  }
  bool QuorateWithAll(size_t at) const {
    auto reply = CliJson(at, "hosts");
    if (!reply.ok() || !reply->contains("membership")) return false;
    if (!(*reply)["membership"].value("quorate", false)) return false;
    for (const json& host : (*reply)["hosts"]) {
      if (!host.contains("membership") || host["membership"].value("state", "") != "member") return false;
    }
    return true;
  }
  static double SecondsSince(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }
};

TEST_F(PartitionTest, ACutPrimaryPausesItsVmWithinTheBoundAndResumesItAfterTheHealWhenNotPromoted) {
  ASSERT_EQ(hosts_.size(), 3u) << "the test needs the 3-host lab";
  size_t shadow = 0;
  std::unique_ptr<TestGuest> guest = StartProtectedGuest("pt-fence", &shadow);
  ASSERT_TRUE(guest);
  const std::string name = guest->name();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    ASSERT_TRUE(WaitUntil([&] { return QuorateWithAll(i); }, 30s)) << Cli(i, "hosts").output;
  }
  ASSERT_EQ(StateInside(0, name), "running");

  const std::string lab = LabScript();
  ASSERT_EQ(RunCommand(lab + " cut h1").exit_code, 0);
  const auto cut = Steady::now();
  struct Heal {
    std::string lab;
    bool done = false;
    ~Heal() {
      if (!done) RunCommand(lab + " heal h1");
    }
  } heal{lab};

  // Every 100 ms for 20 s: when it was first seen paused, and whether it ran unpaused after that.
  std::unique_ptr<virt::Hypervisor> h1 = LocalSocket(0);
  ASSERT_TRUE(h1);
  double paused_after = -1;
  int samples = 0, unpaused_after_pause = 0;
  while (SecondsSince(cut) < 20) {
    const std::string state = StateName(h1->GetDomainState(name));
    ++samples;
    if (state == "paused") {
      if (paused_after < 0) paused_after = SecondsSince(cut);
    } else if (paused_after >= 0) {
      ++unpaused_after_pause;
      ADD_FAILURE() << "h1's copy is '" << state << "' at " << SecondsSince(cut) << " s after the cut, after it was paused";
    }
    std::this_thread::sleep_for(100ms);
  }
  std::printf("cut h1: %s paused %.2f s after the cut (%d samples, %d unpaused after the pause)\n", name.c_str(),
              paused_after, samples, unpaused_after_pause);
  ASSERT_GE(paused_after, 0) << "h1 never paused its VM during 20 s of cut; shadowd log: " << HostPath(hosts_[0], "");
  // Corosync's detection (3.7 s measured, tests/lab/membership_test.cc) + fence_action (2 s) + 1 s of sampling and
  // process start-up slack.
  EXPECT_LT(paused_after, 3.7 + 2.0 + 1.0);

  auto status = CliJson(0, "status " + name);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_TRUE((*status)["fence"].is_object()) << status->dump();
  const json fence = (*status)["fence"];
  std::printf("cut h1: fence record %s\n", fence.dump().c_str());
  EXPECT_EQ(fence["state"], "fenced");
  EXPECT_EQ(fence["acted"], true);
  EXPECT_LT(fence["fence_latency_ms"].get<int64_t>(), 2000) << "the pause took longer than fence_action";
  auto hosts = CliJson(0, "hosts");
  ASSERT_TRUE(hosts.ok());
  ASSERT_EQ((*hosts)["fenced"].size(), 1u) << hosts->dump();
  CommandResult metrics = RunCommand(lab + " exec h1 curl -s --max-time 5 http://" + hosts_[0].address + ":9177/metrics");
  EXPECT_NE(metrics.output.find("virt_shadow_fenced_vms 1"), std::string::npos) << metrics.output;

  // The heal.
  ASSERT_EQ(RunCommand(lab + " heal h1").exit_code, 0);
  heal.done = true;
  const auto healed = Steady::now();
  json last;
  const bool settled = WaitUntil(
      [&] {
        auto s = CliJson(0, "status " + name);
        if (!s.ok() || !(*s)["fence"].is_object()) return false;
        last = (*s)["fence"];
        return last["state"] == "released" ||
               last.value("detail", "").find("does not implement the call") != std::string::npos;
      },
      60s);
  std::printf("heal h1: after %.2f s the fence record is %s\n", SecondsSince(healed), last.dump().c_str());
  ASSERT_TRUE(settled) << "h1 neither released nor kept its fence for want of an answer: " << last.dump();
  if (last["state"] != "released") {
    EXPECT_EQ(StateInside(0, name), "paused") << "unanswered, the VM must stay paused";
    EXPECT_EQ(last["state"], "fenced");
    // The fenced VM may not be started here: the hook refuses it from shadowd's record, and with shadowd down
    // (a booting host's autostart) from its fence marker.
    ASSERT_TRUE(h1->DestroyDomain(name).ok());
    Status refused = h1->StartDomain(name);
    std::printf("start of the fenced %s with shadowd up: %s\n", name.c_str(), refused.ToString().c_str());
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.ToString().find("is fenced on this host"), std::string::npos) << refused.ToString();
    ASSERT_EQ(RunCommand(lab + " shadowd h1 stop").exit_code, 0);
    Status refused_down = h1->StartDomain(name);
    std::printf("start of the fenced %s with shadowd down: %s\n", name.c_str(), refused_down.ToString().c_str());
    EXPECT_FALSE(refused_down.ok());
    EXPECT_NE(refused_down.ToString().find("this is its fence marker"), std::string::npos) << refused_down.ToString();
    EXPECT_EQ(RunCommand(lab + " shadowd h1 start").exit_code, 0);
    GTEST_SKIP() << "the shadow host " << hosts_[shadow].name
                 << " has no QueryPromotion server yet (branch promote): the VM stays paused, as it must";
  }
  EXPECT_EQ(StateInside(0, name), "running");
  const size_t acks = oracle::ParseSerialLog(guest->SerialLog()).acks.size();
  EXPECT_TRUE(guest->WaitForAcks(acks + 3, 60s).ok()) << "the resumed guest makes no progress";
}

}  // namespace
}  // namespace vs::lab
