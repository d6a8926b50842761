// Lab test: shadowd on the shadow host is killed with SIGKILL in the middle of a crash promotion and restarted; the
// promotion completes exactly once (issue 12, docs/failover.md "How (the lifecycle)").
//
// The primary host of a protected, writing guest crashes at a random moment of the replication interval (`lab.sh
// crash`). The test watches the shadow host's shadowd log, where every stored phase of the promotion record is
// logged right after its write ("promotion of VM: Defined"), every 5 ms, and once DEFINED is stored (QEMU's start
// under way) it freezes that host's libvirtd (SIGSTOP) at a random moment 0 to 250 ms later, kills shadowd (`lab.sh
// shadowd HOST kill`), and thaws libvirtd and starts shadowd again at independent random moments up to 1 s later.
//
// Why the freeze: measured in the lab (shadowd's log stamps, TCG, 2 shared cores), settling the replica (DECIDED)
// takes 2 to 16 ms, defining the VM and undefining the shadow (SETTLED) 10 to 150 ms, starting QEMU (DEFINED) 0.33
// to 0.42 s (1.1 to 2.1 s while libvirt re-probed QEMU's capabilities on every call, before the lab fixed
// /dev/kvm's mode), growing it (STARTED) 3 to 36 ms. A kill through lab.sh (a bash start, tens of milliseconds) sent
// 0 to 500 ms after DEFINED landed after DONE once in three runs. With libvirtd frozen the promotion cannot pass
// QEMU's start or the grow (libvirt calls), so the kill lands where the freeze found it: QEMU not launched yet, its
// start in flight, or (rarely) started. The stage is read back from the dead shadowd's log; anything but DEFINED or
// STARTED fails the test.
//
// Exactly once, afterwards: one promotion record for the VM, DONE, with no error; shadowd's log shows one decision
// and one start (either "started on this host", or "already runs" when the restarted shadowd found QEMU started
// before the kill), never a refused second start; libvirt's log of the domain shows one QEMU start and the guest's
// serial log one new boot; the shadow host holds one definition with the VM's UUID, under its name, and none of the
// shadow. Then what failover_test.cc checks: the oracle finds a gap-free prefix on the promoted disk, the guest
// writes, and it gets a new shadow on the third host. The crashed host is revived at the end (also when an
// assertion failed), so that the lab stays usable for the tests after this one.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/lab/crash_promotion_fixture.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using Steady = std::chrono::steady_clock;

// Runs `restore` when the test body leaves, a failed ASSERT included.
class OnExit {
 public:
  explicit OnExit(std::function<void()> restore) : restore_(std::move(restore)) {}
  ~OnExit() { restore_(); }
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;

 private:
  std::function<void()> restore_;
};

std::string ReadFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t FileSize(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<size_t>(size);
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// The unix ms of a shadowd log line ("2026-12-05T13:35:21.573Z shadowd: ...").
std::optional<int64_t> LineMs(const std::string& line) {
  std::tm utc{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                  &utc.tm_min, &utc.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&utc)) * 1000 + ms;
}

// shadowd's log lines about the promotion of `vm`, each with its time.
std::vector<std::pair<int64_t, std::string>> PromotionLines(const std::string& log, const std::string& vm) {
  std::vector<std::pair<int64_t, std::string>> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("promotion: ") == std::string::npos || line.find(vm) == std::string::npos) continue;
    if (auto ms = LineMs(line)) lines.emplace_back(*ms, line);
  }
  return lines;
}

// The last phase of `vm`'s promotion record that shadowd's log says was stored: "Decided" (its "promoting" line),
// "Settled", "Defined", "Started", "Done" or "Failed" (Promotions::Run logs each phase after its write); "" when
// none was.
std::string StoredPhase(const std::string& log, const std::string& vm) {
  std::string phase;
  for (const auto& [ms, line] : PromotionLines(log, vm)) {
    if (line.find("promoting " + vm + " (") != std::string::npos) phase = "Decided";
    const std::string of = "promotion of " + vm + ": ";
    const size_t at = line.find(of);
    if (at == std::string::npos) continue;
    const std::string word = line.substr(at + of.size(), line.find_first_of(" \n", at + of.size()) - at - of.size());
    for (const char* stored : {"Settled", "Defined", "Started", "Done", "Failed"}) {
      if (word == stored) phase = word;
    }
  }
  return phase;
}

