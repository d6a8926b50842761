// Parsing untrusted XML with libxml2, the one way every XML reader in virt-shadow does it (domain XML from the
// hook or libvirt, stored policy elements): UTF-8 only, no network, no entity substitution, no DTD loading, a
// DOCTYPE refused, libxml2's default depth and size limits, and libxml2's diagnostics captured per parse into the
// returned Status (never printed, no process-wide handler, so parses may run concurrently on several threads).
//
// Ownership: DocPtr owns the parsed document. Thread-safety: ParseDocument may run concurrently.
// Failure modes: InvalidArgument "<what> is not well-formed: <libxml2's first error>" or "<what> has a DOCTYPE...";
// Internal when libxml2 cannot allocate a parser.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::xml {

struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct XmlCharDeleter {
  void operator()(xmlChar* s) const { xmlFree(s); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocDeleter>;
using XmlCharPtr = std::unique_ptr<xmlChar, XmlCharDeleter>;

// `what` names the document in error messages, e.g. "domain XML".
StatusOr<DocPtr> ParseDocument(std::string_view xml, std::string_view what);

inline std::string ToString(const xmlChar* s) { return s != nullptr ? reinterpret_cast<const char*>(s) : ""; }
inline const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
inline const xmlChar* X(const std::string& s) { return X(s.c_str()); }
// "prefix:name", or "name" without a prefix.
std::string QualifiedName(const xmlNs* ns, const xmlChar* name);

}  // namespace vs::xml
