// The facts shadowd and the libvirt hook need from a libvirt domain XML, and its protection policy.
//
// Typical use (the hook, at VM start):
//   if (!MayBeTagged(xml)) return;              // no XML parse for the (many) untagged domains
//   VS_ASSIGN_OR_RETURN(DomainFacts facts, ParseDomain(xml));
//   PolicyResult result = ParsePolicy(facts);   // untagged, a valid Policy, or an error + failure mode
//
// Input is untrusted (the XML is whatever a user defined): libxml2 parses it without network access,
// without entity substitution and without loading any DTD; a document with a DOCTYPE is refused, as are
// documents larger than kMaxDomainXmlBytes. libxml2's own limits bound nesting depth (256) and name length
// (50,000 bytes); its text limit is never reached, see kMaxDomainXmlBytes.
// libxml2 never prints: its diagnostics end up in the returned Status.
//
// Ownership: plain values; no libxml2 object outlives a call.
// Thread-safety: every function may run concurrently from several threads; each parse uses its own
// parser context and error sink (no process-wide libxml2 handler is installed or needed).
// Failure modes: InvalidArgument for malformed or hostile XML and for missing required elements,
// naming the element and what is wrong; Internal only if libxml2 cannot allocate a parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shadowd/policy/policy.h"

namespace vs::policy {

// The largest domain XML virt-shadow reads: ParseDomain refuses a larger one, the hook reads no more of
// stdin than this plus one byte, and shadowd's control socket takes hook events of this XML
// (kMaxHookEventBytes). Far above any domain XML libvirt produces (typically ~10 KB). It equals
// libxml2's XML_MAX_TEXT_LENGTH, the longest text node, attribute value or comment libxml2 parses
// without XML_PARSE_HUGE (domain_xml.cc asserts it): a document within this limit can never fail on
// that one. XML_PARSE_HUGE is not used, because it lifts every hard-coded
// limit of libxml2 at once (nesting depth 256 -> 2048, names, and in 2.9 the entity amplification
// checks that run before a DOCTYPE can be refused), not only the text length.
inline constexpr std::size_t kMaxDomainXmlBytes = 10'000'000;

// The largest virtshadow.v1.HookEvent: the domain XML, its <name> and <uuid> copied out of it (together
// never longer than it), libvirt's four short arguments and protobuf's framing (a tag and a length per
// field), with room to spare. The hook's channel sends and shadowd's control socket receives up to this
// (gRPC's default receive limit, 4 MiB, refused larger tagged XMLs).
inline constexpr std::size_t kMaxHookEventBytes = 2 * kMaxDomainXmlBytes + 64 * 1024;

// One <disk device='disk'> (cdroms, floppies and LUNs are not replicated).
struct DiskFacts {
  enum class SourceKind {
    kFile,   // <disk type='file'>: source_path is <source file=...>
    kBlock,  // <disk type='block'>: source_path is <source dev=...>
    kOther,  // network, volume, nvme...: no local path, source_path is empty
  };
  std::string target_dev;  // <target dev=...>, e.g. "vda"
  std::string bus;         // <target bus=...>, e.g. "virtio"
  SourceKind source_kind = SourceKind::kOther;
  std::string source_path;  // empty for kOther or for a drive without <source>
  std::string format;       // <driver type=...>, e.g. "qcow2" or "raw"; empty if not given
  // The first <backingStore type='file'>: its <source file> and <format type>; empty without one (libvirt
  // shows the chain of running domains only).
  std::string backing_path;
  std::string backing_format;

