#include "shadowd/controller/shadow_domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>
#include <utility>
#include <vector>

#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/policy/policy.h"
#include "shadowd/policy/xml_document.h"
#include "shadowd/policy/top_path.h"

namespace vs::controller {
namespace {

constexpr std::string_view kShadowPrefix = "shadow";
constexpr std::string_view kShadowLogSuffix = ".shadow";

struct BufferDeleter {
  void operator()(xmlBuffer* b) const { xmlBufferFree(b); }
};
using xml::DocPtr;
using xml::ToString;
using xml::X;

bool IsElement(const xmlNode* node, std::string_view name) {
  return node->type == XML_ELEMENT_NODE && node->ns == nullptr && ToString(node->name) == name;
}

std::vector<xmlNode*> Children(xmlNode* parent, std::string_view name) {
  std::vector<xmlNode*> found;
  for (xmlNode* n = parent->children; n != nullptr; n = n->next) {
    if (IsElement(n, name)) found.push_back(n);
  }
  return found;
}

xmlNode* Child(xmlNode* parent, std::string_view name) {
  std::vector<xmlNode*> found = Children(parent, name);
  return found.empty() ? nullptr : found.front();
}

std::optional<std::string> Attr(const xmlNode* node, const char* name) {
  xml::XmlCharPtr value(xmlGetNoNsProp(node, X(name)));
  if (!value) return std::nullopt;
  return ToString(value.get());
}

// xmlSetProp stores the value as text: it is escaped on output, whatever it contains.
void SetAttr(xmlNode* node, const char* name, const std::string& value) { xmlSetProp(node, X(name), X(value)); }
void UnsetAttr(xmlNode* node, const char* name) { xmlUnsetProp(node, X(name)); }

void Remove(xmlNode* node) {
  xmlUnlinkNode(node);
  xmlFreeNode(node);
}

void RemoveChildren(xmlNode* parent, std::string_view name) {
  for (xmlNode* n : Children(parent, name)) Remove(n);
}

// Replaces the content with `text` as literal text (xmlNodeSetContent would interpret '&').
void SetText(xmlNode* node, const std::string& text) {
  while (node->children != nullptr) Remove(node->children);
  xmlNodeAddContent(node, X(text));
}

xmlNode* NewElementAfter(xmlNode* sibling, const char* name) {
  xmlNode* node = xmlNewDocNode(sibling->doc, nullptr, X(name), nullptr);
  return xmlAddNextSibling(sibling, node);
}


Status CheckIdentities(const policy::DomainFacts& facts, const ShadowIdentity& shadow,
                       const lifecycle::ShadowSize& size, const PrimaryIdentity& primary) {
  VS_ASSIGN_OR_RETURN(std::string xml_uuid, lifecycle::CanonicalUuid(facts.uuid));
  StatusOr<std::string> primary_uuid = lifecycle::CanonicalUuid(primary.uuid);
  if (!primary_uuid.ok()) return primary_uuid.status().Annotate("PrimaryIdentity.uuid");
  if (*primary_uuid != xml_uuid) {
    return InvalidArgument("PrimaryIdentity.uuid " + *primary_uuid + " is not the <uuid> " + xml_uuid +
                           " of the primary XML; pass the XML of that VM");
  }
  if (primary.name.empty()) return InvalidArgument("PrimaryIdentity.name is empty; pass the primary's domain name");
  if (primary.host.empty()) return InvalidArgument("PrimaryIdentity.host is empty; pass the primary's host name");
  if (shadow.name.empty()) return InvalidArgument("ShadowIdentity.name is empty; use lifecycle::ShadowName");
  StatusOr<std::string> shadow_uuid = lifecycle::CanonicalUuid(shadow.uuid);
  if (!shadow_uuid.ok()) return shadow_uuid.status().Annotate("ShadowIdentity.uuid");
  if (*shadow_uuid == xml_uuid) {
    return InvalidArgument("ShadowIdentity.uuid equals the primary's uuid " + xml_uuid +
                           "; use lifecycle::ShadowUuid");
  }
  if (size.vcpus < 1 || size.vcpus > facts.max_vcpus) {
    return InvalidArgument("shadow vcpus " + std::to_string(size.vcpus) + " must be from 1 to the primary's " +
                           std::to_string(facts.max_vcpus) + " (its <vcpu> maximum)");
  }
  if (size.memory_kib < 1 || size.memory_kib > facts.memory_kib) {
    return InvalidArgument("shadow memory " + std::to_string(size.memory_kib) + " KiB must be from 1 KiB to the primary's " +
                           std::to_string(facts.memory_kib) + " KiB (its <memory>)");
  }
  return Status::Ok();
}

// <sysinfo type='smbios'><system><entry name='uuid'>: libvirt refuses a domain whose SMBIOS system UUID is not its
// <uuid> (Nova writes the instance's there). Removed from the shadow: without it, libvirt gives the guest the
// domain's own UUID, which for the VM promoted from its shadow is the VM's again.
void RemoveSmbiosUuid(xmlNode* root) {
  for (xmlNode* sysinfo = root->children; sysinfo != nullptr; sysinfo = sysinfo->next) {
    if (sysinfo->type != XML_ELEMENT_NODE || ToString(sysinfo->name) != "sysinfo") continue;
    for (xmlNode* system = sysinfo->children; system != nullptr; system = system->next) {
      if (system->type != XML_ELEMENT_NODE || ToString(system->name) != "system") continue;
      for (xmlNode* entry = system->children; entry != nullptr;) {
        xmlNode* next = entry->next;
        xmlChar* name = entry->type == XML_ELEMENT_NODE ? xmlGetProp(entry, X("name")) : nullptr;
        const bool uuid = name != nullptr && ToString(name) == "uuid";
        xmlFree(name);
        if (uuid) {
          xmlUnlinkNode(entry);
          xmlFreeNode(entry);
        }
        entry = next;
      }
    }
  }
}

void SetIdentity(xmlNode* root, const ShadowIdentity& shadow, const std::string& shadow_uuid) {
  UnsetAttr(root, "id");  // the running primary's domain id: live-only
  SetText(Child(root, "name"), shadow.name);
  SetText(Child(root, "uuid"), shadow_uuid);
  RemoveSmbiosUuid(root);
}

// <vcpu current='N'>MAX</vcpu>, <currentMemory unit='KiB'>M</currentMemory>; <memory> untouched.
void SetSize(xmlNode* root, const lifecycle::ShadowSize& size) {
  xmlNode* memory = Child(root, "memory");  // ParseDomain requires it
  xmlNode* current_memory = Child(root, "currentMemory");
  if (current_memory == nullptr) current_memory = NewElementAfter(memory, "currentMemory");
  SetAttr(current_memory, "unit", "KiB");
  SetText(current_memory, std::to_string(size.memory_kib));

  xmlNode* vcpu = Child(root, "vcpu");
  if (vcpu == nullptr) {  // libvirt's default is one vCPU; CheckIdentities allowed only 1
    vcpu = NewElementAfter(current_memory, "vcpu");
    SetText(vcpu, "1");
  }
  SetAttr(vcpu, "current", std::to_string(size.vcpus));
  // <vcpus> enables vCPUs one by one; it would contradict the new current count.
  RemoveChildren(root, "vcpus");
}

bool InPolicyNamespace(const xmlNode* node) {
  return node->type == XML_ELEMENT_NODE && node->ns != nullptr && ToString(node->ns->href) == policy::kPolicyNamespace;
}

// Removes every element of the policy namespace under <metadata>: a policy, or a shadow-of link.
void RemoveOurMetadata(xmlNode* metadata) {
  std::vector<xmlNode*> ours;
  for (xmlNode* n = metadata->children; n != nullptr; n = n->next) {
    if (InPolicyNamespace(n)) ours.push_back(n);
  }
  for (xmlNode* n : ours) Remove(n);
}

void SetLink(xmlNode* root, const PrimaryIdentity& primary, const std::string& primary_uuid, std::uint32_t index) {
  xmlNode* metadata = Child(root, "metadata");
  if (metadata == nullptr) {
    metadata = xmlNewDocNode(root->doc, nullptr, X("metadata"), nullptr);
    xmlAddChild(root, metadata);
  }
  RemoveOurMetadata(metadata);  // the policy: a shadow is never itself protected

  xmlNode* link = xmlNewDocNode(root->doc, nullptr, X(std::string(kShadowOfElement)), nullptr);
  xmlNs* ns = xmlNewNs(link, X(std::string(policy::kPolicyNamespace)), X(std::string(kShadowPrefix)));
  xmlSetNs(link, ns);
  SetAttr(link, "uuid", primary_uuid);
  SetAttr(link, "name", primary.name);
  SetAttr(link, "host", primary.host);
  SetAttr(link, "index", std::to_string(index));
  // The VM's policy, for a crash promotion on the shadow's host: the primary's record, which holds it, may be
  // gone with its host. An attribute, not an element: a policy element would make the shadow itself tagged.
  if (!primary.policy_xml.empty()) SetAttr(link, "policy", primary.policy_xml);
  xmlAddChild(metadata, link);
}

// Dynamic labels are chosen by libvirt when a domain starts; the shadow gets its own.
void StripLiveSeclabels(xmlNode* root) {
  for (xmlNode* seclabel : Children(root, "seclabel")) {
    if (Attr(seclabel, "type").value_or("dynamic") != "dynamic") continue;
    RemoveChildren(seclabel, "label");
    RemoveChildren(seclabel, "imagelabel");
  }
}

Status RewriteDisk(xmlNode* disk) {
  const std::string device = Attr(disk, "device").value_or("disk");
  if (device == "cdrom" || device == "floppy") {
    // Media is not replicated: the shadow's drive is empty, so it never refers to a missing file.
    RemoveChildren(disk, "source");
    RemoveChildren(disk, "backingStore");
    SetAttr(disk, "type", "file");
    return Status::Ok();
  }
  if (device != "disk") return Status::Ok();  // LUNs are passed through, not replicated
  const xmlNode* target = Child(disk, "target");
  const std::string dev = target != nullptr ? Attr(target, "dev").value_or("?") : "?";
  const std::string type = Attr(disk, "type").value_or("");
  if (type != "file") {
    return InvalidArgument("disk '" + dev + "' has type='" + type +
                           "': only file-backed disks (type='file') can be replicated to a shadow");
  }
  xmlNode* source = Child(disk, "source");
  if (source == nullptr || Attr(source, "file").value_or("").empty()) {
    return InvalidArgument("disk '" + dev + "' has no <source file=...>: an empty disk cannot be replicated");
  }
  UnsetAttr(source, "index");               // live: libvirt's node numbering
  // A VM that just arrived by a switchover runs on "<image>.vs-top-<tag>" until its new host flattens it: its
  // shadow's replica is <image> itself, in the format of the image beneath.
  if (const std::string file = *Attr(source, "file"); policy::IsTopPath(file)) {
    SetAttr(source, "file", policy::BasePathOf(file));
    xmlNode* backing = Child(disk, "backingStore");
    const xmlNode* backing_format = backing != nullptr ? Child(backing, "format") : nullptr;
    xmlNode* driver = Child(disk, "driver");
    if (driver != nullptr && backing_format != nullptr) {
      SetAttr(driver, "type", Attr(backing_format, "type").value_or("qcow2"));
    }
  }
  RemoveChildren(disk, "backingStore");     // the replica is a standalone image
  RemoveChildren(source, "backingStore");
  return Status::Ok();
}

void RewriteCharDevice(xmlNode* chr) {
  for (xmlNode* log : Children(chr, "log")) {
    if (std::optional<std::string> file = Attr(log, "file")) SetAttr(log, "file", *file + std::string(kShadowLogSuffix));
  }
  if (Attr(chr, "type").value_or("") == "pty") {
    RemoveChildren(chr, "source");  // live: the pty allocated for the running primary
    UnsetAttr(chr, "tty");
  }
}

void RewriteGraphics(xmlNode* graphics) {
  if (Attr(graphics, "autoport").value_or("") != "yes") return;  // explicit ports are configuration
  UnsetAttr(graphics, "port");
  UnsetAttr(graphics, "tlsPort");
  UnsetAttr(graphics, "websocket");
}

Status RewriteDevices(xmlNode* root) {
  xmlNode* devices = Child(root, "devices");
  if (devices == nullptr) return Status::Ok();
  for (xmlNode* n = devices->children; n != nullptr; n = n->next) {
    if (IsElement(n, "disk")) {
      VS_RETURN_IF_ERROR(RewriteDisk(n));
    } else if (IsElement(n, "serial") || IsElement(n, "console") || IsElement(n, "parallel") ||
               IsElement(n, "channel")) {
      RewriteCharDevice(n);
    } else if (IsElement(n, "graphics")) {
      RewriteGraphics(n);
    }
  }
  return Status::Ok();
}

StatusOr<std::string> Serialize(xmlDoc* doc) {
  std::unique_ptr<xmlBuffer, BufferDeleter> buffer(xmlBufferCreate());
  if (!buffer) return Internal("libxml2 could not allocate an output buffer");
  if (xmlNodeDump(buffer.get(), doc, xmlDocGetRootElement(doc), 0, 0) < 0) {
    return Internal("libxml2 could not serialise the shadow domain XML");
  }
  return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer.get())),
                     static_cast<std::size_t>(xmlBufferLength(buffer.get())));
}

