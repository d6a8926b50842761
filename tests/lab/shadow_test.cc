// Lab tests of "tag a VM and get a shadow": the real hook in every host's libvirtd, a real shadowd per host
// (scripts/lab.sh install), the virt-shadow CLI, and shadows defined on real peer libvirtds.
//
// The lab fixture runs shadowd with a 5 s grace time (VS_LAB_GRACE_SECONDS in tests/lab/CMakeLists.txt), so
// releases are observable within a test. Each test cleans up its guests and waits for their shadows to go.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
constexpr char kNs[] = "http://virt-shadow.org/xmlns/policy/1.0";

std::string Policy(const std::string& attributes) { return PolicyElement(attributes); }

struct FoundShadow {
  size_t host = 0;  // index into hosts_
  std::string xml;
};

class ShadowTest : public LabTest {
 protected:
  // Every domain named `name` + "-shadow" on any lab host.
  std::vector<FoundShadow> Shadows(const std::string& primary) {
    std::vector<FoundShadow> found;
    for (size_t i = 0; i < conns_.size(); ++i) {
      auto names = conns_[i]->ListDomainNames();
      if (!names.ok()) continue;
      for (const auto& n : *names) {
        if (n != primary + "-shadow") continue;
        auto xml = conns_[i]->GetDomainXml(n);
        if (xml.ok()) found.push_back({i, *xml});
      }
    }
    return found;
  }

  // Stops the guest and waits until its shadow and replica are released (grace time included).
  void StopAndExpectRelease(std::unique_ptr<TestGuest> guest) {
    std::string name = guest->name();
    guest.reset();
    EXPECT_TRUE(WaitUntil([&] { return Shadows(name).empty(); }, 60s)) << "the shadow of " << name << " stayed";
  }

  static std::string Attribute(const std::string& xml, const std::string& element, const std::string& attribute) {
    auto at = xml.find("<" + element);
    if (at == std::string::npos) return "";
    auto end = xml.find('>', at);
    auto a = xml.find(attribute + "=", at);
    if (a == std::string::npos || a > end) return "";
    char quote = xml[a + attribute.size() + 1];
    auto start = a + attribute.size() + 2;
    return xml.substr(start, xml.find(quote, start) - start);
  }
  static std::string ElementText(const std::string& xml, const std::string& element) {
    auto at = xml.find("<" + element);
    if (at == std::string::npos) return "";
    auto start = xml.find('>', at) + 1;
    return xml.substr(start, xml.find('<', start) - start);
  }
};

