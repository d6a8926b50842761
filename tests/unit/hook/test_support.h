// Domain XMLs and a scratch directory shared by the hook and spool tests. Test-only.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "shadowd/policy/policy.h"

namespace vs::hook::testing {

// A libvirt domain XML (as `virsh dumpxml` prints it, trimmed) whose <metadata> holds `metadata`.
inline std::string DomainXml(std::string_view metadata, std::string_view name = "web-1") {
  return "<domain type='kvm'>\n"
         "  <name>" + std::string(name) + "</name>\n"
         "  <uuid>8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</uuid>\n"
         "  <metadata>\n"
         "    <nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\"><nova:name>x</nova:name>"
         "</nova:instance>\n"
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

inline std::string UntaggedXml() { return DomainXml("<!-- no virt-shadow policy -->"); }

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at scope exit. Kept short:
// unix socket paths inside it must fit in sun_path (108 bytes).
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/vs_hook.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();  // no directory: no meaningful test
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

}  // namespace vs::hook::testing
