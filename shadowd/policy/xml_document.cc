#include "shadowd/policy/xml_document.h"

#include <libxml/xmlerror.h>

#include <algorithm>
#include <cctype>

namespace vs::xml {
namespace {

// No network, no entity substitution (no XML_PARSE_NOENT), no DTD loading or validation, and libxml2's default
// (non-HUGE) limits on depth and text size. NOERROR/NOWARNING keep the fallback channel quiet should an error ever
// bypass the context's structured handler.
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};

// Per-parse destination of libxml2 diagnostics, reached through the parser context's _private.
struct ErrorSink {
  std::string first_error;  // the first is the cause; later ones are usually its consequences
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

void CollectError(void* user_data, xmlErrorPtr error) {
  // For the SAX2 tree builder, libxml2 passes the parser context as user data.
  auto* ctxt = static_cast<xmlParserCtxt*>(user_data);
  if (ctxt == nullptr || ctxt->_private == nullptr || error == nullptr || error->level < XML_ERR_ERROR) return;
  auto* sink = static_cast<ErrorSink*>(ctxt->_private);
  if (!sink->first_error.empty()) return;
  std::string message = error->message != nullptr ? error->message : "unknown error";
  // libxml2 messages end in a newline and some continue on a second line (e.g. the offending bytes).
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  std::replace(message.begin(), message.end(), '\n', ' ');
  sink->first_error = "line " + std::to_string(error->line) + ": " + message;
}

}  // namespace

StatusOr<DocPtr> ParseDocument(std::string_view xml, std::string_view what) {
  xmlInitParser();  // idempotent and internally locked; required before concurrent use
  std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter> ctxt(xmlNewParserCtxt());
  if (!ctxt || ctxt->sax == nullptr) return Internal("libxml2 could not allocate a parser context");
  ErrorSink sink;
  ctxt->_private = &sink;
  ctxt->sax->serror = &CollectError;  // per context: no process-wide handler, no race between threads
  // The encoding is forced to UTF-8: that is what libvirt hands out and what callers scan.
  DocPtr doc(xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()), "input.xml", "UTF-8",
                               kParseOptions));
  if (!doc || !ctxt->wellFormed || !ctxt->nsWellFormed || !sink.first_error.empty()) {
    std::string reason = sink.first_error;
    if (reason.empty()) {
      const xmlError* last = xmlCtxtGetLastError(ctxt.get());
      reason = last != nullptr && last->message != nullptr ? std::string(Trim(last->message)) : "unknown error";
    }
    return InvalidArgument(std::string(what) + " is not well-formed: " + reason);
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    return InvalidArgument(std::string(what) + " has a DOCTYPE, which libvirt never writes; DTDs and entities are refused");
  }
  if (xmlDocGetRootElement(doc.get()) == nullptr) return InvalidArgument(std::string(what) + " has no root element");
  return doc;
}

std::string QualifiedName(const xmlNs* ns, const xmlChar* name) {
  if (ns == nullptr || ns->prefix == nullptr) return ToString(name);
  return ToString(ns->prefix) + ":" + ToString(name);
}

}  // namespace vs::xml
