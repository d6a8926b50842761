// Domain XML -> DomainFacts and its policy: realistic libvirt XML, namespaces, malformed and hostile input.
#include "shadowd/policy/domain_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/policy/policy_cases.h"

namespace vs::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::uint64_t kMiB = 1024;
constexpr std::uint64_t kGiB = 1024 * 1024;

// As `virsh dumpxml` prints it (libvirt 9.0), with a nova element and a policy in <metadata>.
constexpr std::string_view kRealisticDomain = R"(<domain type='kvm' id='7'>
  <name>web-1</name>
  <uuid>8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>web-1</nova:name>
      <nova:flavor name="m1.large"><nova:memory>8192</nova:memory></nova:flavor>
    </nova:instance>
    <shadow:policy xmlns:shadow="http://virt-shadow.org/xmlns/policy/1.0" vcpus="2" memory="2GiB" critical="yes"/>
  </metadata>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <resource><partition>/machine</partition></resource>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web-1.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='/dev/vg0/web-1-data' index='1'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/install.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'/>
</domain>
)";

// As Nova's libvirt driver (2023.1) defines an instance booted from an image, as `virsh dumpxml` shows it.
constexpr std::string_view kNovaDomain = R"(<domain type='kvm' id='3'>
  <name>instance-0000000a</name>
  <uuid>4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="27.1.0"/>
      <nova:name>web-2</nova:name>
      <nova:creationTime>2026-12-01 09:14:03</nova:creationTime>
      <nova:flavor name="vs.small">
        <nova:memory>2048</nova:memory>
        <nova:disk>20</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>2</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="9c0f0ab2c1d54a3e8f4e2b7a6d5c4b3a">alice</nova:user>
        <nova:project uuid="e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b">demo</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"/>
      <nova:ports>
        <nova:port uuid="5e4d3c2b-1a09-4f8e-7d6c-5b4a39281706">
          <nova:ip type="fixed" address="10.0.0.23" ipVersion="4"/>
        </nova:port>
      </nova:ports>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>OpenStack Foundation</entry>
      <entry name='product'>OpenStack Nova</entry>
      <entry name='serial'>4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50</entry>
      <entry name='uuid'>4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50</entry>
      <entry name='family'>Virtual Machine</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
    <smbios mode='sysinfo'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/nova/instances/4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50/disk' index='1'/>
      <backingStore type='file' index='2'>
        <format type='raw'/>
        <source file='/var/lib/nova/instances/_base/3b1f0e2d5c4a69788796a5b4c3d2e1f00f1e2d3c'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
)";

// A minimal domain whose <metadata> holds `metadata` and whose <devices> hold `devices`.
std::string Domain(std::string_view metadata, std::string_view devices = "",
                   std::string_view sizes = "<memory unit='MiB'>1024</memory><vcpu>2</vcpu>") {
  return "<domain type='kvm'><name>vm</name><uuid>00000000-0000-4000-8000-000000000001</uuid>" + std::string(sizes) +
         "<metadata>" + std::string(metadata) + "</metadata><devices>" + std::string(devices) + "</devices></domain>";
}

// The policy result for a domain with `metadata`; fails the test if the domain itself is rejected.
PolicyResult PolicyOf(std::string_view metadata) {
  StatusOr<DomainFacts> facts = ParseDomain(Domain(metadata));
  EXPECT_TRUE(facts.ok()) << facts.status().ToString();
  if (!facts.ok()) return {facts.status(), HookFailureMode::kOpen};
  return ParsePolicy(*facts);
}

bool IsUntagged(const PolicyResult& result) { return result.policy.ok() && !result.policy->has_value(); }

