// Reads back the policy a VmRecord keeps in force (VmRecord.policy_xml: policy::RenderPolicy's
// canonical element, without namespace), so that placement can be decided from the persisted record
// alone, e.g. after a restart before the VM's domain XML has been observed again.
//
// Ownership: values. Thread-safety: pure, may run concurrently. Failure modes: InvalidArgument naming
// what is wrong when the text is not a single <policy> element or an attribute does not validate
// (policy::ParsePolicyElement's message).
#pragma once

#include <string_view>

#include "common/status.h"
#include "shadowd/policy/policy.h"

namespace vs::controller {

// Accepts the canonical form and any other well-formed <policy .../> element without namespace.
StatusOr<policy::Policy> ParseCanonicalPolicy(std::string_view policy_xml);

}  // namespace vs::controller