std::string UuidOf(const std::string& xml) {
  const size_t start = xml.find("<uuid>");
  const size_t end = xml.find("</uuid>");
  if (start == std::string::npos || end == std::string::npos || end < start) return "";
  return xml.substr(start + 6, end - start - 6);
}

class PromotionRestartTest : public CrashPromotionTest {
 protected:
  std::string ShadowdLog(size_t host) const { return LabDir() + "/" + hosts_[host].name + "/shadowd.log"; }
  // libvirt's log of `vm`'s QEMU on hosts_[host]: one "starting up" line per start.
  std::string QemuLog(size_t host, const std::string& vm) const {
    return HostPath(hosts_[host], "/var/log/libvirt/qemu/" + vm + ".log");
  }
  // The pid of hosts_[host]'s libvirtd (the lab's hosts share the machine's pid namespace).
  StatusOr<pid_t> LibvirtdPid(size_t host) const {
    const std::string path = HostPath(hosts_[host], "/run/libvirt/libvirtd.pid");
    std::ifstream in(path);
    long pid = 0;
    if (!(in >> pid) || pid <= 0) return NotFound("no libvirtd pid in " + path);
    return static_cast<pid_t>(pid);
  }
};

TEST_F(PromotionRestartTest, AShadowdKilledMidPromotionAndRestartedCompletesItExactlyOnce) {
  ASSERT_GE(hosts_.size(), 3u) << "needs three hosts: the crashed one, the shadow host, a home for the new shadow";
  const std::string lab = LabScript();
  size_t shadow = 0;
  std::unique_ptr<TestGuest> guest = StartProtectedGuest("pk-restart", &shadow);
  ASSERT_NE(guest, nullptr);
  ASSERT_NE(shadow, 0u);
  const std::string vm = guest->name();
  const std::string shadow_host = hosts_[shadow].name;
  auto primary_status = CliJson(0, "status " + vm);
  ASSERT_TRUE(primary_status.ok()) << primary_status.status().ToString();
  const std::string vm_uuid = (*primary_status)["uuid"];
  ASSERT_FALSE(vm_uuid.empty());

  // Whatever happens below, the tests after this one need h1 back and the shadow host's shadowd running.
  bool crashed = false;
  bool shadowd_killed = false;
  pid_t libvirtd_frozen = 0;
  OnExit restore([&] {
    if (libvirtd_frozen != 0) (void)::kill(libvirtd_frozen, SIGCONT);
    if (shadowd_killed) (void)RunCommand(lab + " shadowd " + shadow_host + " start");
    if (!crashed) return;
    CommandResult revive = RunCommand(lab + " revive " + hosts_[0].name);
    EXPECT_EQ(revive.exit_code, 0) << revive.output;
    (void)Virsh(0, "destroy " + vm);
    (void)Virsh(0, "undefine " + vm + " --checkpoints-metadata --snapshots-metadata");
  });

  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = CliJson(0, "status " + vm);
        return s.ok() && (*s)["replication"].is_object() && (*s)["replication"]["rounds_applied"].get<uint64_t>() >= 3;
      },
      120s))
      << "fewer than 3 rounds of " << vm;
  // Where this run's lines start in the logs that earlier runs (and the shadow's start-up) wrote to.
  const std::string log_path = ShadowdLog(shadow);
  const size_t log_offset = FileSize(log_path);
  const size_t qemu_log_offset = FileSize(QemuLog(shadow, vm));

  std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 2000)(rng)));
  const int64_t crash_ms = NowMs();
  CommandResult crash = RunCommand(lab + " crash " + hosts_[0].name);
  crashed = true;
  ASSERT_EQ(crash.exit_code, 0) << crash.output;
  const std::string crashed_log = guest->SerialLog();
  const oracle::SerialLog before = oracle::ParseSerialLog(crashed_log);
  ASSERT_FALSE(before.acks.empty());
  ASSERT_EQ(before.boot_ids.size(), 1u);

  // Watch the promotion on the shadow host until DEFINED is stored, then kill its shadowd at a random moment of
  // QEMU's start.
  std::string seen;
  const auto watch_until = Steady::now() + 120s;
  while (Steady::now() < watch_until) {
    seen = StoredPhase(ReadFrom(log_path, log_offset), vm);
    if (!seen.empty() && seen != "Decided" && seen != "Settled") break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(seen, "Defined") << "the watcher did not catch " << vm << "'s promotion on " << shadow_host
                             << " in DEFINED (it saw '" << seen << "'):\n"
                             << ReadFrom(log_path, log_offset);
  // Freeze the shadow host's libvirtd (SIGSTOP) at a random moment of QEMU's start: from then on the promotion
  // cannot pass it (starting QEMU and growing it are libvirt calls), so the kill through lab.sh lands in the stage
  // the freeze found, however long bash takes.
  const int freeze_after_ms = std::uniform_int_distribution<int>(0, 250)(rng);
  std::this_thread::sleep_for(std::chrono::milliseconds(freeze_after_ms));
  auto libvirtd = LibvirtdPid(shadow);
  ASSERT_TRUE(libvirtd.ok()) << libvirtd.status().ToString();
  ASSERT_EQ(::kill(*libvirtd, SIGSTOP), 0) << "SIGSTOP to " << shadow_host << "'s libvirtd " << *libvirtd;
  libvirtd_frozen = *libvirtd;
  const int64_t kill_ms = NowMs();
  CommandResult kill = RunCommand(lab + " shadowd " + shadow_host + " kill");
  shadowd_killed = true;
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  // The dead shadowd's log is final: the last phase it stored is the stage the kill landed in.
  const std::string killed_log = ReadFrom(log_path, log_offset);
  const std::string at_kill = StoredPhase(killed_log, vm);
  // In DEFINED, where QEMU's start was: libvirt writes the domain's pid file once QEMU runs, before its start call
  // returns (libvirtd itself cannot be asked: it is frozen).
  std::string start_at_kill;
  if (at_kill == "Defined") {
    const bool start_returned = killed_log.find(vm + " started on this host") != std::string::npos;
    const bool qemu_launched = std::filesystem::exists(HostPath(hosts_[shadow], "/run/libvirt/qemu/" + vm + ".pid"));
    start_at_kill = start_returned ? " (libvirt's start had returned)"
                    : qemu_launched ? " (QEMU's start in flight)"
                                    : " (QEMU not launched yet)";
  }
  std::printf("kill -9 of %s's shadowd, its libvirtd frozen %d ms after DEFINED was seen: stage at the kill %s%s\n",
              shadow_host.c_str(), freeze_after_ms, at_kill.c_str(), start_at_kill.c_str());
  ASSERT_TRUE(at_kill == "Defined" || at_kill == "Started")
      << "the kill did not land in QEMU's start: the stage at the kill was '" << at_kill << "':\n"
      << killed_log;

  // libvirtd thawed and shadowd restarted at independent random moments: the restarted shadowd finds QEMU not yet
  // started, starting or running, and may itself wait for libvirtd.
  const int thaw_after_ms = std::uniform_int_distribution<int>(0, 1000)(rng);
  const int restart_after_ms = std::uniform_int_distribution<int>(0, 1000)(rng);
  const auto killed_at = Steady::now();
  auto thaw = [&] {
    EXPECT_EQ(::kill(*libvirtd, SIGCONT), 0) << "SIGCONT to " << shadow_host << "'s libvirtd";
    libvirtd_frozen = 0;
  };
  if (thaw_after_ms <= restart_after_ms) {
    std::this_thread::sleep_until(killed_at + std::chrono::milliseconds(thaw_after_ms));
    thaw();
  }
  std::this_thread::sleep_until(killed_at + std::chrono::milliseconds(restart_after_ms));
  const int64_t restart_ms = NowMs();
  CommandResult restart = RunCommand(lab + " shadowd " + shadow_host + " start");
  ASSERT_EQ(restart.exit_code, 0) << restart.output;
  shadowd_killed = false;
  if (libvirtd_frozen != 0) {
    std::this_thread::sleep_until(killed_at + std::chrono::milliseconds(thaw_after_ms));
    thaw();
  }

  json status;
  const bool done = WaitPromotionDone(shadow, vm, status);
  const std::string promotion_log = ReadFrom(log_path, log_offset);
  std::printf("shadowd's log on %s, from the crash (+ms):\n", shadow_host.c_str());
  for (const auto& [ms, line] : PromotionLines(promotion_log, vm)) {
    std::printf("  %+7lld %s\n", static_cast<long long>(ms - crash_ms), line.c_str());
  }
  std::printf("  %+7lld (the kill), %+lld (the restart, %d ms after lab.sh's kill returned; libvirtd thawed %d ms "
              "after it)\n",
              static_cast<long long>(kill_ms - crash_ms), static_cast<long long>(restart_ms - crash_ms),
              restart_after_ms, thaw_after_ms);
  ASSERT_TRUE(done) << "the promotion of " << vm << " did not complete after the restart: " << status.dump();
  const json& p = status["promotion"];
  std::printf("promotion: %s\n", p.dump().c_str());
  // The restarted shadowd resumes at once: its start-up must not wait for the crashed host (it waited 38 to 43 s
  // in libvirt's connect to h1 before LibvirtCluster tried libvirtd's port with a bound first).
  int64_t done_ms = 0;
  for (const auto& [ms, line] : PromotionLines(promotion_log, vm)) {
    if (line.find("promotion of " + vm + ": Done") != std::string::npos) done_ms = ms;
  }
  std::printf("restart -> DONE %.1f s\n", (done_ms - restart_ms) / 1000.0);
  EXPECT_LT(done_ms - restart_ms, 15000) << promotion_log;

  // One promotion record, the one decided before the kill, DONE without an error.
  EXPECT_EQ(p["primary_host"], hosts_[0].name);
  EXPECT_EQ(p["error"], "") << p.dump();
  EXPECT_GT(p["decided_unix_ms"].get<int64_t>(), crash_ms);
  EXPECT_LT(p["decided_unix_ms"].get<int64_t>(), kill_ms);
  EXPECT_EQ(CountOf(promotion_log, "promoting " + vm + " ("), 1u) << promotion_log;
  EXPECT_EQ(CountOf(promotion_log, "promotion of " + vm + ": Done"), 1u) << promotion_log;
  // One start: by the shadowd that was killed (its start returned, or QEMU started after the kill) or by the
  // restarted one; never a second one that libvirt refused.
  EXPECT_EQ(CountOf(promotion_log, vm + " started on this host") +
                CountOf(promotion_log, vm + " already runs (started before shadowd restarted)"),
            1u)
      << promotion_log;
  EXPECT_EQ(CountOf(promotion_log, "already running"), 0u) << promotion_log;
  const std::string qemu_log = ReadFrom(QemuLog(shadow, vm), qemu_log_offset);
  EXPECT_EQ(CountOf(qemu_log, "starting up"), 1u) << "QEMU's starts of " << vm << " on " << shadow_host << ":\n"
                                                  << qemu_log;

  // Defined once on the shadow host, under its own name and UUID; the shadow's definition is gone.
  guest->MovedTo(*conns_[shadow]);
  auto state = conns_[shadow]->GetDomainState(vm);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  auto names = conns_[shadow]->ListDomainNames();
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  std::vector<std::string> with_vm_uuid;
  for (const std::string& name : *names) {
    EXPECT_NE(name, vm + "-shadow") << "the shadow's definition is still there";
    auto xml = conns_[shadow]->GetDomainXml(name);
    ASSERT_TRUE(xml.ok()) << xml.status().ToString();
    if (UuidOf(*xml) == vm_uuid) with_vm_uuid.push_back(name);
  }
  EXPECT_EQ(with_vm_uuid, std::vector<std::string>{vm});

  // One new boot of the guest since the crash, resuming after the last record the replica held; it writes.
  StatusOr<uint64_t> recovered = WaitPromotedBoot(*guest, crashed_log);
  ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();
  ASSERT_LE(*recovered, before.acks.back().seq);
  std::printf("records: last acknowledged %llu, recovered %llu\n",
              static_cast<unsigned long long>(before.acks.back().seq), static_cast<unsigned long long>(*recovered));
  ASSERT_TRUE(guest->WaitForAcks(before.acks.size() + 5, 120s).ok()) << "the promoted guest does not write";
  EXPECT_EQ(oracle::ParseSerialLog(guest->SerialLog()).boot_ids.size(), 2u)
      << "more than one boot of " << vm << " after the crash";

  ExpectGapFreePrefix(*guest, shadow, crashed_log, before, *recovered);
  if (HasFatalFailure()) return;

  // Protected again: a new shadow on the third host (not the crashed one), replicated.
  auto new_shadow = WaitProtected(vm, shadow);
  ASSERT_TRUE(new_shadow.ok()) << new_shadow.status().ToString();
  EXPECT_NE(*new_shadow, 0u) << "the new shadow went to the crashed host";
  EXPECT_NE(*new_shadow, shadow);
}

}  // namespace
}  // namespace vs::lab