// The shadow's serial and console logs were renamed "<file>.shadow"; the promoted VM writes the VM's own.
void RestoreCharDeviceLogs(xmlNode* root) {
  xmlNode* devices = Child(root, "devices");
  if (devices == nullptr) return;
  for (xmlNode* n = devices->children; n != nullptr; n = n->next) {
    if (!IsElement(n, "serial") && !IsElement(n, "console") && !IsElement(n, "parallel") && !IsElement(n, "channel")) {
      continue;
    }
    for (xmlNode* log : Children(n, "log")) {
      const std::string file = Attr(log, "file").value_or("");
      if (file.ends_with(kShadowLogSuffix)) SetAttr(log, "file", file.substr(0, file.size() - kShadowLogSuffix.size()));
    }
  }
}

}  // namespace

StatusOr<std::string> PromotedDomainXml(std::string_view shadow_xml, std::string_view vm_uuid,
                                        std::string_view policy_xml) {
  // The link is read as everywhere else (one link, a valid uuid, a host); the host given only names it in errors.
  VS_ASSIGN_OR_RETURN(std::optional<PeerShadow> shadow, DescribeShadowDomain("this host", shadow_xml));
  if (!shadow) {
    VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(shadow_xml));
    return InvalidArgument("domain '" + facts.name + "' is not a shadow (no shadow-of link): nothing to promote");
  }
  VS_ASSIGN_OR_RETURN(std::string wanted_uuid, lifecycle::CanonicalUuid(vm_uuid));
  if (shadow->primary_uuid != wanted_uuid) {
    return InvalidArgument("domain '" + shadow->shadow_name + "' is the shadow of " + shadow->primary_uuid +
                           ", not of " + wanted_uuid);
  }
  if (shadow->primary_name.empty()) {
    return InvalidArgument("the shadow-of link of '" + shadow->shadow_name + "' has no name: the VM's name is unknown");
  }
  xml::DocPtr policy_doc;
  if (!policy_xml.empty()) {
    VS_ASSIGN_OR_RETURN(policy_doc, xml::ParseDocument(policy_xml, "the VM's policy element"));
    if (!InPolicyNamespace(xmlDocGetRootElement(policy_doc.get()))) {
      return InvalidArgument("the VM's policy element is not in the namespace " +
                             std::string(policy::kPolicyNamespace));
    }
  }
  VS_ASSIGN_OR_RETURN(DocPtr doc, xml::ParseDocument(shadow_xml, "shadow domain XML"));
  xmlNode* root = xmlDocGetRootElement(doc.get());
  UnsetAttr(root, "id");
  SetText(Child(root, "name"), shadow->primary_name);
  SetText(Child(root, "uuid"), shadow->primary_uuid);
  xmlNode* metadata = Child(root, "metadata");  // the link lives there: it exists
  RemoveOurMetadata(metadata);
  if (policy_doc) xmlAddChild(metadata, xmlDocCopyNode(xmlDocGetRootElement(policy_doc.get()), doc.get(), 1));
  RestoreCharDeviceLogs(root);
  return Serialize(doc.get());
}

