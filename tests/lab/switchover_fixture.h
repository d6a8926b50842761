// The lab fixture of the switchover tests: waiting for protection and for a switchover's record, and what every
// switchover must show afterwards (ExpectSwitchedOver). Shared by switchover_test.cc (every notice kind) and
// switchover_loop_test.cc (one guest moved many times in a row).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "images/oracle/serial_log.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {

using namespace std::chrono_literals;
using nlohmann::json;

class SwitchoverTest : public LabTest {
 protected:
  size_t IndexOf(const std::string& host) const {
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i].name == host) return i;
    }
    ADD_FAILURE() << "unknown host " << host;
    return 0;
  }

  // Waits until the VM is protected from `primary` with a replicated shadow; returns the shadow's host index.
  StatusOr<size_t> WaitProtected(const std::string& vm, size_t primary, std::chrono::seconds timeout = 180s) {
    json status;
    const bool ok = WaitUntil(
        [&] {
          auto s = CliJson(primary, "status " + vm);
          if (!s.ok()) return false;
          status = *s;
          return status["state"] == "Protected" && status["replication"].is_object() &&
                 status["replication"]["rounds_applied"].get<uint64_t>() >= 1;
        },
        timeout);
    if (!ok) return DeadlineExceeded(vm + " is not protected and replicated from " + hosts_[primary].name + ": " + status.dump());
    return IndexOf(status["shadows"][0]["host"]);
  }

  static int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

  // The lab tests' writing guest on hosts_[0] (128 MiB disk, 10 records/s, 8 MiB/s of memory dirtied), tagged
  // with 2 s rounds, once it acknowledges records and is protected; `*shadow` is its shadow's host index. What an
  // interrupted earlier run left under `name` (domains, images) goes first.
  std::unique_ptr<TestGuest> StartProtectedGuest(const std::string& name, size_t* shadow) {
    for (auto& conn : conns_) {
      (void)conn->DestroyDomain(name);
      (void)conn->UndefineDomain(name);
    }
    RemoveImages(name);
    auto started = TestGuest::Start(*conns_[0], hosts_[0], {},
                                    {.name = name, .disk_mib = 128, .kernel_args = "vs.rate=10 vs.dirty=32 vs.dirtyrate=8",
                                     .metadata = PolicyElement("vcpus='1' interval='2s'")});
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    if (!started.ok()) return nullptr;
    EXPECT_TRUE((*started)->WaitForAcks(5, 90s).ok()) << name << " never acknowledged a record";
    auto protected_on = WaitProtected(name, 0);
    EXPECT_TRUE(protected_on.ok()) << protected_on.status().ToString();
    if (!protected_on.ok()) return nullptr;
    *shadow = *protected_on;
    return std::move(*started);
  }
  // Removes every image of every host whose name starts with `name` (the guest's disk, and the files a moved
  // guest leaves behind).
  void RemoveImages(const std::string& name) {
    for (const LabHost& host : hosts_) {
      std::error_code ignored;
      for (const auto& entry : std::filesystem::directory_iterator(HostPath(host, "/var/lib/libvirt/images"), ignored)) {
        if (entry.path().filename().string().rfind(name, 0) == 0) std::filesystem::remove(entry.path(), ignored);
      }
    }
  }

  // The switchover record of `vm` on `host` requested at `since_ms` or later, once it is in one of `phases`.
  std::optional<json> WaitPhase(const std::string& vm, size_t host, int64_t since_ms,
                                const std::vector<std::string>& phases, std::chrono::seconds timeout) {
    json found;
    const bool seen = WaitUntil(
        [&] {
          auto list = CliJson(host, "switchovers");
          if (!list.ok() || !(*list)["records"].is_array()) return false;
          for (const json& record : (*list)["records"]) {
            if (record["vm_name"] == vm && std::stoll(record["requested_unix_ms"].get<std::string>()) >= since_ms &&
                std::find(phases.begin(), phases.end(), record["phase"].get<std::string>()) != phases.end()) {
              found = record;
              return true;
            }
          }
          return false;
        },
        timeout);
    return seen ? std::optional<json>(found) : std::nullopt;
  }

  // The switchover record of `vm` on `host` requested at `since_ms` or later, once it is finished (a guest that
  // failed after the move is finished too: the caller's assertions then say so instead of a timeout).
  StatusOr<json> WaitSwitchoverDone(const std::string& vm, size_t host, int64_t since_ms, std::chrono::seconds timeout) {
    std::optional<json> finished =
        WaitPhase(vm, host, since_ms,
                  {"SWITCHOVER_PHASE_DONE", "SWITCHOVER_PHASE_FAILED", "SWITCHOVER_PHASE_GUEST_FAILED"}, timeout);
    if (!finished) return DeadlineExceeded("no finished switchover of " + vm + " on " + hosts_[host].name);
    return *finished;
  }

  // What every switchover must show: the record is Done before the notice's deadline; the guest runs only on
  // the shadow host, keeps its boot and keeps acknowledging; the new host protects it with a new shadow that
  // is not on a draining host.
  // `source_leaving`: the move came from a notice or a drain of `from`, so no new shadow may go there; a plain
  // `virt-shadow switchover` leaves `from` a good home for the new shadow (its old image seeds it).
  // `fallback`: the health check failed on purpose and the plain --copy-storage-all migration was expected.
  void ExpectSwitchedOver(TestGuest& guest, const json& record, size_t from, size_t to, bool source_leaving = true,
                          bool fallback = false) {
    std::printf("%s -> %s (%s): %s\n", hosts_[from].name.c_str(), hosts_[to].name.c_str(),
                record["reason"].get<std::string>().c_str(), record.dump().c_str());
    ASSERT_EQ(record["phase"], "SWITCHOVER_PHASE_DONE") << record.dump();
    EXPECT_EQ(record["target_host"], hosts_[to].name);
    EXPECT_EQ(record.value("fallback", false), fallback)
        << (fallback ? "no fallback although the health check had to fail: " : "the health check failed: ")
        << record.dump();
    const int64_t deadline = std::stoll(record["deadline_unix_ms"].get<std::string>());
    const int64_t running = std::stoll(record["running_on_target_unix_ms"].get<std::string>());
    const int64_t finished = std::stoll(record["finished_unix_ms"].get<std::string>());
    EXPECT_GT(running, 0);
    EXPECT_LT(finished, deadline) << "the switchover finished after the notice's deadline";
    guest.MovedTo(*conns_[to]);
    auto state = conns_[to]->GetDomainState(guest.name());
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_EQ(*state, virt::DomainState::kRunning);
    auto left = conns_[from]->ListDomainNames();
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(std::count(left->begin(), left->end(), guest.name()), 0) << "the old host still has the domain";
    const auto log = oracle::ParseSerialLog(guest.SerialLog());
    EXPECT_LE(log.boot_ids.size(), 1u) << "the guest rebooted";
    ASSERT_TRUE(guest.WaitForAcks(log.acks.size() + 3, 60s).ok()) << "no progress on " << hosts_[to].name;
    // The VM runs on the image at its usual path: the top was flattened into the replica.
    auto xml = conns_[to]->GetDomainXml(guest.name());
    ASSERT_TRUE(xml.ok());
    EXPECT_NE(xml->find("file='" + guest.disk_path() + "'"), std::string::npos) << *xml;
    EXPECT_EQ(xml->find(".vs-top"), std::string::npos) << *xml;
    auto shadow = WaitProtected(guest.name(), to);
    ASSERT_TRUE(shadow.ok()) << shadow.status().ToString();
    if (source_leaving) {
      EXPECT_NE(*shadow, from) << "the new shadow went to the host that just got the notice";
    }
    EXPECT_NE(*shadow, to);
  }

  // The old host is back: it may take shadows again.
  void Undrain(size_t host) {
    CommandResult undrain = Cli(host, "undrain " + hosts_[host].name);
    EXPECT_EQ(undrain.exit_code, 0) << undrain.output;
  }
};

}  // namespace vs::lab
