#include "shadowd/controller/shadow_domain_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/policy/domain_xml.h"
#include "tests/unit/controller/test_domains.h"

namespace vs::controller {
namespace {

using ::testing::HasSubstr;
using testing::kDataDisk;
using testing::kRootDisk;
using testing::kShadowName;
using testing::kShadowUuid;
using testing::kVmName;
using testing::kVmUuid;
using testing::PrimaryXml;
using testing::XPathDoc;

const ShadowIdentity kShadow{kShadowUuid, kShadowName, 0};
const PrimaryIdentity kPrimary{kVmUuid, kVmName, "h1"};
const lifecycle::ShadowSize kSize{2, 1024 * 1024};

std::string MustTransform(const std::string& xml, const ShadowIdentity& shadow = kShadow,
                          const lifecycle::ShadowSize& size = kSize, const PrimaryIdentity& primary = kPrimary) {
  StatusOr<std::string> out = ShadowDomainXml(xml, shadow, size, primary);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

TEST(ShadowDomainXmlTest, RealisticDomainGetsShadowIdentityAndReducedScalableSize) {
  const XPathDoc doc(MustTransform(PrimaryXml()));
  EXPECT_EQ(doc.String("/domain/name"), kShadowName);
  EXPECT_EQ(doc.String("/domain/uuid"), kShadowUuid);
  EXPECT_EQ(doc.Number("count(/domain/@id)"), 0) << "the running primary's domain id is live-only";
  EXPECT_EQ(doc.String("/domain/vcpu"), "4") << "the maximum stays the primary's, for the switchover";
  EXPECT_EQ(doc.String("/domain/vcpu/@current"), "2");
  EXPECT_EQ(doc.String("/domain/vcpu/@placement"), "static");
  EXPECT_EQ(doc.String("/domain/memory"), "4194304");
  EXPECT_EQ(doc.String("/domain/currentMemory"), "1048576");
  EXPECT_EQ(doc.String("/domain/currentMemory/@unit"), "KiB");
  EXPECT_EQ(doc.Number("count(/domain/currentMemory)"), 1);
}

// Nova writes the instance's UUID as the SMBIOS system UUID; libvirt refuses a domain whose SMBIOS UUID is not its own.
TEST(ShadowDomainXmlTest, TheSmbiosSystemUuidGoesAndTheOtherSysinfoEntriesStay) {
  std::string xml = PrimaryXml();
  const std::string sysinfo = "<sysinfo type='smbios'><system><entry name='manufacturer'>OpenStack Foundation</entry>"
                              "<entry name='uuid'>" + kVmUuid + "</entry></system></sysinfo>\n  <os>";
  xml.replace(xml.find("<os>"), 4, sysinfo);
  const XPathDoc doc(MustTransform(xml));
  EXPECT_EQ(doc.Number("count(/domain/sysinfo/system/entry[@name='uuid'])"), 0);
  EXPECT_EQ(doc.String("/domain/sysinfo/system/entry[@name='manufacturer']"), "OpenStack Foundation");
}

TEST(ShadowDomainXmlTest, MetadataLinksToPrimaryKeepsOthersAndDropsThePolicy) {
  const XPathDoc doc(MustTransform(PrimaryXml()));
  EXPECT_EQ(doc.Number("count(/domain/metadata/s:*)"), 1);
  EXPECT_EQ(doc.Number("count(//s:policy)"), 0) << "a shadow must never be protected itself";
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@uuid"), kVmUuid);
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@name"), kVmName);
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@host"), "h1");
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@index"), "0");
  EXPECT_EQ(doc.String("/domain/metadata/nova:instance/nova:name"), "web-1");
}

TEST(ShadowDomainXmlTest, DisksKeepTheirPathsAsStandaloneReplicasAndMediaIsEjected) {
  const XPathDoc doc(MustTransform(PrimaryXml()));
  EXPECT_EQ(doc.Number("count(/domain/devices/disk[@device='disk'])"), 2);
  EXPECT_EQ(doc.String("/domain/devices/disk[target/@dev='vda']/source/@file"), kRootDisk);
  EXPECT_EQ(doc.String("/domain/devices/disk[target/@dev='vda']/driver/@type"), "qcow2");
  EXPECT_EQ(doc.String("/domain/devices/disk[target/@dev='vdb']/source/@file"), kDataDisk);
  EXPECT_EQ(doc.String("/domain/devices/disk[target/@dev='vdb']/driver/@type"), "raw");
  EXPECT_EQ(doc.Number("count(//backingStore)"), 0);
  EXPECT_EQ(doc.Number("count(//source/@index)"), 0);
  EXPECT_EQ(doc.Number("count(/domain/devices/disk[@device='cdrom'])"), 1) << "the drive stays";
  EXPECT_EQ(doc.Number("count(/domain/devices/disk[@device='cdrom']/source)"), 0) << "its media is not replicated";
}

TEST(ShadowDomainXmlTest, LiveOnlyDataIsStrippedAndTheSerialLogPointsElsewhere) {
  const XPathDoc doc(MustTransform(PrimaryXml()));
  EXPECT_EQ(doc.String("/domain/devices/serial/log/@file"), "/var/log/libvirt/qemu/web-serial.log.shadow");
  EXPECT_EQ(doc.String("/domain/devices/serial/log/@append"), "on");
  EXPECT_EQ(doc.Number("count(/domain/devices/serial/source)"), 0);
  EXPECT_EQ(doc.Number("count(/domain/devices/console/source)"), 0);
  EXPECT_EQ(doc.Number("count(/domain/devices/console/@tty)"), 0);
  EXPECT_EQ(doc.Number("count(/domain/devices/graphics/@port)"), 0);
  EXPECT_EQ(doc.String("/domain/devices/graphics/@autoport"), "yes");
  EXPECT_EQ(doc.String("/domain/devices/graphics/listen/@address"), "127.0.0.1");
  EXPECT_EQ(doc.Number("count(/domain/seclabel)"), 1);
  EXPECT_EQ(doc.String("/domain/seclabel/@model"), "dac");
  EXPECT_EQ(doc.Number("count(/domain/seclabel/label | /domain/seclabel/imagelabel)"), 0);
  EXPECT_EQ(doc.String("/domain/devices/interface/mac/@address"), "52:54:00:12:34:56");
}

TEST(ShadowDomainXmlTest, OutputReadsBackAsAShadowOfItsPrimary) {
  const std::string xml = MustTransform(PrimaryXml());
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(xml);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_TRUE(IsShadowDomain(*facts));
  EXPECT_EQ(facts->max_vcpus, 4u);
  EXPECT_EQ(facts->current_vcpus, 2u);
  EXPECT_EQ(facts->memory_kib, 4u * 1024 * 1024);
  EXPECT_EQ(facts->current_memory_kib, 1024u * 1024);

  StatusOr<std::optional<PeerShadow>> described = DescribeShadowDomain("h4", xml);
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  ASSERT_TRUE(described->has_value());
  const PeerShadow expected{"h4", kShadowUuid, kShadowName, kVmUuid, kVmName, "h1", {2, 1024 * 1024},
                            {kRootDisk, kDataDisk}};
  EXPECT_EQ(**described, expected);
  // Shadows are not primaries: the policy reader refuses the link element as a policy.
  EXPECT_FALSE(policy::ParsePolicy(*facts).policy.ok());
}

TEST(ShadowDomainXmlTest, SameInputsGiveTheSameOutput) {
  EXPECT_EQ(MustTransform(PrimaryXml()), MustTransform(PrimaryXml()));
}

TEST(ShadowDomainXmlTest, MinimalDomainGetsMetadataCurrentMemoryAndVcpuCreated) {
  const std::string minimal = "<domain type='qemu'><name>tiny</name><uuid>" + kVmUuid +
                              "</uuid><memory unit='MiB'>512</memory></domain>";
  const XPathDoc doc(MustTransform(minimal, kShadow, {1, 256 * 1024}, {kVmUuid, "tiny", "h1"}));
  EXPECT_EQ(doc.String("/domain/currentMemory"), "262144");
  EXPECT_EQ(doc.String("/domain/vcpu"), "1");
  EXPECT_EQ(doc.String("/domain/vcpu/@current"), "1");
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@name"), "tiny");
}

TEST(ShadowDomainXmlTest, NamesWithMarkupCharactersAreEscaped) {
  const std::string xml = PrimaryXml(testing::kPolicy, kVmUuid, "db&amp;cache");
  const XPathDoc doc(MustTransform(xml, {kShadowUuid, "db&cache-shadow", 0}, kSize, {kVmUuid, "db&cache", "h1"}));
  EXPECT_EQ(doc.String("/domain/name"), "db&cache-shadow");
  EXPECT_EQ(doc.String("/domain/metadata/s:shadow-of/@name"), "db&cache");
}

TEST(ShadowDomainXmlTest, PerVcpuListIsDroppedAndExplicitGraphicsPortKept) {
  std::string xml = PrimaryXml();
  xml.replace(xml.find("<os>"), 0,
              "<vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/><vcpu id='1' enabled='yes'/></vcpus>");
  xml.replace(xml.find("port='5901' autoport='yes'"), std::string("port='5901' autoport='yes'").size(),
              "port='5950' autoport='no'");
  const XPathDoc doc(MustTransform(xml));
  EXPECT_EQ(doc.Number("count(/domain/vcpus)"), 0);
  EXPECT_EQ(doc.String("/domain/devices/graphics/@port"), "5950");
}

struct Refusal {
  std::string name;
  std::string xml;
  lifecycle::ShadowSize size;
  PrimaryIdentity primary;
  ShadowIdentity shadow;
  std::string message_part;
};

class ShadowDomainXmlRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(ShadowDomainXmlRefusalTest, IsInvalidArgumentNamingTheProblem) {
  const Refusal& r = GetParam();
  StatusOr<std::string> out = ShadowDomainXml(r.xml, r.shadow, r.size, r.primary);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument) << out.status().ToString();
  EXPECT_THAT(out.status().message(), HasSubstr(r.message_part));
}

std::string WithBlockDisk() {
  std::string xml = PrimaryXml();
  const std::string raw_disk = "<disk type='file' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n"
                               "      <source file='/var/lib/libvirt/images/web-data.raw' index='1'/>";
  xml.replace(xml.find(raw_disk), raw_disk.size(),
              "<disk type='block' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source dev='/dev/sdb'/>");
  return xml;
}

std::string AlreadyAShadow() {
  StatusOr<std::string> shadow = ShadowDomainXml(PrimaryXml(), kShadow, kSize, kPrimary);
  return shadow.ok() ? *shadow : "";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ShadowDomainXmlRefusalTest,
    ::testing::Values(
        Refusal{"BlockDisk", WithBlockDisk(), kSize, kPrimary, kShadow, "disk 'vdb' has type='block'"},
        Refusal{"TooManyVcpus", PrimaryXml(), {5, 1024}, kPrimary, kShadow, "shadow vcpus 5"},
        Refusal{"ZeroVcpus", PrimaryXml(), {0, 1024}, kPrimary, kShadow, "shadow vcpus 0"},
        Refusal{"TooMuchMemory", PrimaryXml(), {2, 8u << 20}, kPrimary, kShadow, "shadow memory 8388608 KiB"},
        Refusal{"OtherPrimaryUuid", PrimaryXml(), kSize, {kShadowUuid, kVmName, "h1"}, kShadow,
                "is not the <uuid>"},
        Refusal{"BadPrimaryUuid", PrimaryXml(), kSize, {"not-a-uuid", kVmName, "h1"}, kShadow,
                "PrimaryIdentity.uuid"},
        Refusal{"BadShadowUuid", PrimaryXml(), kSize, kPrimary, {"zz", kShadowName, 0}, "ShadowIdentity.uuid"},
        Refusal{"ShadowUuidIsPrimary", PrimaryXml(), kSize, kPrimary, {kVmUuid, kShadowName, 0},
                "equals the primary's uuid"},
        Refusal{"NoHost", PrimaryXml(), kSize, {kVmUuid, kVmName, ""}, kShadow, "PrimaryIdentity.host"},
        Refusal{"NoShadowName", PrimaryXml(), kSize, kPrimary, {kShadowUuid, "", 0}, "ShadowIdentity.name"},
        Refusal{"ShadowOfAShadow", AlreadyAShadow(), kSize, {kShadowUuid, kShadowName, "h1"},
                {"11111111-2222-3333-4444-555555555555", "x", 0}, "is itself a shadow"},
        Refusal{"NotWellFormed", "<domain><name>x</name>", kSize, kPrimary, kShadow, "not well-formed"},
        Refusal{"EntityExpansion",
                "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]>"
                "<domain><name>&b;</name><uuid>" + kVmUuid + "</uuid><memory>1</memory></domain>",
                kSize, kPrimary, kShadow, "DOCTYPE"},
        Refusal{"NotADomain", "<network><name>x</name></network>", kSize, kPrimary, kShadow, "not <domain>"}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.name; });

// ---- PromotedDomainXml: the shadow becomes the VM again (crash promotion).

TEST(PromotedDomainXmlTest, TheShadowBecomesTheVmAtTheShadowsSizeWithItsPolicyBack) {
  StatusOr<std::string> promoted = PromotedDomainXml(MustTransform(PrimaryXml()), kVmUuid, testing::kPolicy);
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  const XPathDoc doc(*promoted);
  EXPECT_EQ(doc.String("/domain/name"), kVmName);
  EXPECT_EQ(doc.String("/domain/uuid"), kVmUuid);
  EXPECT_EQ(doc.Number("count(//s:shadow-of)"), 0);
  EXPECT_EQ(doc.Number("count(/domain/metadata/s:policy)"), 1) << "protected again like any VM";
  EXPECT_EQ(doc.String("/domain/metadata/s:policy/@vcpus"), "50%");
  EXPECT_EQ(doc.String("/domain/metadata/nova:instance/nova:name"), "web-1");
  // Started small, grown once it runs: the maximum is the VM's.
  EXPECT_EQ(doc.String("/domain/vcpu"), "4");
  EXPECT_EQ(doc.String("/domain/vcpu/@current"), "2");
  EXPECT_EQ(doc.String("/domain/memory"), "4194304");
  EXPECT_EQ(doc.String("/domain/currentMemory"), "1048576");
  EXPECT_EQ(doc.String("/domain/devices/disk[target/@dev='vda']/source/@file"), kRootDisk);
  EXPECT_EQ(doc.String("/domain/devices/serial/log/@file"), "/var/log/libvirt/qemu/web-serial.log");
  // And it reads back as the protected VM, not as a shadow.
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(*promoted);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_FALSE(IsShadowDomain(*facts));
}

TEST(PromotedDomainXmlTest, WithoutAPolicyTheVmIsLeftUntagged) {
  StatusOr<std::string> promoted = PromotedDomainXml(MustTransform(PrimaryXml()), kVmUuid, "");
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_EQ(XPathDoc(*promoted).Number("count(/domain/metadata/s:*)"), 0);
}

TEST(PromotedDomainXmlTest, RefusesWhatIsNotThisVmsShadowOrAForeignPolicy) {
  const Status not_a_shadow = PromotedDomainXml(PrimaryXml(), kVmUuid, "").status();
  EXPECT_EQ(not_a_shadow.code(), Code::kInvalidArgument);
  EXPECT_THAT(not_a_shadow.message(), HasSubstr("not a shadow"));

  const Status other_vm =
      PromotedDomainXml(MustTransform(PrimaryXml()), "11111111-2222-4333-8444-555555555555", "").status();
  EXPECT_EQ(other_vm.code(), Code::kInvalidArgument);
  EXPECT_THAT(other_vm.message(), HasSubstr("is the shadow of " + kVmUuid));

  const Status foreign = PromotedDomainXml(MustTransform(PrimaryXml()), kVmUuid, "<policy vcpus='1'/>").status();
  EXPECT_EQ(foreign.code(), Code::kInvalidArgument);
  EXPECT_THAT(foreign.message(), HasSubstr("not in the namespace"));
}

TEST(PromotedDomainXmlTest, TheVmsPolicyTravelsInTheShadowsLinkAndComesBack) {
  PrimaryIdentity primary = kPrimary;
  primary.policy_xml = R"(<policy vcpus="50%" memory="1GiB"/>)";
  const std::string shadow_xml = MustTransform(PrimaryXml(), kShadow, kSize, primary);
  StatusOr<policy::DomainFacts> shadow_facts = policy::ParseDomain(shadow_xml);
  ASSERT_TRUE(shadow_facts.ok()) << shadow_facts.status().ToString();
  EXPECT_TRUE(IsShadowDomain(*shadow_facts));
  EXPECT_EQ(XPathDoc(shadow_xml).Number("count(/domain/metadata/s:policy)"), 0) << "a shadow is never tagged";

  StatusOr<std::optional<PeerShadow>> described = DescribeShadowDomain("h2", shadow_xml);
  ASSERT_TRUE(described.ok() && described->has_value()) << described.status().ToString();
  StatusOr<std::string> promoted = PromotedDomainXml(shadow_xml, kVmUuid, (*described)->primary_policy_xml);
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  const XPathDoc doc(*promoted);
  EXPECT_EQ(doc.Number("count(/domain/metadata/s:policy)"), 1);
  EXPECT_EQ(doc.String("/domain/metadata/s:policy/@vcpus"), "50%");
  EXPECT_EQ(doc.String("/domain/metadata/s:policy/@memory"), "1GiB");
  EXPECT_EQ(doc.Number("count(//s:shadow-of)"), 0);
}

TEST(DescribeShadowDomainTest, OrdinaryDomainIsNotAShadow) {
  StatusOr<std::optional<PeerShadow>> described = DescribeShadowDomain("h2", PrimaryXml());
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_FALSE(described->has_value());
}

TEST(DescribeShadowDomainTest, LinkWithoutHostOrValidUuidIsRefused) {
  const std::string head = "<domain><name>s</name><uuid>" + kShadowUuid + "</uuid><memory>1024</memory><metadata>";
  const std::string ns = " xmlns:shadow='" + testing::kPolicyNs + "'";
  StatusOr<std::optional<PeerShadow>> no_host =
      DescribeShadowDomain("h2", head + "<shadow:shadow-of" + ns + " uuid='" + kVmUuid + "'/></metadata></domain>");
  ASSERT_FALSE(no_host.ok());
  EXPECT_THAT(no_host.status().message(), HasSubstr("no host attribute"));
  StatusOr<std::optional<PeerShadow>> bad_uuid =
      DescribeShadowDomain("h2", head + "<shadow:shadow-of" + ns + " uuid='x' host='h1'/></metadata></domain>");
  ASSERT_FALSE(bad_uuid.ok());
  EXPECT_THAT(bad_uuid.status().message(), HasSubstr("<shadow-of uuid>"));
}

}  // namespace
}  // namespace vs::controller
