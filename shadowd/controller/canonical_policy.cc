#include "shadowd/controller/canonical_policy.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>

#include "shadowd/policy/xml_document.h"

namespace vs::controller {
namespace {

// A canonical policy is about 200 bytes; this bound keeps a damaged record from costing much.
constexpr std::size_t kMaxPolicyXmlBytes = 64 * 1024;

using xml::QualifiedName;
using xml::ToString;

}  // namespace

StatusOr<policy::Policy> ParseCanonicalPolicy(std::string_view policy_xml) {
  const std::string what = "stored policy '" + std::string(policy_xml.substr(0, 80)) + "'";
  if (policy_xml.size() > kMaxPolicyXmlBytes) {
    return InvalidArgument("stored policy is " + std::to_string(policy_xml.size()) + " bytes, more than " +
                           std::to_string(kMaxPolicyXmlBytes));
  }
  VS_ASSIGN_OR_RETURN(xml::DocPtr doc, xml::ParseDocument(policy_xml, what));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || ToString(root->name) != policy::kPolicyElementName) {
    return InvalidArgument(what + " is not a <policy> element");
  }
  policy::RawPolicy raw;
  raw.element_name = ToString(root->name);
  for (const xmlAttr* attr = root->properties; attr != nullptr; attr = attr->next) {
    xml::XmlCharPtr value(xmlNodeListGetString(doc.get(), attr->children, 1));
    raw.attributes.emplace_back(QualifiedName(attr->ns, attr->name), ToString(value.get()));
  }
  for (const xmlNode* n = root->children; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) raw.child_elements.push_back(QualifiedName(n->ns, n->name));
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      xml::XmlCharPtr text(xmlNodeGetContent(n));
      if (ToString(text.get()).find_first_not_of(" \t\r\n") != std::string::npos) raw.has_text = true;
    }
  }
  StatusOr<policy::Policy> parsed = policy::ParsePolicyElement(raw);
  if (!parsed.ok()) return parsed.status().Annotate(what);
  return parsed;
}

}  // namespace vs::controller