TEST_F(ShadowTest, TaggedWithVirshMetadataGetsAReducedShadowInAnotherZoneAndUntagReleasesIt) {
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {}, {.name = "st-tag", .memory_mib = 256});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  auto primary_xml = conns_[0]->GetDomainXml("st-tag");
  ASSERT_TRUE(primary_xml.ok());
  const std::string primary_uuid = ElementText(*primary_xml, "uuid");
  EXPECT_TRUE(Shadows("st-tag").empty()) << "an untagged VM got a shadow";

  // Tag it live, the way a virsh user would; shadowd sees libvirt's metadata-change event.
  CommandResult tag = Virsh(0, "metadata st-tag --uri " + std::string(kNs) +
                                   " --key shadow --set \"<policy vcpus='1' memory='50%'/>\" --live --config");
  ASSERT_EQ(tag.exit_code, 0) << tag.output;
  ASSERT_TRUE(WaitUntil([&] { return Shadows("st-tag").size() == 1; }, 30s)) << "no shadow appeared";

  FoundShadow shadow = Shadows("st-tag")[0];
  const LabHost& target = hosts_[shadow.host];
  EXPECT_NE(target.zone, hosts_[0].zone) << "the shadow is in the primary's zone although another zone has room";
  EXPECT_EQ(ElementText(shadow.xml, "currentMemory"), "131072") << "shadow memory is not half of 256 MiB";
  EXPECT_EQ(ElementText(shadow.xml, "memory"), "262144") << "the shadow must keep the primary's maximum";
  EXPECT_EQ(Attribute(shadow.xml, "shadow:shadow-of", "uuid"), primary_uuid);
  EXPECT_EQ(Attribute(shadow.xml, "shadow:shadow-of", "host"), hosts_[0].name);
  EXPECT_EQ(shadow.xml.find("shadow:policy"), std::string::npos) << "the shadow carries the primary's policy";
  auto state = conns_[shadow.host]->GetDomainState("st-tag-shadow");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, virt::DomainState::kShutoff) << "a shadow is defined, not running";
  const std::string replica = HostPath(target, (*guest)->disk_path());
  ASSERT_TRUE(std::filesystem::exists(replica)) << "no replica image at the primary's path on " << target.name;
  CommandResult info = RunCommand("qemu-img info -U --output=json '" + replica + "'");
  EXPECT_NE(info.output.find("\"virtual-size\": 67108864"), std::string::npos) << info.output;

  // The CLI shows it, and explains the choice.
  auto status = CliJson(0, "status st-tag");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ((*status)["state"], "Protected") << status->dump();
  auto explain = CliJson(0, "explain st-tag");
  ASSERT_TRUE(explain.ok()) << explain.status().ToString();
  bool primary_rejected = false;
  for (const auto& host : (*explain)["hosts"]) {
    if (host["host"] == hosts_[0].name) primary_rejected = host["verdict"] == "rejected";
  }
  EXPECT_TRUE(primary_rejected) << explain->dump();
  // `hosts` serves shadowd's periodic snapshot of the cluster (refreshed every 2 s in the lab): the new shadow's
  // reservation shows on its host by the next refresh.
  StatusOr<nlohmann::json> hosts = Internal("not asked yet");
  auto target_view = [&]() -> nlohmann::json {
    for (const auto& host : (*hosts)["hosts"]) {
      if (host["name"] == target.name) return host;
    }
    return {};
  };
  EXPECT_TRUE(WaitUntil([&] {
    hosts = CliJson(0, "hosts");
    return hosts.ok() && target_view().value("shadows", 0) >= 1;
  }, 15s)) << (hosts.ok() ? hosts->dump() : hosts.status().ToString());
  ASSERT_TRUE(hosts.ok());
  EXPECT_EQ((*hosts)["hosts"].size(), hosts_.size()) << hosts->dump();
  for (const auto& host : (*hosts)["hosts"]) EXPECT_TRUE(host["up"].get<bool>()) << host.dump();
  EXPECT_GE(target_view().value("reserved_memory_kib", uint64_t{0}), 131072u) << hosts->dump();
  CommandResult human = Cli(0, "explain st-tag");
  EXPECT_EQ(human.exit_code, 0) << human.output;
  std::printf("%s", human.output.c_str());

  // Untag: the shadow and its replica go after the grace time; the VM keeps running.
  CommandResult untag = Virsh(0, "metadata st-tag --uri " + std::string(kNs) + " --remove --live --config");
  ASSERT_EQ(untag.exit_code, 0) << untag.output;
  EXPECT_TRUE(WaitUntil([&] { return Shadows("st-tag").empty(); }, 60s)) << "the shadow was not released";
  EXPECT_TRUE(WaitUntil([&] { return !std::filesystem::exists(replica); }, 10s)) << "the replica stayed";
  auto running = conns_[0]->GetDomainState("st-tag");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, virt::DomainState::kRunning);
}

TEST_F(ShadowTest, InvalidPolicyIsReportedNamingTheFieldWhileTheVmRuns) {
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {},
                                {.name = "st-invalid", .memory_mib = 128, .metadata = Policy("memory='12XB'")});
  ASSERT_TRUE(guest.ok()) << "a fail-open VM with an invalid policy must start: " << guest.status().ToString();
  StatusOr<nlohmann::json> status = Internal("not asked yet");
  ASSERT_TRUE(WaitUntil([&] {
    status = CliJson(0, "status st-invalid");
    return status.ok() && !(*status)["last_error"].get<std::string>().empty();
  }, 20s)) << (status.ok() ? status->dump() : status.status().ToString());
  EXPECT_NE((*status)["last_error"].get<std::string>().find("memory"), std::string::npos) << status->dump();
  EXPECT_NE((*status)["last_error"].get<std::string>().find("12XB"), std::string::npos) << status->dump();
  EXPECT_TRUE(Shadows("st-invalid").empty());
  auto state = conns_[0]->GetDomainState("st-invalid");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  CommandResult human = Cli(0, "status st-invalid");
  std::printf("%s", human.output.c_str());

  // Fixing it live places a shadow, without restarting the VM.
  CommandResult fix = Virsh(0, "metadata st-invalid --uri " + std::string(kNs) +
                                   " --key shadow --set \"<policy memory='64MiB'/>\" --live --config");
  ASSERT_EQ(fix.exit_code, 0) << fix.output;
  EXPECT_TRUE(WaitUntil([&] { return Shadows("st-invalid").size() == 1; }, 30s)) << "no shadow after the fix";
  StopAndExpectRelease(std::move(*guest));
}

