#include "shadowd/cluster/domain_scan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/controller/shadow_domain_xml.h"
#include "tests/unit/cli/fake_hypervisor.h"
#include "tests/unit/controller/test_domains.h"

namespace vs::cluster {
namespace {

using ::testing::ElementsAre;
namespace t = controller::testing;

const std::string kBase = "/var/lib/libvirt/images/debian-12-base.qcow2";

std::vector<ScannedDomain> PrimaryAndItsShadow() {
  StatusOr<std::string> shadow_xml =
      controller::ShadowDomainXml(t::PrimaryXml(), {t::kShadowUuid, t::kShadowName, 0}, {2, 1024 * 1024},
                                  {t::kVmUuid, t::kVmName, "h1"});
  EXPECT_TRUE(shadow_xml.ok()) << shadow_xml.status().ToString();
  return {ReadScannedDomain(t::kVmName, "h1", t::PrimaryXml()),
          ReadScannedDomain(t::kShadowName, "h2", shadow_xml.ok() ? *shadow_xml : "")};
}

TEST(DomainScan, ReadsEveryFileOfTheChainsTheUuidAndTheShadowLink) {
  const std::vector<ScannedDomain> domains = PrimaryAndItsShadow();
  const ScannedDomain& primary = domains[0];
  EXPECT_EQ(primary.uuid, t::kVmUuid);
  EXPECT_FALSE(primary.shadow.has_value());
  EXPECT_THAT(primary.files, ElementsAre(t::kRootDisk, kBase, t::kDataDisk, "/var/lib/libvirt/images/cloud-init.iso"));
  const ScannedDomain& shadow = domains[1];
  ASSERT_TRUE(shadow.shadow.has_value());
  EXPECT_EQ(shadow.shadow->primary_uuid, t::kVmUuid);
  EXPECT_EQ(shadow.shadow->host, "h2");
}

TEST(DomainScan, APathIsInUseWhenAnyLayerOfAChainIsIt) {
  const std::vector<ScannedDomain> domains = PrimaryAndItsShadow();
  EXPECT_EQ(DomainUsing(domains, kBase, ShadowsCount::kNo), t::kVmName) << "a backing file is in use";
  EXPECT_EQ(DomainUsing(domains, t::kRootDisk, ShadowsCount::kYes), t::kVmName);
  EXPECT_EQ(DomainUsing(domains, "/var/lib/libvirt/images/web-root.qcow2.vs-top-1", ShadowsCount::kYes),
            std::nullopt);
  EXPECT_EQ(DomainUsing(domains, "/var/lib/libvirt/images/web-root", ShadowsCount::kYes), std::nullopt)
      << "a prefix of a path is another path";
}

TEST(DomainScan, ShadowsCountOnlyWhenAsked) {
  std::vector<ScannedDomain> domains = PrimaryAndItsShadow();
  domains.erase(domains.begin());  // the shadow's host: the replica is the shadow's own disk
  EXPECT_EQ(DomainUsing(domains, t::kRootDisk, ShadowsCount::kNo), std::nullopt);
  EXPECT_EQ(DomainUsing(domains, t::kRootDisk, ShadowsCount::kYes), t::kShadowName);
  ASSERT_TRUE(ShadowOf(domains, t::kVmUuid).has_value());
  EXPECT_EQ(ShadowOf(domains, t::kVmUuid)->shadow_name, t::kShadowName);
  EXPECT_FALSE(ShadowOf(domains, "00000000-0000-0000-0000-000000000000").has_value());
}

TEST(DomainScan, AnXmlThatDoesNotParseIsListedByNameAndUsesNothingKnown) {
  const ScannedDomain broken = ReadScannedDomain("odd", "h1", "<domain><name>odd</name>");
  EXPECT_EQ(broken.name, "odd");
  EXPECT_TRUE(broken.uuid.empty());
  EXPECT_FALSE(broken.shadow.has_value());
  EXPECT_TRUE(broken.files.empty());
}

// The shadow of the VM `vm_uuid` named web, as h1 defines it on h2 (named web-shadow, over web's disk paths).
ScannedDomain WebShadowOnH2(const std::string& vm_uuid, const std::string& shadow_uuid) {
  StatusOr<std::string> xml = controller::ShadowDomainXml(t::PrimaryXml(t::kPolicy, vm_uuid),
                                                          {shadow_uuid, t::kShadowName, 0}, {2, 1024 * 1024},
                                                          {vm_uuid, t::kVmName, "h1"});
  EXPECT_TRUE(xml.ok()) << xml.status().ToString();
  return ReadScannedDomain(t::kShadowName, "h2", xml.ok() ? *xml : "");
}

TEST(DomainScan, ReleasingAShadowTakesItsDefinitionAndTheImagesNoOtherDomainUses) {
  const std::vector<std::string> replicas = {t::kRootDisk, t::kDataDisk};
  const ShadowRelease alone = PlanShadowRelease({WebShadowOnH2(t::kVmUuid, t::kShadowUuid)}, t::kShadowUuid,
                                                t::kShadowName, replicas);
  EXPECT_TRUE(alone.undefine);
  EXPECT_EQ(alone.images, replicas);
  // web switched over onto its replicas here: they are its disks now.
  const ShadowRelease under_the_vm =
      PlanShadowRelease({WebShadowOnH2(t::kVmUuid, t::kShadowUuid), ReadScannedDomain(t::kVmName, "h2", t::PrimaryXml())},
                        t::kShadowUuid, t::kShadowName, replicas);
  EXPECT_TRUE(under_the_vm.undefine);
  EXPECT_TRUE(under_the_vm.images.empty());
}

// The lab (tests/lab/promotion_restart_test.cc, run twice in a row): web was deleted on h1 and re-created there under
// the same name with a new UUID within the grace period; its new shadow on h2 had the old one's name and replica
// paths, and the old shadow's release, due then, undefined it by name and deleted its replicas (h1 then logged
// "applying on h2: no shadow of VM <new uuid> is defined on h2" every round while it listed the shadow on h2).
TEST(DomainScan, ReleasingAShadowThatIsGoneLeavesANewerShadowOfTheSameNameAndItsImages) {
  const std::string new_vm_uuid = "0b3c7e1a-52d4-4d8e-9a61-2f0c4b7de915";
  const std::string new_shadow_uuid = "9d1e0f52-7c3a-5b6e-8f21-4a9d03c6b7e8";
  const ShadowRelease late = PlanShadowRelease({WebShadowOnH2(new_vm_uuid, new_shadow_uuid)}, t::kShadowUuid,
                                               t::kShadowName, {t::kRootDisk, t::kDataDisk});
  EXPECT_FALSE(late.undefine) << "the newer shadow's definition was taken";
  EXPECT_TRUE(late.images.empty()) << "the newer shadow's replicas were deleted";
}

TEST(DomainScan, ReleasingAShadowWhoseXmlDoesNotParseStillTakesTheDefinition) {
  const ShadowRelease broken = PlanShadowRelease({ReadScannedDomain(t::kShadowName, "h2", "<domain>")}, t::kShadowUuid,
                                                 t::kShadowName, {t::kRootDisk});
  EXPECT_TRUE(broken.undefine);
  EXPECT_EQ(broken.images, std::vector<std::string>{t::kRootDisk});
}

TEST(ObserveDomains, EveryDomainWithItsXmlAndWhetherItRuns) {
  cli::testing::FakeLibvirt libvirt;
  libvirt.domains["web"] = {.state = virt::DomainState::kPaused};
  libvirt.domains["db"] = {.state = virt::DomainState::kShutoff, .uuid = "0b7cf3c5-6d1f-4f3e-9a59-46f9fa0e3a61"};
  cli::testing::FakeHypervisor local(libvirt);
  auto observed = ObserveDomains(local);
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  ASSERT_EQ(observed->size(), 2u);
  EXPECT_EQ((*observed)[0].name_hint, "db");
  EXPECT_FALSE((*observed)[0].running);
  EXPECT_THAT((*observed)[0].xml, ::testing::HasSubstr("0b7cf3c5-6d1f-4f3e-9a59-46f9fa0e3a61"));
  EXPECT_TRUE((*observed)[1].running) << "a paused (fenced) VM still runs";
}

TEST(ObserveDomain, APausedDomainRunsForADomainEventAsForTheScan) {
  // The events (shadowd/daemon/main.cc) once read only "running" as running: a resume handled after the domain was
  // paused again, or any event of a paused VM, recorded it as stopped, and its rounds stopped until the next scan
  // ("not replicated from this host (it must be protected and running)", replication_bench pausing its guest).
  cli::testing::FakeLibvirt libvirt;
  libvirt.domains["web"] = {.state = virt::DomainState::kPaused};
  libvirt.domains["db"] = {.state = virt::DomainState::kShutoff};
  cli::testing::FakeHypervisor local(libvirt);
  auto web = ObserveDomain(local, "web");
  ASSERT_TRUE(web.ok()) << web.status().ToString();
  EXPECT_TRUE(web->running);
  EXPECT_EQ(web->name_hint, "web");
  EXPECT_THAT(web->xml, ::testing::HasSubstr("<name>web</name>"));
  ASSERT_TRUE(local.ResumeDomain("web").ok());
  EXPECT_TRUE(ObserveDomain(local, "web")->running);
  auto db = ObserveDomain(local, "db");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_FALSE(db->running);
  EXPECT_EQ(ObserveDomain(local, "gone").status().code(), Code::kNotFound);
  // Another failure is said as such, not taken for a domain that is gone.
  libvirt.xml_error = Unavailable("internal error: client socket is closed");
  EXPECT_EQ(ObserveDomain(local, "web").status().code(), Code::kUnavailable);
}

TEST(ObserveDomains, ADomainThatCannotBeReadFailsTheObservationRatherThanLookUndefined) {
  // Left out, the domain would look undefined and its VM's protection record would end while it runs.
  cli::testing::FakeLibvirt libvirt;
  libvirt.domains["web"] = {};
  libvirt.xml_error = Unavailable("internal error: client socket is closed");
  cli::testing::FakeHypervisor local(libvirt);
  auto observed = ObserveDomains(local);
  ASSERT_FALSE(observed.ok());
  EXPECT_THAT(observed.status().ToString(), ::testing::HasSubstr("reading local domain 'web'"));
  // Undefined meanwhile is no error: that domain is simply gone.
  libvirt.xml_error = NotFound("Domain not found: no domain with matching name 'web'");
  observed = ObserveDomains(local);
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_TRUE(observed->empty());
}

}  // namespace
}  // namespace vs::cluster