StatusOr<std::string> ShadowDomainXml(std::string_view primary_xml, const ShadowIdentity& shadow,
                                      const lifecycle::ShadowSize& size, const PrimaryIdentity& primary) {
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(primary_xml));
  if (IsShadowDomain(facts)) {
    return InvalidArgument("domain '" + facts.name + "' is itself a shadow (it has a shadow-of link); "
                           "shadows are not shadowed");
  }
  VS_RETURN_IF_ERROR(CheckIdentities(facts, shadow, size, primary));
  VS_ASSIGN_OR_RETURN(std::string shadow_uuid, lifecycle::CanonicalUuid(shadow.uuid));
  VS_ASSIGN_OR_RETURN(std::string primary_uuid, lifecycle::CanonicalUuid(primary.uuid));

  VS_ASSIGN_OR_RETURN(DocPtr doc, xml::ParseDocument(primary_xml, "primary domain XML"));
  xmlNode* root = xmlDocGetRootElement(doc.get());
  SetIdentity(root, shadow, shadow_uuid);
  SetSize(root, size);
  SetLink(root, primary, primary_uuid, shadow.index);
  StripLiveSeclabels(root);
  VS_RETURN_IF_ERROR(RewriteDevices(root));
  return Serialize(doc.get());
}

bool IsShadowDomain(const policy::DomainFacts& facts) {
  for (const policy::RawPolicy& element : facts.policy_elements) {
    if (element.element_name == kShadowOfElement) return true;
  }
  return false;
}