TEST(PolicyDomainXmlTest, RealisticDomainFacts) {
  StatusOr<DomainFacts> facts = ParseDomain(kRealisticDomain);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->name, "web-1");
  EXPECT_EQ(facts->uuid, "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  EXPECT_EQ(facts->max_vcpus, 4u);
  EXPECT_EQ(facts->current_vcpus, 2u);
  EXPECT_EQ(facts->memory_kib, 8 * kGiB);
  EXPECT_EQ(facts->current_memory_kib, 4 * kGiB);
  ASSERT_EQ(facts->disks.size(), 2u);  // the cdrom is skipped
  EXPECT_EQ(facts->disks[0], (DiskFacts{"vda", "virtio", DiskFacts::SourceKind::kFile,
                                        "/var/lib/libvirt/images/web-1.qcow2", "qcow2"}));
  EXPECT_EQ(facts->disks[1],
            (DiskFacts{"vdb", "virtio", DiskFacts::SourceKind::kBlock, "/dev/vg0/web-1-data", "raw"}));
  ASSERT_EQ(facts->policy_elements.size(), 1u);  // nova:instance is not ours

  PolicyResult result = ParsePolicy(*facts);
  ASSERT_TRUE(result.policy.ok()) << result.policy.status().ToString();
  ASSERT_TRUE(result.policy->has_value());
  const Policy& policy = **result.policy;
  EXPECT_EQ(policy.vcpus, ResourceSpec::Absolute(2));
  EXPECT_EQ(policy.memory, ResourceSpec::Absolute(2 * kGiB));
  EXPECT_TRUE(policy.critical);
  EXPECT_EQ(result.hook_failure, HookFailureMode::kClosed);
}

