#include "shadowd/controller/canonical_policy.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>

namespace vs::controller {
namespace {

// A canonical policy is about 200 bytes; this bound keeps a damaged record from costing much.
constexpr std::size_t kMaxPolicyXmlBytes = 64 * 1024;
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};
struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct XmlCharDeleter {
  void operator()(xmlChar* s) const { xmlFree(s); }
};

std::string ToString(const xmlChar* s) { return s != nullptr ? reinterpret_cast<const char*>(s) : ""; }

std::string QualifiedName(const xmlNs* ns, const xmlChar* name) {
  if (ns == nullptr || ns->prefix == nullptr) return ToString(name);
  return ToString(ns->prefix) + ":" + ToString(name);
}

}  // namespace

StatusOr<policy::Policy> ParseCanonicalPolicy(std::string_view policy_xml) {
  const std::string what = "stored policy '" + std::string(policy_xml.substr(0, 80)) + "'";
  if (policy_xml.size() > kMaxPolicyXmlBytes) {
    return InvalidArgument("stored policy is " + std::to_string(policy_xml.size()) + " bytes, more than " +
                           std::to_string(kMaxPolicyXmlBytes));
  }
  xmlInitParser();
  std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter> ctxt(xmlNewParserCtxt());
  if (!ctxt) return Internal("libxml2 could not allocate a parser context");
  std::unique_ptr<xmlDoc, DocDeleter> doc(xmlCtxtReadMemory(ctxt.get(), policy_xml.data(),
                                                            static_cast<int>(policy_xml.size()), "policy.xml",
                                                            "UTF-8", kParseOptions));
  if (!doc || !ctxt->wellFormed) return InvalidArgument(what + " is not well-formed XML");
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) return InvalidArgument(what + " has a DOCTYPE");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || ToString(root->name) != policy::kPolicyElementName) {
    return InvalidArgument(what + " is not a <policy> element");
  }
  policy::RawPolicy raw;
  raw.element_name = ToString(root->name);
  for (const xmlAttr* attr = root->properties; attr != nullptr; attr = attr->next) {
    std::unique_ptr<xmlChar, XmlCharDeleter> value(xmlNodeListGetString(doc.get(), attr->children, 1));
    raw.attributes.emplace_back(QualifiedName(attr->ns, attr->name), ToString(value.get()));
  }
  for (const xmlNode* n = root->children; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) raw.child_elements.push_back(QualifiedName(n->ns, n->name));
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      std::unique_ptr<xmlChar, XmlCharDeleter> text(xmlNodeGetContent(n));
      if (ToString(text.get()).find_first_not_of(" \t\r\n") != std::string::npos) raw.has_text = true;
    }
  }
  StatusOr<policy::Policy> parsed = policy::ParsePolicyElement(raw);
  if (!parsed.ok()) return parsed.status().Annotate(what);
  return parsed;
}

}  // namespace vs::controller
