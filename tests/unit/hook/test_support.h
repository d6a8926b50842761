// Domain XMLs and a scratch directory shared by the hook and spool tests. Test-only.
#pragma once

#include <string>
#include <string_view>

#include "shadowd/policy/policy.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::hook::testing {

// A libvirt domain XML (as `virsh dumpxml` prints it, trimmed) whose <metadata> holds `metadata`, after Nova's
// <nova:instance> unless `nova` is false.
inline std::string DomainXml(std::string_view metadata, std::string_view name = "web-1", bool nova = true) {
  return "<domain type='kvm'>\n"
         "  <name>" + std::string(name) + "</name>\n"
         "  <uuid>8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</uuid>\n"
         "  <metadata>\n"
         + std::string(nova ? "    <nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\">"
                              "<nova:name>x</nova:name></nova:instance>\n"
                            : "") +
         "    " + std::string(metadata) + "\n"
         "  </metadata>\n"
         "  <memory unit='KiB'>1048576</memory>\n"
         "  <vcpu placement='static'>2</vcpu>\n"
         "  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n"
         "  <devices>\n"
         "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
         "<source file='/var/lib/libvirt/images/web-1.qcow2'/><target dev='vda' bus='virtio'/></disk>\n"
         "  </devices>\n"
         "</domain>\n";
}

// A domain tagged with <policy ATTRIBUTES/>, e.g. TaggedXml("critical=\"yes\"").
inline std::string TaggedXml(std::string_view attributes = "", std::string_view name = "web-1") {
  return DomainXml("<shadow:policy xmlns:shadow=\"" + std::string(policy::kPolicyNamespace) + "\" " +
                       std::string(attributes) + "/>",
                   name);
}

// Not a Nova instance either: a Nova instance "may be tagged" (policy::MayBeTagged), its policy may come from Nova.
inline std::string UntaggedXml() { return DomainXml("<!-- no virt-shadow policy -->", "web-1", /*nova=*/false); }

// `xml` grown to exactly `bytes` bytes (at least its size plus 30) by a <description> of that many 'd's, one text
// node, where libvirt writes it: before <metadata>, so that in a large XML the policy comes late.
inline std::string WithDescription(std::string xml, std::size_t bytes) {
  const std::string open = "  <description>", close = "</description>\n";
  const std::size_t padding = bytes - xml.size() - open.size() - close.size();
  xml.insert(xml.find("  <metadata>"), open + std::string(padding, 'd') + close);
  return xml;
}
using vs::test_support::TempDir;

}  // namespace vs::hook::testing