TEST(PolicyDomainXmlTest, NovaInstanceFacts) {
  StatusOr<DomainFacts> facts = ParseDomain(kNovaDomain);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->name, "instance-0000000a");
  EXPECT_EQ(facts->uuid, "4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50");
  ASSERT_TRUE(facts->nova.has_value());
  EXPECT_EQ(*facts->nova, (NovaInstanceFacts{.display_name = "web-2",
                                             .flavor_name = "vs.small",
                                             .project_uuid = "e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b",
                                             .project_name = "demo",
                                             .user_uuid = "9c0f0ab2c1d54a3e8f4e2b7a6d5c4b3a",
                                             .user_name = "alice",
                                             .root_image_uuid = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"}));
  EXPECT_TRUE(facts->policy_elements.empty());
  EXPECT_TRUE(IsUntagged(ParsePolicy(*facts)));
  ASSERT_EQ(facts->disks.size(), 1u);
  EXPECT_EQ(facts->disks[0].backing_format, "raw");
}

TEST(PolicyDomainXmlTest, RealisticDomainHasNovaFactsBesideItsPolicy) {
  StatusOr<DomainFacts> facts = ParseDomain(kRealisticDomain);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_TRUE(facts->nova.has_value());
  EXPECT_EQ(facts->nova->display_name, "web-1");
  EXPECT_EQ(facts->nova->flavor_name, "m1.large");
  EXPECT_EQ(facts->nova->project_uuid, "");  // absent parts stay empty
  EXPECT_EQ(facts->nova->root_image_uuid, "");
}

TEST(PolicyDomainXmlTest, NovaMetadataVariants) {
  // Namespace 1.0, another prefix, a volume-backed root (no image), whitespace around names.
  StatusOr<DomainFacts> facts = ParseDomain(Domain(
      "<n:instance xmlns:n='http://openstack.org/xmlns/libvirt/nova/1.0'><n:name> db </n:name>"
      "<n:owner><n:project uuid='p1'> ops </n:project></n:owner><n:root type='volume' uuid='v1'/></n:instance>"));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_TRUE(facts->nova.has_value());
  EXPECT_EQ(facts->nova->display_name, "db");
  EXPECT_EQ(facts->nova->project_uuid, "p1");
  EXPECT_EQ(facts->nova->project_name, "ops");
  EXPECT_EQ(facts->nova->user_uuid, "");
  EXPECT_EQ(facts->nova->root_image_uuid, "");

  // Children in another namespace (or none) are not Nova's; an unknown Nova version is not Nova's either.
  facts = ParseDomain(Domain(
      "<n:instance xmlns:n='http://openstack.org/xmlns/libvirt/nova/1.1'><name>x</name>"
      "<o:name xmlns:o='http://example.org/other'>y</o:name></n:instance>"));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_TRUE(facts->nova.has_value());
  EXPECT_EQ(facts->nova->display_name, "");
  facts = ParseDomain(Domain("<n:instance xmlns:n='http://openstack.org/xmlns/libvirt/nova/9.9'/>"));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_FALSE(facts->nova.has_value());
  facts = ParseDomain(Domain(""));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_FALSE(facts->nova.has_value());
}

TEST(PolicyDomainXmlTest, MemoryUnitsFollowLibvirt) {
  struct Case {
    std::string memory;
    std::uint64_t kib;
  };
  const Case cases[] = {
      {"<memory>2048</memory>", 2048},  // no unit: KiB
      {"<memory unit='KiB'>2048</memory>", 2048},
      {"<memory unit='k'>2048</memory>", 2048},
      {"<memory unit='MiB'>512</memory>", 512 * kMiB},
      {"<memory unit='M'>512</memory>", 512 * kMiB},
      {"<memory unit='GiB'>2</memory>", 2 * kGiB},
      {"<memory unit='gib'>2</memory>", 2 * kGiB},
      {"<memory unit='TiB'>1</memory>", 1024 * kGiB},
      {"<memory unit='MB'>1</memory>", 977},  // 1000000 bytes = 976.56 KiB, rounded up
      {"<memory unit='bytes'>1025</memory>", 2},
      {"<memory unit='b'>1024</memory>", 1},
      {"<memory unit='KiB'> 4096 </memory>", 4096},
  };
  for (const Case& c : cases) {
    StatusOr<DomainFacts> facts = ParseDomain(Domain("", "", c.memory + "<vcpu>1</vcpu>"));
    ASSERT_TRUE(facts.ok()) << c.memory << ": " << facts.status().ToString();
    EXPECT_EQ(facts->memory_kib, c.kib) << c.memory;
    EXPECT_EQ(facts->current_memory_kib, c.kib) << "no <currentMemory> means all of <memory>";
  }
}

TEST(PolicyDomainXmlTest, BadMemoryIsAnError) {
  const std::pair<std::string, std::string> cases[] = {
      {"<memory unit='XB'>1</memory>", "unknown unit 'XB'"},
      {"<memory unit='KiB'>-1</memory>", "'-1' is not a whole number"},
      {"<memory unit='KiB'>1.5</memory>", "'1.5' is not a whole number"},
      {"<memory unit='EiB'>20000000</memory>", "is too large"},
      {"<memory unit='KiB'>1024</memory><currentMemory unit='KiB'>lots</currentMemory>", "<currentMemory>"},
  };
  for (const auto& [memory, message] : cases) {
    StatusOr<DomainFacts> facts = ParseDomain(Domain("", "", memory + "<vcpu>1</vcpu>"));
    ASSERT_FALSE(facts.ok()) << memory;
    EXPECT_EQ(facts.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(facts.status().message(), HasSubstr(message));
  }
}

TEST(PolicyDomainXmlTest, Vcpus) {
  const std::string memory = "<memory>1048576</memory>";
  StatusOr<DomainFacts> no_vcpu = ParseDomain(Domain("", "", memory));
  ASSERT_TRUE(no_vcpu.ok());
  EXPECT_EQ(no_vcpu->max_vcpus, 1u);  // libvirt's default
  EXPECT_EQ(no_vcpu->current_vcpus, 1u);

  StatusOr<DomainFacts> no_current = ParseDomain(Domain("", "", memory + "<vcpu placement='static'>6</vcpu>"));
  ASSERT_TRUE(no_current.ok());
  EXPECT_EQ(no_current->max_vcpus, 6u);
  EXPECT_EQ(no_current->current_vcpus, 6u);

  const std::pair<std::string, std::string> bad[] = {
      {"<vcpu>0</vcpu>", "'0' is not a vCPU count"},
      {"<vcpu>many</vcpu>", "'many' is not a vCPU count"},
      {"<vcpu>99999999999</vcpu>", "is not a vCPU count"},
      {"<vcpu current='5'>4</vcpu>", "from 1 to 4"},
      {"<vcpu current='0'>4</vcpu>", "from 1 to 4"},
  };
  for (const auto& [vcpu, message] : bad) {
    StatusOr<DomainFacts> facts = ParseDomain(Domain("", "", memory + vcpu));
    ASSERT_FALSE(facts.ok()) << vcpu;
    EXPECT_THAT(facts.status().message(), HasSubstr(message));
  }
}

TEST(PolicyDomainXmlTest, OnlyDiskDevicesAreKept) {
  const std::string devices = R"(
    <disk type='file'><source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
    <disk type='file' device='floppy'><source file='/img/f.img'/><target dev='fda' bus='fdc'/></disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'><host name='ceph1' port='6789'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>)";
  StatusOr<DomainFacts> facts = ParseDomain(Domain("", devices));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_EQ(facts->disks.size(), 2u);
  // No device= means a disk; no <driver> means no known format.
  EXPECT_EQ(facts->disks[0], (DiskFacts{"vda", "virtio", DiskFacts::SourceKind::kFile, "/img/a.qcow2", ""}));
  EXPECT_EQ(facts->disks[1], (DiskFacts{"vdb", "virtio", DiskFacts::SourceKind::kOther, "", "raw"}));
}

TEST(PolicyDomainXmlTest, RequiredElementsAreNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"<domain><uuid>u</uuid><memory>1024</memory></domain>", "no <name>"},
      {"<domain><name>vm</name><memory>1024</memory></domain>", "no <uuid>"},
      {"<domain><name>  </name><uuid>u</uuid><memory>1024</memory></domain>", "no <name>"},
      {"<domain><name>vm</name><uuid>u</uuid></domain>", "no <memory>"},
      {"<network><name>default</name></network>", "root element is <network>, not <domain>"},
      {"<x:domain xmlns:x='urn:x'><name>vm</name></x:domain>", "root element is <x:domain>"},
  };
  for (const auto& [xml, message] : cases) {
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    ASSERT_FALSE(facts.ok()) << xml;
    EXPECT_EQ(facts.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(facts.status().message(), HasSubstr(message));
  }
}

TEST(PolicyDomainXmlTest, UntaggedWhenNoPolicyElement) {
  PolicyResult empty = PolicyOf("");
  EXPECT_TRUE(IsUntagged(empty));
  EXPECT_EQ(empty.hook_failure, HookFailureMode::kOpen);

  // Other applications' metadata, even with a "policy" element or a "shadow" prefix, is not ours.
  EXPECT_TRUE(IsUntagged(PolicyOf(R"(<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>x</nova:name></nova:instance>)")));
  EXPECT_TRUE(IsUntagged(PolicyOf(R"(<shadow:policy xmlns:shadow="http://example.com/other" vcpus="oops"/>)")));
  EXPECT_TRUE(IsUntagged(PolicyOf(R"(<policy vcpus="2"/>)")));  // no namespace at all

  StatusOr<DomainFacts> no_metadata = ParseDomain(
      "<domain><name>vm</name><uuid>u</uuid><memory>1048576</memory></domain>");
  ASSERT_TRUE(no_metadata.ok());
  EXPECT_TRUE(IsUntagged(ParsePolicy(*no_metadata)));
}

TEST(PolicyDomainXmlTest, PolicyIsMatchedByNamespaceNotPrefix) {
  const std::string uri(kPolicyNamespace);
  const std::string spellings[] = {
      "<shadow:policy xmlns:shadow='" + uri + "' vcpus='3'/>",
      "<vs:policy xmlns:vs='" + uri + "' vcpus='3'/>",
      "<policy xmlns='" + uri + "' vcpus='3'/>",
  };
  for (const std::string& element : spellings) {
    PolicyResult result = PolicyOf(element);
    ASSERT_TRUE(result.policy.ok()) << element << ": " << result.policy.status().ToString();
    ASSERT_TRUE(result.policy->has_value()) << element;
    EXPECT_EQ((*result.policy)->vcpus, ResourceSpec::Absolute(3));
  }
  // The namespace declared on <domain> and used on the element.
  StatusOr<DomainFacts> inherited = ParseDomain(
      "<domain xmlns:s='" + uri + "'><name>vm</name><uuid>u</uuid><memory>1048576</memory>"
      "<metadata><s:policy vcpus='3'/></metadata></domain>");
  ASSERT_TRUE(inherited.ok());
  ASSERT_EQ(inherited->policy_elements.size(), 1u);
}

TEST(PolicyDomainXmlTest, PolicyNestedInsideAnotherApplicationsMetadataIsIgnored) {
  EXPECT_TRUE(IsUntagged(PolicyOf("<app:data xmlns:app='urn:app'><policy xmlns='" + std::string(kPolicyNamespace) +
                                  "' vcpus='oops'/></app:data>")));
}

TEST(PolicyDomainXmlTest, InvalidPolicyIsAnErrorNamingTheDomain) {
  PolicyResult result =
      PolicyOf(R"(<s:policy xmlns:s="http://virt-shadow.org/xmlns/policy/1.0" memory="12XB" critical="yes"/>)");
  ASSERT_FALSE(result.policy.ok());
  EXPECT_EQ(result.policy.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(result.policy.status().message(),
            "domain 'vm': policy attribute 'memory': '12XB' is not a size; use a number with KiB, MiB or GiB, or a "
            "percentage such as 50%");
  EXPECT_EQ(result.hook_failure, HookFailureMode::kClosed);  // best effort: critical="yes" parsed

  PolicyResult not_critical = PolicyOf(R"(<s:policy xmlns:s="http://virt-shadow.org/xmlns/policy/1.0" vcpus="0"/>)");
  ASSERT_FALSE(not_critical.policy.ok());
  EXPECT_EQ(not_critical.hook_failure, HookFailureMode::kOpen);
}

TEST(PolicyDomainXmlTest, ChildElementAndUnknownNameInOurNamespaceAreErrors) {
  const std::string uri(kPolicyNamespace);
  PolicyResult child = PolicyOf("<s:policy xmlns:s='" + uri + "'><s:vcpus>2</s:vcpus></s:policy>");
  EXPECT_THAT(child.policy.status().message(), HasSubstr("child element <s:vcpus>"));
  PolicyResult text = PolicyOf("<s:policy xmlns:s='" + uri + "'>vcpus=2</s:policy>");
  EXPECT_THAT(text.policy.status().message(), HasSubstr("contains text"));
  PolicyResult misspelled = PolicyOf("<s:polcy xmlns:s='" + uri + "' vcpus='2'/>");
  EXPECT_THAT(misspelled.policy.status().message(), HasSubstr("unexpected element 'polcy'"));
}

TEST(PolicyDomainXmlTest, DuplicatePolicyElementsAreAnError) {
  const std::string uri(kPolicyNamespace);
  PolicyResult result = PolicyOf("<a:policy xmlns:a='" + uri + "' vcpus='2'/><b:policy xmlns:b='" + uri +
                                 "' vcpus='3' critical='yes'/>");
  ASSERT_FALSE(result.policy.ok());
  EXPECT_THAT(result.policy.status().message(), HasSubstr("domain 'vm' has 2 elements in namespace " + uri));
  EXPECT_EQ(result.hook_failure, HookFailureMode::kClosed);  // either element asking for closed wins

  PolicyResult open = PolicyOf("<a:policy xmlns:a='" + uri + "'/><b:policy xmlns:b='" + uri + "'/>");
  ASSERT_FALSE(open.policy.ok());
  EXPECT_EQ(open.hook_failure, HookFailureMode::kOpen);
}

TEST(PolicyDomainXmlTest, ValidPolicyHookFailureIsTheEffectiveOne) {
  const std::string uri(kPolicyNamespace);
  EXPECT_EQ(PolicyOf("<s:policy xmlns:s='" + uri + "'/>").hook_failure, HookFailureMode::kOpen);
  EXPECT_EQ(PolicyOf("<s:policy xmlns:s='" + uri + "' critical='yes'/>").hook_failure, HookFailureMode::kClosed);
  EXPECT_EQ(PolicyOf("<s:policy xmlns:s='" + uri + "' critical='yes' hook-failure='open'/>").hook_failure,
            HookFailureMode::kOpen);
}

TEST(PolicyDomainXmlTest, RenderedPolicyParsesBackEqual) {
  std::vector<Policy> policies(4);
  policies[1].critical = true;
  policies[1].vcpus = ResourceSpec::Absolute(3);
  policies[1].memory = ResourceSpec::Absolute(65537);
  policies[1].interval = std::chrono::milliseconds(1500);
  policies[2].enabled = false;
  policies[2].memory = ResourceSpec::Percent(100);
  policies[2].zone = ZonePreference::kAny;
  policies[2].cost_cap_per_hour = 0.1;
  policies[2].hook_failure = HookFailureMode::kClosed;
  policies[3].priority = 0;
  policies[3].shadows = 3;
  policies[3].warmup = false;
  policies[3].interval = std::chrono::hours(1);
  policies[3].cost_cap_per_hour = 1234.5678;
  policies[3].memory = ResourceSpec::Absolute(3 * kGiB);
  for (const Policy& policy : policies) {
    const std::string rendered = RenderPolicy(policy);
    PolicyResult result = PolicyOf(testing::WithPolicyNamespace(rendered));
    ASSERT_TRUE(result.policy.ok()) << rendered << ": " << result.policy.status().ToString();
    ASSERT_TRUE(result.policy->has_value());
    EXPECT_EQ(**result.policy, policy) << rendered;
  }
}

TEST(PolicyDomainXmlTest, MalformedXmlIsAnErrorAndNothingIsPrinted) {
  const std::string truncated(kRealisticDomain.substr(0, kRealisticDomain.size() / 2));
  constexpr char kBinary[] = "<domain>\0\x01\xff\xfe</domain>";
  const std::string cases[] = {
      "",
      "   \n",
      "not xml at all",
      "{\"domain\": {\"name\": \"vm\"}}",
      truncated,
      "<domain><name>vm</name></domian>",
      "<domain><name>vm</name><uuid>u</uuid><memory>1</memory></domain><domain/>",
      "<domain><metadata><x:policy vcpus='2'/></metadata></domain>",  // undeclared prefix
      std::string(kBinary, sizeof kBinary - 1),
      "<domain><name>\xc3\x28</name></domain>",  // invalid UTF-8
  };
  for (const std::string& xml : cases) {
    ::testing::internal::CaptureStderr();
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    const std::string printed = ::testing::internal::GetCapturedStderr();
    ASSERT_FALSE(facts.ok()) << xml;
    EXPECT_EQ(facts.status().code(), Code::kInvalidArgument) << xml;
    EXPECT_EQ(printed, "") << xml;
  }
  StatusOr<DomainFacts> truncated_facts = ParseDomain(truncated);
  EXPECT_THAT(truncated_facts.status().message(), StartsWith("domain XML is not well-formed: line "));
  EXPECT_THAT(ParseDomain("").status().message(), HasSubstr("empty"));
}

TEST(PolicyDomainXmlTest, EntitiesAndDoctypesAreRefused) {
  const std::string billion_laughs = R"(<?xml version="1.0"?>
<!DOCTYPE domain [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<domain><name>&g;</name><uuid>u</uuid><memory>1024</memory>
<metadata><s:policy xmlns:s="http://virt-shadow.org/xmlns/policy/1.0" zone="&g;"/></metadata></domain>)";
  const std::string external = R"(<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<domain><name>&secret;</name><uuid>u</uuid><memory>1024</memory></domain>)";
  const std::string external_dtd = R"(<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "http://example.com/evil.dtd">
<domain><name>vm</name><uuid>u</uuid><memory>1024</memory></domain>)";
  for (const std::string& xml : {billion_laughs, external, external_dtd}) {
    ::testing::internal::CaptureStderr();
    const auto start = std::chrono::steady_clock::now();
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    ASSERT_FALSE(facts.ok()) << xml;
    EXPECT_EQ(facts.status().code(), Code::kInvalidArgument);
    EXPECT_LT(elapsed, std::chrono::seconds(2)) << "entity expansion must not run away";
  }
}

TEST(PolicyDomainXmlTest, DeepNestingIsRefused) {
  std::string xml = "<domain><name>vm</name><uuid>u</uuid><memory>1024</memory><metadata>";
  constexpr int kDepth = 100'000;
  for (int i = 0; i < kDepth; ++i) xml += "<a>";
  for (int i = 0; i < kDepth; ++i) xml += "</a>";
  xml += "</metadata></domain>";
  ::testing::internal::CaptureStderr();
  StatusOr<DomainFacts> facts = ParseDomain(xml);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_FALSE(facts.ok());
  EXPECT_THAT(facts.status().message(), HasSubstr("not well-formed"));
}

TEST(PolicyDomainXmlTest, HugeAttributeGivesAShortError) {
  const std::string huge(1 << 20, 'x');
  PolicyResult result =
      PolicyOf("<s:policy xmlns:s='" + std::string(kPolicyNamespace) + "' zone='" + huge + "' critical='yes'/>");
  ASSERT_FALSE(result.policy.ok());
  EXPECT_LT(result.policy.status().message().size(), 300u);
  EXPECT_EQ(result.hook_failure, HookFailureMode::kClosed);
}

TEST(PolicyDomainXmlTest, OversizedXmlIsRefusedBeforeParsing) {
  std::string xml = "<domain><name>" + std::string(kMaxDomainXmlBytes, 'x') + "</name></domain>";
  StatusOr<DomainFacts> facts = ParseDomain(xml);
  ASSERT_FALSE(facts.ok());
  EXPECT_THAT(facts.status().message(), HasSubstr("more than the 10000000 accepted"));
}

// The limit is libxml2's text limit: an XML of the limit parses even when it is all one text node.
TEST(PolicyDomainXmlTest, XmlOfTheLimitParsesWithOneHugeTextNode) {
  const std::string head = "<domain><name>vm</name><uuid>u</uuid><memory>1024</memory><description>";
  const std::string tail = "</description></domain>";
  const std::string xml = head + std::string(kMaxDomainXmlBytes - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(xml.size(), kMaxDomainXmlBytes);
  StatusOr<DomainFacts> facts = ParseDomain(xml);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->name, "vm");
}

TEST(PolicyDomainXmlTest, ConcurrentParsesAgreeWithSerialOnes) {
  const std::string uri(kPolicyNamespace);
  const std::vector<std::string> inputs = {
      std::string(kRealisticDomain),
      Domain("<s:policy xmlns:s='" + uri + "' memory='12XB'/>"),
      Domain(""),
      "<domain><name>vm</name>",
      "garbage",
  };
  std::vector<std::string> expected;
  for (const std::string& xml : inputs) {
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    expected.push_back(facts.ok() ? ParsePolicy(*facts).policy.status().ToString() : facts.status().ToString());
  }
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  ::testing::internal::CaptureStderr();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const std::size_t i = static_cast<std::size_t>(round + t) % inputs.size();
        StatusOr<DomainFacts> facts = ParseDomain(inputs[i]);
        std::string got = facts.ok() ? ParsePolicy(*facts).policy.status().ToString() : facts.status().ToString();
        if (got != expected[i]) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(PolicyMayBeTaggedTest, UntaggedDomainsAreSkipped) {
  EXPECT_FALSE(MayBeTagged(Domain("")));
  EXPECT_FALSE(MayBeTagged(Domain("<app:x xmlns:app='http://example.org/app/1.0'/>")));
  EXPECT_FALSE(MayBeTagged(""));
  EXPECT_TRUE(MayBeTagged(kRealisticDomain));
}

// A Nova instance may be protected through Nova's API without any policy element: never skipped.
TEST(PolicyMayBeTaggedTest, NovaInstancesMayBeTagged) {
  for (std::string_view ns : {kNovaNamespace, kNovaNamespace10}) {
    const std::string xml = Domain("<nova:instance xmlns:nova='" + std::string(ns) + "'/>");
    EXPECT_TRUE(MayBeTagged(xml)) << xml;
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    ASSERT_TRUE(facts.ok()) << facts.status().ToString();
    EXPECT_TRUE(facts->nova.has_value());
    EXPECT_TRUE(IsUntagged(ParsePolicy(*facts)));  // no policy element: the policy comes from Nova
  }
  EXPECT_TRUE(MayBeTagged(kNovaDomain));
}

TEST(PolicyMayBeTaggedTest, FalsePositivesAreAllowed) {
  const std::string in_comment = Domain("<!-- http://virt-shadow.org/xmlns/policy/1.0 -->");
  EXPECT_TRUE(MayBeTagged(in_comment));
  EXPECT_TRUE(IsUntagged(ParsePolicy(*ParseDomain(in_comment))));
  EXPECT_TRUE(MayBeTagged(Domain("", "", "<memory>1</memory><description>&#65;</description>")));
}

// Never a false negative: whenever ParsePolicy sees a policy element, MayBeTagged said yes, including
// when the namespace URI is spelled with character references.
TEST(PolicyMayBeTaggedTest, NoFalseNegatives) {
  std::vector<std::string> documents = {
      std::string(kRealisticDomain),
      Domain("<s:policy xmlns:s='http&#58;//virt-shadow.org/xmlns/policy/1.0'/>"),
      Domain("<s:policy xmlns:s='&#x68;ttp://virt-shadow.org/xmlns/policy/1.0' vcpus='bad'/>"),
  };
  for (const testing::PolicyCase& c : testing::kPolicyCases) {
    documents.push_back(Domain(testing::WithPolicyNamespace(c.element)));
  }
  int tagged = 0;
  for (const std::string& xml : documents) {
    StatusOr<DomainFacts> facts = ParseDomain(xml);
    ASSERT_TRUE(facts.ok()) << xml << ": " << facts.status().ToString();
    if (IsUntagged(ParsePolicy(*facts))) continue;
    ++tagged;
    EXPECT_TRUE(MayBeTagged(xml)) << xml;
  }
  EXPECT_EQ(tagged, static_cast<int>(documents.size()));  // the char-ref spellings really are tagged
}

}  // namespace
}  // namespace vs::policy