StatusOr<std::optional<PeerShadow>> DescribeShadowDomain(std::string_view host, std::string_view domain_xml) {
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(domain_xml));
  const policy::RawPolicy* link = nullptr;
  for (const policy::RawPolicy& element : facts.policy_elements) {
    if (element.element_name != kShadowOfElement) continue;
    if (link != nullptr) {
      return InvalidArgument("domain '" + facts.name + "' on host '" + std::string(host) + "' has two <" +
                             std::string(kShadowOfElement) + "> links; a shadow has exactly one primary");
    }
    link = &element;
  }
  if (link == nullptr) return std::optional<PeerShadow>();

  auto attribute = [link](std::string_view name) -> std::string {
    for (const auto& [key, value] : link->attributes) {
      if (key == name) return value;
    }
    return "";
  };
  const std::string where = "shadow '" + facts.name + "' on host '" + std::string(host) + "'";
  PeerShadow shadow;
  shadow.host = std::string(host);
  VS_ASSIGN_OR_RETURN(shadow.shadow_uuid, lifecycle::CanonicalUuid(facts.uuid));
  shadow.shadow_name = facts.name;
  StatusOr<std::string> primary_uuid = lifecycle::CanonicalUuid(attribute("uuid"));
  if (!primary_uuid.ok()) return primary_uuid.status().Annotate(where + ": <shadow-of uuid>");
  shadow.primary_uuid = *primary_uuid;
  shadow.primary_name = attribute("name");
  shadow.primary_host = attribute("host");
  if (shadow.primary_host.empty()) {
    return InvalidArgument(where + ": <shadow-of> has no host attribute naming the primary's host");
  }
  shadow.size = {facts.current_vcpus, facts.current_memory_kib};
  // "<policy .../>" (canonical, no namespace) -> the element in the policy namespace, as <metadata> holds it.
  if (const std::string policy = attribute("policy"); policy.starts_with("<policy")) {
    shadow.primary_policy_xml = "<" + std::string(kShadowPrefix) + ":policy xmlns:" + std::string(kShadowPrefix) +
                                "=\"" + std::string(policy::kPolicyNamespace) + "\"" +
                                policy.substr(std::string_view("<policy").size());
  }
  for (const policy::DiskFacts& disk : facts.disks) {
    if (disk.source_kind == policy::DiskFacts::SourceKind::kFile && !disk.source_path.empty()) {
      shadow.replica_paths.push_back(disk.source_path);
    }
  }
  return std::optional<PeerShadow>(std::move(shadow));
}

}  // namespace vs::controller
