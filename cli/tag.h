// tag and untag: a domain's protection policy in its libvirt <metadata>, written through virt::Hypervisor.
//
// tag merges at the attribute level: the domain's current policy attributes (as written, even if
// some are invalid) with the given ones overriding, then validates the whole with the project's policy
// parser and writes policy::RenderPolicy's canonical element. So a bad attribute already in the domain
// can be fixed by giving that option, and nothing is written unless the result is a valid policy.
//
// --live/--config: virt::Hypervisor::SetMetadata changes the running domain (if it runs) and the
// persistent definition (if there is one) together. A scope it cannot honour exactly (one of the two
// alone on a running domain; --live on a stopped one) is refused with FailedPrecondition before
// anything is written, rather than changing more than was asked.
//
// Ownership: borrows the Hypervisor for the call. Thread-safety: as the Hypervisor. Failure modes:
// the Hypervisor's Status (NotFound for an unknown domain) annotated with the domain; InvalidArgument
// when the merged policy is invalid, naming the attribute; FailedPrecondition for an unsupported scope.
#pragma once

#include <string>
#include <vector>

#include "cli/command_line.h"
#include "common/status.h"
#include "shadowd/policy/policy.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::cli {

inline constexpr std::string_view kMetadataKey = "shadow";  // the element's namespace prefix in libvirt's XML

// The policy `given` makes of the domain's current policy elements (none: untagged). More than one
// element (only hand-edited XML has that) is InvalidArgument: which one to keep is the user's call.
StatusOr<policy::Policy> MergeTagPolicy(const std::vector<policy::RawPolicy>& current, const PolicyAttributes& given);

// OK when SetMetadata's scope is what `tag` asked for on a domain that is (not) `running`.
Status CheckTagScope(const TagCommand& tag, bool running);

// Writes the merged policy; returns the canonical element written.
StatusOr<std::string> TagDomain(virt::Hypervisor& hypervisor, const TagCommand& tag);

// Removes the policy element; returns whether the domain had one (in its current definition).
StatusOr<bool> UntagDomain(virt::Hypervisor& hypervisor, const UntagCommand& untag);

}  // namespace vs::cli