TEST_F(ShadowTest, FailClosedInvalidPolicyRefusesTheStartWithTheReason) {
  CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh st-closed /var/lib/libvirt/images/none.qcow2 " +
                                 LabDir() + "/logs/st-closed.log --memory 128 --metadata \"" +
                                 Policy("critical='yes' vcpus='zero'") + "\"");
  ASSERT_EQ(xml.exit_code, 0) << xml.output;
  ASSERT_TRUE(conns_[0]->DefineDomain(xml.output).ok());
  Status started = conns_[0]->StartDomain("st-closed");
  EXPECT_FALSE(started.ok()) << "a critical VM with an invalid policy started";
  EXPECT_NE(started.message().find("vcpus"), std::string::npos) << started.ToString();
  ASSERT_TRUE(conns_[0]->UndefineDomain("st-closed").ok());
}

TEST_F(ShadowTest, LivePolicyChangeResizesTheShadowWithoutRestartingTheVm) {
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {},
                                {.name = "st-live", .memory_mib = 256, .metadata = Policy("memory='50%'")});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  ASSERT_TRUE((*guest)->WaitForAcks(3, 90s).ok());
  ASSERT_TRUE(WaitUntil([&] { return Shadows("st-live").size() == 1; }, 30s)) << "no shadow appeared";
  EXPECT_EQ(ElementText(Shadows("st-live")[0].xml, "currentMemory"), "131072");
  CommandResult id_before = Virsh(0, "domid st-live");

  CommandResult change = Virsh(0, "metadata st-live --uri " + std::string(kNs) +
                                      " --key shadow --set \"<policy memory='96MiB'/>\" --live --config");
  ASSERT_EQ(change.exit_code, 0) << change.output;
  EXPECT_TRUE(WaitUntil([&] {
    auto found = Shadows("st-live");
    return found.size() == 1 && ElementText(found[0].xml, "currentMemory") == "98304";
  }, 40s)) << "the shadow was not resized to 96 MiB";
  EXPECT_EQ(Virsh(0, "domid st-live").output, id_before.output) << "the VM was restarted";
  EXPECT_EQ(oracle::ParseSerialLog((*guest)->SerialLog()).boot_ids.size(), 1u) << "the guest rebooted";
  StopAndExpectRelease(std::move(*guest));
}

// The hook runs in every start; with shadowd down or hung it must not hold the start for more than 50 ms, and
// what it saw is spooled and replayed when shadowd is back.
TEST_F(ShadowTest, WithShadowdDownTheHookIsQuickAndItsEventIsReplayedLater) {
  ASSERT_EQ(RunCommand(LabScript() + " shadowd h1 stop").exit_code, 0);
  // The domain is defined first, so that the hook gets the XML libvirt hands it (with a <uuid>).
  auto guest = TestGuest::Define(*conns_[0], hosts_[0], {},
                                 {.name = "st-down", .memory_mib = 128, .metadata = Policy("vcpus='1'")});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  auto domain_xml = conns_[0]->GetDomainXml("st-down");
  ASSERT_TRUE(domain_xml.ok());
  const std::string xml_file = LabDir() + "/st-down-probe.xml";
  std::ofstream(xml_file) << *domain_xml;
  // The installed hook itself (the build's or the package's, HookPath), run as libvirtd runs it, against /bin/true
  // run the same way in the same loop: on 2 shared cores even an empty process takes tens of ms to fork and exec,
  // and that is not the hook's doing. 7 alternating runs each; the medians are the figures.
  const std::string hook_path = HookPath(hosts_[0]);
  std::vector<double> hook_ms, true_ms;
  for (int i = 0; i < 7; ++i) {
    for (bool hook : {true, false}) {
      std::string program = hook ? hook_path + " st-down prepare begin -" : "/bin/true";
      CommandResult r = RunCommand(LabScript() + " exec h1 bash -c 'export VS_SPOOL_DIR=/tmp/st-down-probe-spool; "
                                   "s=$(date +%s%N); " + program + " < " + xml_file +
                                   " >/dev/null 2>&1; rc=$?; e=$(date +%s%N); echo $rc $(( (e - s) / 1000 ))'");
      int rc = -1;
      long us = 0;
      ASSERT_EQ(std::sscanf(r.output.c_str(), "%d %ld", &rc, &us), 2) << r.output;
      EXPECT_EQ(rc, 0) << (hook ? "the hook refused a fail-open VM while shadowd is down" : "/bin/true failed");
      (hook ? hook_ms : true_ms).push_back(us / 1000.0);
    }
  }
  std::sort(hook_ms.begin(), hook_ms.end());
  std::sort(true_ms.begin(), true_ms.end());
  const double added = hook_ms[3] - true_ms[3];
  std::printf("hook with shadowd down: median %.1f ms, /bin/true %.1f ms, added %.1f ms\n", hook_ms[3], true_ms[3],
              added);
  EXPECT_LT(added, 50.0);
  RunCommand("rm -rf /tmp/st-down-probe-spool " + xml_file);

  // A real start through libvirt while shadowd is down: it starts, and the hook spools its events.
  ASSERT_TRUE(conns_[0]->StartDomain("st-down").ok());
  const std::string spool = LabDir() + "/h1/var/lib/virt-shadow/spool";
  size_t spooled = 0;
  for (const auto& f : std::filesystem::directory_iterator(spool)) spooled += f.path().extension() == ".event";
  EXPECT_GE(spooled, 1u) << "nothing spooled in " << spool;
  EXPECT_TRUE(Shadows("st-down").empty());

  ASSERT_EQ(RunCommand(LabScript() + " shadowd h1 start").exit_code, 0);
  EXPECT_TRUE(WaitUntil([&] { return Shadows("st-down").size() == 1; }, 30s)) << "no shadow after shadowd came back";
  size_t left = 0;
  for (const auto& f : std::filesystem::directory_iterator(spool)) left += f.path().extension() == ".event";
  EXPECT_EQ(left, 0u) << "spooled events were not replayed";
  StopAndExpectRelease(std::move(*guest));
}

