#include "shadowd/policy/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <memory>
#include <system_error>

#include "shadowd/policy/xml_document.h"

namespace vs::policy {
namespace {

static_assert(kMaxDomainXmlBytes <= XML_MAX_TEXT_LENGTH,
              "a domain XML within the limit must never hit libxml2's text limit (domain_xml.h)");

using xml::QualifiedName;
using xml::ToString;
using xml::XmlCharPtr;

bool NameIs(const xmlNode* node, std::string_view name) {
  return node->type == XML_ELEMENT_NODE && node->ns == nullptr && ToString(node->name) == name;
}

std::optional<std::string> Attribute(const xmlNode* node, const char* name) {
  XmlCharPtr value(xmlGetNoNsProp(node, reinterpret_cast<const xmlChar*>(name)));
  if (!value) return std::nullopt;
  return ToString(value.get());
}

std::string Text(const xmlNode* node) {
  XmlCharPtr text(xmlNodeGetContent(node));
  return ToString(text.get());
}

// First child element of `parent` with this (namespace-less) name, or null.
const xmlNode* Child(const xmlNode* parent, std::string_view name) {
  for (const xmlNode* n = parent->children; n != nullptr; n = n->next) {
    if (NameIs(n, name)) return n;
  }
  return nullptr;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> ParseUnsigned(std::string_view text) {
  text = Trim(text);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Bytes per unit for libvirt's scaled integers (case-insensitive, as libvirt reads them); 0 if unknown.
std::uint64_t BytesPerUnit(std::string unit) {
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  if (unit == "b" || unit == "byte" || unit == "bytes") return 1;
  constexpr std::string_view kPrefixes = "kmgtpe";
  if (unit.empty() || kPrefixes.find(unit[0]) == std::string_view::npos) return 0;
  std::string_view rest = std::string_view(unit).substr(1);
  std::uint64_t base = 0;
  if (rest.empty() || rest == "ib") base = 1024;
  if (rest == "b") base = 1000;
  if (base == 0) return 0;
  std::uint64_t bytes = 1;
  for (std::size_t i = 0; i <= kPrefixes.find(unit[0]); ++i) bytes *= base;  // at most 1024^6: no overflow
  return bytes;
}

// <memory unit='MiB'>512</memory> -> KiB, rounded up like libvirt does; KiB when there is no unit.
StatusOr<std::uint64_t> ParseMemoryKiB(const xmlNode* node) {
  const std::string element = ToString(node->name);
  const std::string text = Text(node);
  std::optional<std::uint64_t> amount = ParseUnsigned(text);
  if (!amount) {
    return InvalidArgument("domain XML <" + element + ">: '" + text.substr(0, 64) + "' is not a whole number");
  }
  const std::string unit = Attribute(node, "unit").value_or("KiB");
  const std::uint64_t bytes_per_unit = BytesPerUnit(unit);
  if (bytes_per_unit == 0) {
    return InvalidArgument("domain XML <" + element + ">: unknown unit '" + unit.substr(0, 64) +
                           "'; libvirt units are e.g. KiB, MiB, GiB, KB, MB, bytes");
  }
  if (*amount > std::numeric_limits<std::uint64_t>::max() / bytes_per_unit) {
    return InvalidArgument("domain XML <" + element + ">: " + text + " " + unit + " is too large");
  }
  const std::uint64_t bytes = *amount * bytes_per_unit;
  return bytes / 1024 + (bytes % 1024 != 0 ? 1 : 0);
}

Status ReadVcpus(const xmlNode* vcpu, DomainFacts& facts) {
  if (vcpu == nullptr) {
    facts.max_vcpus = facts.current_vcpus = 1;
    return Status::Ok();
  }
  const std::string text = Text(vcpu);
  std::optional<std::uint64_t> max = ParseUnsigned(text);
  if (!max || *max < 1 || *max > std::numeric_limits<std::uint32_t>::max()) {
    return InvalidArgument("domain XML <vcpu>: '" + text.substr(0, 64) + "' is not a vCPU count (a whole number >= 1)");
  }
  std::optional<std::uint64_t> current = max;
  if (std::optional<std::string> attr = Attribute(vcpu, "current")) {
    current = ParseUnsigned(*attr);
    if (!current || *current < 1 || *current > *max) {
      return InvalidArgument("domain XML <vcpu current='" + attr->substr(0, 64) + "'>: must be a whole number from 1 to " +
                             std::to_string(*max) + " (the <vcpu> value)");
    }
  }
  facts.max_vcpus = static_cast<std::uint32_t>(*max);
  facts.current_vcpus = static_cast<std::uint32_t>(*current);
  return Status::Ok();
}

DiskFacts ParseDisk(const xmlNode* disk) {
  DiskFacts facts;
  const std::string type = Attribute(disk, "type").value_or("");
  const xmlNode* source = Child(disk, "source");
  if (type == "file") {
    facts.source_kind = DiskFacts::SourceKind::kFile;
    if (source != nullptr) facts.source_path = Attribute(source, "file").value_or("");
  } else if (type == "block") {
    facts.source_kind = DiskFacts::SourceKind::kBlock;
    if (source != nullptr) facts.source_path = Attribute(source, "dev").value_or("");
  }
  if (const xmlNode* target = Child(disk, "target")) {
    facts.target_dev = Attribute(target, "dev").value_or("");
    facts.bus = Attribute(target, "bus").value_or("");
  }
  if (const xmlNode* driver = Child(disk, "driver")) facts.format = Attribute(driver, "type").value_or("");
  if (const xmlNode* backing = Child(disk, "backingStore"); backing != nullptr && Attribute(backing, "type") == "file") {
    if (const xmlNode* backing_source = Child(backing, "source")) {
      facts.backing_path = Attribute(backing_source, "file").value_or("");
    }
    if (const xmlNode* backing_format = Child(backing, "format")) {
      facts.backing_format = Attribute(backing_format, "type").value_or("");
    }
  }
  return facts;
}


bool IsPolicyNamespace(const xmlNs* ns) { return ns != nullptr && ToString(ns->href) == kPolicyNamespace; }

// The sign MayBeTagged looks for in a Nova instance: the part both Nova namespaces share, after "http://"
// so that it is shorter than kPolicyNamespace (see MayBeTagged's contract and libvirt-hook/hook.cc).
constexpr std::string_view kNovaSign = kNovaNamespacePrefix.substr(7);
static_assert(kNovaNamespace.starts_with(kNovaNamespacePrefix) && kNovaNamespace10.starts_with(kNovaNamespacePrefix));
static_assert(kNovaSign.size() <= kPolicyNamespace.size(), "the hook's read overlap covers kPolicyNamespace only");

// Nova's namespace, either version.
bool IsNovaNamespace(const xmlNs* ns) {
  if (ns == nullptr) return false;
  const std::string href = ToString(ns->href);
  return href == kNovaNamespace || href == kNovaNamespace10;
}

// First child element of `parent` called `name` in the namespace `ns_href`, or null.
const xmlNode* NsChild(const xmlNode* parent, std::string_view name, const xmlChar* ns_href) {
  for (const xmlNode* n = parent->children; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && n->ns != nullptr && xmlStrEqual(n->ns->href, ns_href) &&
        ToString(n->name) == name) {
      return n;
    }
  }
  return nullptr;
}

std::string TrimmedText(const xmlNode* node) { return node != nullptr ? std::string(Trim(Text(node))) : ""; }

NovaInstanceFacts ReadNovaInstance(const xmlNode* instance) {
  const xmlChar* ns = instance->ns->href;
  NovaInstanceFacts nova;
  nova.display_name = TrimmedText(NsChild(instance, "name", ns));
  if (const xmlNode* flavor = NsChild(instance, "flavor", ns)) nova.flavor_name = Attribute(flavor, "name").value_or("");
  if (const xmlNode* owner = NsChild(instance, "owner", ns)) {
    if (const xmlNode* user = NsChild(owner, "user", ns)) {
      nova.user_uuid = Attribute(user, "uuid").value_or("");
      nova.user_name = TrimmedText(user);
    }
    if (const xmlNode* project = NsChild(owner, "project", ns)) {
      nova.project_uuid = Attribute(project, "uuid").value_or("");
      nova.project_name = TrimmedText(project);
    }
  }
  if (const xmlNode* root = NsChild(instance, "root", ns); root != nullptr && Attribute(root, "type") == "image") {
    nova.root_image_uuid = Attribute(root, "uuid").value_or("");
  }
  return nova;
}

RawPolicy ReadRawPolicy(const xmlNode* element) {
  RawPolicy raw;
  raw.element_name = ToString(element->name);
  for (const xmlAttr* attr = element->properties; attr != nullptr; attr = attr->next) {
    XmlCharPtr value(xmlNodeListGetString(element->doc, attr->children, 1));
    raw.attributes.emplace_back(QualifiedName(attr->ns, attr->name), ToString(value.get()));
  }
  for (const xmlNode* n = element->children; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) raw.child_elements.push_back(QualifiedName(n->ns, n->name));
    if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && !Trim(Text(n)).empty()) {
      raw.has_text = true;
    }
  }
  return raw;
}

StatusOr<std::string> RequiredText(const xmlNode* root, std::string_view element) {
  const xmlNode* node = Child(root, element);
  std::string text = node != nullptr ? Text(node) : "";
  if (Trim(text).empty()) {
    return InvalidArgument("domain XML has no <" + std::string(element) +
                           ">; pass the XML libvirt reports (virsh dumpxml), which always has one");
  }
  return text;
}

StatusOr<DomainFacts> FactsFromTree(const xmlNode* root) {
  DomainFacts facts;
  VS_ASSIGN_OR_RETURN(facts.name, RequiredText(root, "name"));
  VS_ASSIGN_OR_RETURN(facts.uuid, RequiredText(root, "uuid"));
  VS_RETURN_IF_ERROR(ReadVcpus(Child(root, "vcpu"), facts));
  const xmlNode* memory = Child(root, "memory");
  if (memory == nullptr) return InvalidArgument("domain XML has no <memory>; a shadow cannot be sized without it");
  VS_ASSIGN_OR_RETURN(facts.memory_kib, ParseMemoryKiB(memory));
  facts.current_memory_kib = facts.memory_kib;
  if (const xmlNode* current = Child(root, "currentMemory")) {
    VS_ASSIGN_OR_RETURN(facts.current_memory_kib, ParseMemoryKiB(current));
  }
  if (const xmlNode* devices = Child(root, "devices")) {
    for (const xmlNode* n = devices->children; n != nullptr; n = n->next) {
      // libvirt's default device is "disk".
      if (NameIs(n, "disk") && Attribute(n, "device").value_or("disk") == "disk") facts.disks.push_back(ParseDisk(n));
    }
  }
  for (const xmlNode* metadata = root->children; metadata != nullptr; metadata = metadata->next) {
    if (!NameIs(metadata, "metadata")) continue;
    for (const xmlNode* n = metadata->children; n != nullptr; n = n->next) {
      if (n->type == XML_ELEMENT_NODE && IsPolicyNamespace(n->ns)) facts.policy_elements.push_back(ReadRawPolicy(n));
      if (n->type == XML_ELEMENT_NODE && !facts.nova && IsNovaNamespace(n->ns) && ToString(n->name) == "instance") {
        facts.nova = ReadNovaInstance(n);
      }
    }
  }
  return facts;
}

}  // namespace