  bool operator==(const DiskFacts&) const = default;
};

// The namespaces OpenStack Nova's libvirt driver writes its <nova:instance> in (config.py's NOVA_NS; 1.0 in
// older releases, same layout). Both begin with kNovaNamespacePrefix.
inline constexpr std::string_view kNovaNamespace = "http://openstack.org/xmlns/libvirt/nova/1.1";
inline constexpr std::string_view kNovaNamespace10 = "http://openstack.org/xmlns/libvirt/nova/1.0";
inline constexpr std::string_view kNovaNamespacePrefix = "http://openstack.org/xmlns/libvirt/nova/";

// What Nova says about the instance in <metadata>, as it writes it:
//   <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
//     <nova:package version="..."/> <nova:name>web-1</nova:name> <nova:creationTime>...</nova:creationTime>
//     <nova:flavor name="m1.small"><nova:memory>2048</nova:memory><nova:disk>20</nova:disk><nova:swap>0</nova:swap>
//       <nova:ephemeral>0</nova:ephemeral><nova:vcpus>1</nova:vcpus></nova:flavor>
//     <nova:owner><nova:user uuid="...">admin</nova:user><nova:project uuid="...">demo</nova:project></nova:owner>
//     <nova:root type="image" uuid="..."/> <nova:ports>...</nova:ports>
//   </nova:instance>
// Every part is optional here (Nova omits some, hand-made XML may omit any): a missing one is left empty.
// The libvirt domain's own <uuid> is Nova's instance UUID. Informational: the policy of a Nova instance
// comes from Nova's API (shadowd/nova/nova_policy.h), not from these facts, which a guest's owner cannot
// change but the host's root can.
struct NovaInstanceFacts {
  std::string display_name;     // <nova:name>, the server's name in Nova
  std::string flavor_name;      // <nova:flavor name=...>
  std::string project_uuid;     // <nova:owner><nova:project uuid=...>
  std::string project_name;     // its text
  std::string user_uuid;        // <nova:owner><nova:user uuid=...>
  std::string user_name;        // its text
  std::string root_image_uuid;  // <nova:root type="image" uuid=...>; empty when booted from a volume
  bool operator==(const NovaInstanceFacts&) const = default;
};

struct DomainFacts {
  std::string name;
  std::string uuid;
  std::uint32_t max_vcpus = 0;             // <vcpu> value (1 when the element is absent, as in libvirt)
  std::uint32_t current_vcpus = 0;         // <vcpu current=...>, else max_vcpus
  std::uint64_t memory_kib = 0;            // <memory unit=...>, converted to KiB (rounded up)
  std::uint64_t current_memory_kib = 0;    // <currentMemory unit=...>, else memory_kib
  std::vector<DiskFacts> disks;            // in document order
  // Every element in the policy namespace directly under <metadata>, matched by namespace URI whatever
  // its prefix. libvirt keeps at most one per namespace; more come only from hand-edited XML.
  std::vector<RawPolicy> policy_elements;
  // The first <nova:instance> under <metadata> (namespace 1.1 or 1.0, any prefix); nullopt when the domain
  // is not a Nova instance.
  std::optional<NovaInstanceFacts> nova;
};

// A cheap pre-check (three substring searches, no parse): false only if ParseDomain + ParsePolicy
// would report the domain untagged AND ParseDomain would find no Nova metadata (DomainFacts::nova), so
// the hook may skip them. A Nova instance may be protected through Nova's API (a flavor extra spec, an
// image property, the server's metadata) with no policy element, so its domain always "may be tagged".
// It never gives a false negative: a policy element needs the namespace URI, and <nova:instance> needs
// kNovaNamespacePrefix, spelled literally or with character references ("&#", also answered true);
// entities cannot spell them because documents with a DOCTYPE are refused, and ParseDomain reads input
// as UTF-8 only. It gives false positives (a URI in a comment or a description, "&#" anywhere): then
// ParsePolicy (and DomainFacts::nova) decide. No sign it looks for is longer than kPolicyNamespace (the
// hook's overlap between reads relies on that; domain_xml.cc asserts it).
bool MayBeTagged(std::string_view xml);

// Parses a full libvirt domain XML. Requires <name>, <uuid> and <memory>.
StatusOr<DomainFacts> ParseDomain(std::string_view xml);

struct PolicyResult {
  // OK + nullopt: the domain is untagged. OK + Policy: tagged with a valid policy. Error
  // (InvalidArgument): tagged, but the policy is invalid or there are several policy elements.
  StatusOr<std::optional<Policy>> policy;
  // What the hook does if the policy is invalid or shadowd is unreachable. For an invalid policy
  // this is a best effort (see BestEffortHookFailure; closed if any of several elements says so).
  // Open for an untagged domain.
  HookFailureMode hook_failure;
};

PolicyResult ParsePolicy(const DomainFacts& facts);

}  // namespace vs::policy