// shadowd killed with -9 at different moments around a tagged VM's start, i.e. before, during and after its
// placement; after each restart exactly one shadow exists for the VM, and no other shadow or replica is left.
TEST_F(ShadowTest, KilledDuringPlacementShadowdConvergesWithoutDuplicateOrOrphan) {
  for (int delay_ms : {0, 300, 700, 1200}) {
    SCOPED_TRACE("kill -9 " + std::to_string(delay_ms) + " ms after the start was issued");
    const std::string name = "st-kill" + std::to_string(delay_ms);
    const std::string image = "/var/lib/libvirt/images/" + name + ".qcow2";
    RunCommand("qemu-img create -q -f qcow2 " + HostPath(hosts_[0], image) + " 64M");
    CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh " + name + " /var/lib/libvirt/images/" +
                                   name + ".qcow2 " + LabDir() + "/logs/" + name + ".log --memory 128 --metadata \"" +
                                   Policy("vcpus='1'") + "\"");
    ASSERT_TRUE(conns_[0]->DefineDomain(xml.output).ok());
    std::thread start([&] { conns_[0]->StartDomain(name).IgnoreError(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    CommandResult kill = RunCommand(LabScript() + " shadowd h1 kill");
    start.join();
    ASSERT_EQ(kill.exit_code, 0) << kill.output;
    ASSERT_EQ(RunCommand(LabScript() + " shadowd h1 start").exit_code, 0);

    ASSERT_TRUE(WaitUntil([&] { return Shadows(name).size() == 1; }, 30s)) << "no shadow after the restart";
    std::this_thread::sleep_for(3s);  // one more refresh and sweep
    EXPECT_EQ(Shadows(name).size(), 1u) << "duplicate shadow";
    // No orphan replica: besides the primary, only the shadow's host holds an image at that path.
    size_t shadow_host = Shadows(name)[0].host;
    for (size_t i = 1; i < hosts_.size(); ++i) {
      EXPECT_EQ(std::filesystem::exists(HostPath(hosts_[i], image)), i == shadow_host) << hosts_[i].name;
    }
    ASSERT_TRUE(conns_[0]->DestroyDomain(name).ok());
    ASSERT_TRUE(conns_[0]->UndefineDomain(name).ok());
    EXPECT_TRUE(WaitUntil([&] { return Shadows(name).empty(); }, 60s)) << "the shadow was not released";
    EXPECT_TRUE(WaitUntil([&] { return !std::filesystem::exists(HostPath(hosts_[shadow_host], image)); }, 10s));
    std::filesystem::remove(HostPath(hosts_[0], image));
  }
}


// No room for the shadow anywhere the policy allows: the VM runs unprotected with the reason; when room appears
// (another shadow is released), the placement is retried and succeeds without anyone asking.
TEST_F(ShadowTest, WithoutCapacityTheVmRunsUnprotectedUntilCapacityAppears) {
  // h1's shadowd sees h2 with 192 MiB for guests: room for one 128 MiB shadow, not two.
  const std::string conf = LabDir() + "/h1/shadowd.conf";
  std::string original;
  {
    std::ifstream in(conf);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Restores h1's configuration however the test ends.
  struct Restore {
    const std::string& conf;
    const std::string& original;
    ~Restore() {
      std::ofstream(conf) << original;
      RunCommand(LabScript() + " shadowd h1 stop; " + LabScript() + " shadowd h1 start");
    }
  };
  {
    std::string capped = original;
    auto at = capped.find("[host.h2]");
    ASSERT_NE(at, std::string::npos) << original;
    capped.insert(capped.find('\n', at) + 1, "memory_mib = 192\n");
    std::ofstream(conf) << capped;
  }
  Restore restore{conf, original};
  ASSERT_EQ(RunCommand(LabScript() + " shadowd h1 stop; " + LabScript() + " shadowd h1 start").exit_code, 0);

  auto first = TestGuest::Start(*conns_[0], hosts_[0], {},
                                {.name = "st-cap-a", .memory_mib = 256, .metadata = Policy("zone='require-other'")});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(WaitUntil([&] { return Shadows("st-cap-a").size() == 1; }, 30s)) << "the first VM got no shadow";
  EXPECT_EQ(hosts_[Shadows("st-cap-a")[0].host].name, "h2");

  auto second = TestGuest::Start(*conns_[0], hosts_[0], {},
                                 {.name = "st-cap-b", .memory_mib = 256, .metadata = Policy("zone='require-other'")});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  StatusOr<nlohmann::json> status = Internal("not asked yet");
  ASSERT_TRUE(WaitUntil([&] {
    status = CliJson(0, "status st-cap-b");
    return status.ok() && (*status)["state"] == "Unprotected";
  }, 30s)) << (status.ok() ? status->dump() : status.status().ToString());
  const std::string reason = (*status)["unprotected_reason"];
  EXPECT_NE(reason.find("memory"), std::string::npos) << reason;
  std::printf("unprotected: %s\n", reason.c_str());
  EXPECT_TRUE(Shadows("st-cap-b").empty());
  auto running = conns_[0]->GetDomainState("st-cap-b");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, virt::DomainState::kRunning);
  CommandResult list = Cli(0, "list");
  std::printf("%s", list.output.c_str());

  // Room appears on h2 when the first VM stops and its shadow is released after the grace time.
  StopAndExpectRelease(std::move(*first));
  EXPECT_TRUE(WaitUntil([&] { return Shadows("st-cap-b").size() == 1; }, 60s))
      << "placement was not retried when capacity appeared";
  StopAndExpectRelease(std::move(*second));
}

// A replica that another domain runs on (as after a switchover onto the shadow's host, where the replica becomes
// the VM's backing file) must survive the release of the shadow: only the shadow's definition goes.
TEST_F(ShadowTest, ReleaseKeepsAReplicaAnotherRunningDomainUsesAsItsBackingFile) {
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {}, {.name = "st-keep", .metadata = Policy("vcpus='1' interval='1h'")});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  ASSERT_TRUE(WaitUntil([&] { return Shadows("st-keep").size() == 1; }, 60s)) << "no shadow";
  const size_t shadow_host = Shadows("st-keep")[0].host;
  const std::string replica = (*guest)->disk_path();
  const std::string top = "/var/lib/libvirt/images/st-keep-user.qcow2";
  // -u: the backing path is the host's own, not visible from here.
  CommandResult overlay = RunCommand("qemu-img create -q -f qcow2 -u -b " + replica + " -F qcow2 " +
                                     HostPath(hosts_[shadow_host], top) + " 64M");
  ASSERT_EQ(overlay.exit_code, 0) << overlay.output;
  CommandResult xml = RunCommand(SourceDir() + "/images/domain-xml.sh st-keep-user " + top + " " + LabDir() +
                                 "/logs/st-keep-user.log --memory 128");
  ASSERT_EQ(xml.exit_code, 0) << xml.output;
  ASSERT_TRUE(conns_[shadow_host]->DefineDomain(xml.output).ok());
  ASSERT_TRUE(conns_[shadow_host]->StartDomain("st-keep-user").ok());

  CommandResult untag = Cli(0, "untag st-keep");
  ASSERT_EQ(untag.exit_code, 0) << untag.output;
  EXPECT_TRUE(WaitUntil([&] { return Shadows("st-keep").empty(); }, 60s)) << "the shadow was not released";
  EXPECT_TRUE(std::filesystem::exists(HostPath(hosts_[shadow_host], replica)))
      << "the release deleted the backing file of a running domain";

  conns_[shadow_host]->DestroyDomain("st-keep-user").IgnoreError();
  conns_[shadow_host]->UndefineDomain("st-keep-user").IgnoreError();
  std::filesystem::remove(HostPath(hosts_[shadow_host], top));
  std::filesystem::remove(HostPath(hosts_[shadow_host], replica));
}

}  // namespace
}  // namespace vs::lab
