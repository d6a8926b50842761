// The shadow's domain XML, derived from its primary's, and the reverse: recognising a shadow domain
// and its primary from the XML found on a host. Both sides of the link format live here.
//
// A shadow is the primary's definition with:
//   - its own identity: <name> and <uuid> from shadow_identity.h (deterministic, so a re-define
//     replaces); the live <domain id=...> attribute dropped;
//   - a reduced size that can be scaled up at switchover: <vcpu current='N'> keeps the primary's
//     maximum, <currentMemory> is the shadow memory while <memory> stays the primary's; a <vcpus>
//     per-vCPU list (which would contradict the new current count) is dropped;
//   - the same disk paths (the replicas are created at the primary's image paths on the target,
//     which does not share storage); <backingStore> chains and live <source index> dropped, since a
//     replica is a standalone image; removable media (cdrom, floppy) ejected: media is not replicated;
//   - in <metadata>: every element of the policy namespace removed (so a shadow is never itself
//     protected) and the link added:
//       <shadow:shadow-of xmlns:shadow="http://virt-shadow.org/xmlns/policy/1.0"
//                         uuid="PRIMARY-UUID" name="PRIMARY-NAME" host="PRIMARY-HOST" index="0"
//                         policy="<policy .../>"/>   (the VM's canonical policy, for a crash promotion)
//     other applications' metadata (e.g. nova's) is kept;
//   - live-only data removed: dynamic <seclabel> <label>/<imagelabel>, autoport graphics ports, pty
//     paths of serial consoles; serial/console <log file> renamed to "<file>.shadow" so that a started
//     shadow never writes into the primary's log.
//
// Input is untrusted: it is first checked by policy::ParseDomain (no network, no entities, no DTD,
// bounded size), then edited with libxml2 under the same options.
//
// Ownership: values in, values out. Thread-safety: pure functions, may run concurrently.
// Failure modes: InvalidArgument naming the element or field (malformed XML, a disk this version
// cannot replicate, a size larger than the primary, identities that do not match the XML).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/lifecycle/events.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::controller {

// The local name of the link element, in policy::kPolicyNamespace.
inline constexpr std::string_view kShadowOfElement = "shadow-of";

struct ShadowIdentity {
  std::string uuid;  // lifecycle::ShadowUuid(primary uuid, index)
  std::string name;  // lifecycle::ShadowName(primary name, index)
  std::uint32_t index = 0;
};

struct PrimaryIdentity {
  std::string uuid;  // must be the <uuid> of the primary XML
  std::string name;
  std::string host;  // the host the primary runs on (whose shadowd owns the shadow)
  // The VM's policy in force (VmRecord.policy_xml: canonical "<policy .../>", no namespace); "" for none. Kept in
  // the link's `policy` attribute so that a crash promotion can give the VM its policy back.
  std::string policy_xml;
};

// The shadow domain XML for `primary_xml` (a full libvirt domain XML, live or inactive). Every disk
// with device='disk' must be a file (type='file' with a <source file>): others cannot be replicated.
// `size` must be at least 1 vCPU / 1 KiB and at most the primary's <vcpu> maximum and <memory>.
StatusOr<std::string> ShadowDomainXml(std::string_view primary_xml, const ShadowIdentity& shadow,
                                      const lifecycle::ShadowSize& size, const PrimaryIdentity& primary);

// The VM itself again, from its shadow's XML (a crash promotion on the shadow's host, issue 12): the primary's
// <name> and <uuid> from the shadow-of link, which goes; `policy_xml` (the VM's policy element, e.g. its
// canonical policy; "" for none) put back into <metadata>, so that the promoted VM is protected like any VM;
// serial and console logs back at the VM's own paths. Kept: the shadow's reduced size (the VM starts small and
// is grown once it runs: <vcpu> and <memory> still hold its full size), its disks on the replicas (at the VM's
// own paths), its other metadata. InvalidArgument when the XML is not a shadow, when its link names another VM
// than `vm_uuid`, or when `policy_xml` is not one element in the policy namespace.
StatusOr<std::string> PromotedDomainXml(std::string_view shadow_xml, std::string_view vm_uuid,
                                        std::string_view policy_xml);

// True when the domain carries a shadow-of link: it is a shadow, never a primary to protect.
bool IsShadowDomain(const policy::DomainFacts& facts);

// The domain XML `domain_xml` listed on `host`, read as a shadow: nullopt when it has no shadow-of
// link (an ordinary domain). InvalidArgument when the XML is malformed or the link lacks uuid or host.
StatusOr<std::optional<PeerShadow>> DescribeShadowDomain(std::string_view host, std::string_view domain_xml);

}  // namespace vs::controller