bool MayBeTagged(std::string_view xml) {
  return xml.find(kPolicyNamespace) != std::string_view::npos || xml.find(kNovaSign) != std::string_view::npos ||
         xml.find("&#") != std::string_view::npos;
}

StatusOr<DomainFacts> ParseDomain(std::string_view xml) {
  if (Trim(xml).empty()) return InvalidArgument("domain XML is empty");
  if (xml.size() > kMaxDomainXmlBytes) {
    return InvalidArgument("domain XML is " + std::to_string(xml.size()) + " bytes, more than the " +
                           std::to_string(kMaxDomainXmlBytes) + " accepted");
  }
  VS_ASSIGN_OR_RETURN(xml::DocPtr doc, xml::ParseDocument(xml, "domain XML"));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || !NameIs(root, "domain")) {
    return InvalidArgument("XML root element is <" + (root != nullptr ? QualifiedName(root->ns, root->name) : "") +
                           ">, not <domain>; pass a libvirt domain XML");
  }
  return FactsFromTree(root);
}

PolicyResult ParsePolicy(const DomainFacts& facts) {
  const std::vector<RawPolicy>& elements = facts.policy_elements;
  if (elements.empty()) return {std::optional<Policy>(), HookFailureMode::kOpen};
  const std::string context = "domain '" + facts.name + "'";
  HookFailureMode best_effort = HookFailureMode::kOpen;
  for (const RawPolicy& raw : elements) {
    if (BestEffortHookFailure(raw) == HookFailureMode::kClosed) best_effort = HookFailureMode::kClosed;
  }
  if (elements.size() > 1) {
    return {InvalidArgument(context + " has " + std::to_string(elements.size()) + " elements in namespace " +
                            std::string(kPolicyNamespace) + " under <metadata>; keep exactly one <policy>"),
            best_effort};
  }
  StatusOr<Policy> policy = ParsePolicyElement(elements.front());
  if (!policy.ok()) return {policy.status().Annotate(context), best_effort};
  return {std::optional<Policy>(*policy), EffectiveHookFailure(*policy)};
}

}  // namespace vs::policy
