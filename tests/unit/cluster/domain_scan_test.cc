#include "shadowd/cluster/domain_scan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/controller/shadow_domain_xml.h"
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

}  // namespace
}  // namespace vs::cluster
