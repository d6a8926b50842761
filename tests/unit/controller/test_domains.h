// Test data of the controller tests: a realistic libvirt domain XML (live form, as the hook and
// virsh dumpxml give it) and the constants the expectations are written with. The shadow UUID is a
// literal computed independently (Python uuid.uuid5), as in the lifecycle tests.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <cstdint>
#include <string>

namespace vs::controller::testing {

inline const std::string kVmUuid = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
inline const std::string kShadowUuid = "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e";  // uuid5(ns, kVmUuid + "/0")
inline const std::string kVmName = "web";
inline const std::string kShadowName = "web-shadow";
inline const std::string kRootDisk = "/var/lib/libvirt/images/web-root.qcow2";
inline const std::string kDataDisk = "/var/lib/libvirt/images/web-data.raw";
inline constexpr std::uint64_t kRootDiskBytes = 20ull << 30;
inline constexpr std::uint64_t kDataDiskBytes = 5ull << 30;
inline const std::string kPolicyNs = "http://virt-shadow.org/xmlns/policy/1.0";

// 4 vCPUs, 4 GiB; this policy asks for 2 vCPUs / 1 GiB, another zone preferred.
inline const std::string kPolicy =
    R"(<shadow:policy xmlns:shadow="http://virt-shadow.org/xmlns/policy/1.0" vcpus="50%" memory="1GiB"/>)";
inline constexpr std::uint32_t kShadowVcpus = 2;
inline constexpr std::uint64_t kShadowMemoryKiB = 1024 * 1024;

// The primary's live domain XML with `policy` (an element or "") in its <metadata>, next to nova's.
inline std::string PrimaryXml(const std::string& policy = kPolicy, const std::string& uuid = kVmUuid,
                              const std::string& name = kVmName) {
  return R"(<domain type='kvm' id='7'>
  <name>)" + name + R"(</name>
  <uuid>)" + uuid + R"(</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>web-1</nova:name>
    </nova:instance>
    )" + policy + R"(
  </metadata>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-root.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/debian-12-base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='/var/lib/libvirt/images/web-data.raw' index='1'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/cloud-init.iso' index='4'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/5'/>
      <log file='/var/log/libvirt/qemu/web-serial.log' append='on'/>
      <target type='isa-serial' port='0'/>
    </serial>
    <console type='pty' tty='/dev/pts/5'>
      <source path='/dev/pts/5'/>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+64055</label>
    <imagelabel>+64055:+64055</imagelabel>
  </seclabel>
</domain>
)";
}

// XPath queries on an XML text, with prefixes "s" (policy namespace) and "nova" bound. Returns -1 /
// "<unparsable>" when the XML does not parse, so that a broken output fails the expectation.
class XPathDoc {
 public:
  explicit XPathDoc(const std::string& xml)
      : doc_(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "t.xml", "UTF-8",
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)) {}
  ~XPathDoc() {
    if (doc_ != nullptr) xmlFreeDoc(doc_);
  }
  XPathDoc(const XPathDoc&) = delete;
  XPathDoc& operator=(const XPathDoc&) = delete;

  double Number(const std::string& expr) const {
    if (doc_ == nullptr) return -1;
    xmlXPathObjectPtr result = Eval(expr);
    if (result == nullptr) return -1;
    double value = xmlXPathCastToNumber(result);
    xmlXPathFreeObject(result);
    return value;
  }
  std::string String(const std::string& expr) const {
    if (doc_ == nullptr) return "<unparsable>";
    xmlXPathObjectPtr result = Eval(expr);
    if (result == nullptr) return "<bad xpath>";
    xmlChar* text = xmlXPathCastToString(result);
    std::string value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
    xmlFree(text);
    xmlXPathFreeObject(result);
    return value;
  }

 private:
  xmlXPathObjectPtr Eval(const std::string& expr) const {
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc_);
    xmlXPathRegisterNs(ctx, reinterpret_cast<const xmlChar*>("s"), reinterpret_cast<const xmlChar*>(kPolicyNs.c_str()));
    xmlXPathRegisterNs(ctx, reinterpret_cast<const xmlChar*>("nova"),
                       reinterpret_cast<const xmlChar*>("http://openstack.org/xmlns/libvirt/nova/1.1"));
    xmlXPathObjectPtr result = xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr.c_str()), ctx);
    xmlXPathFreeContext(ctx);
    return result;
  }
  xmlDocPtr doc_;
};

}  // namespace vs::controller::testing
