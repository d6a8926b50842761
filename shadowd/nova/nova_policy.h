// Which virt-shadow policy a Nova instance has, from what Nova and Glance say about it. Pure.
//
// Three places may name a policy, highest precedence first:
//   1. the flavor's extra spec  `openstack flavor set vs.small --property virt_shadow:policy=gold`: the operator's
//      offer, so it wins over the others, and "none" there forbids protection whatever they say;
//   2. the image's property     `openstack image set IMG --property virt_shadow_policy=gold`;
//   3. the server's metadata    `openstack server set SRV --property virt_shadow:policy=gold` (the user's).
// The keys are NovaOptions::policy_key (extra spec and metadata) and NovaOptions::image_property. The first place
// that has the key decides, even with an invalid value (an invalid operator setting is an error to fix, never a
// silent fall-through to the user's choice). Values: a NAME from [policy.NAME] in shadowd.conf, "default" (the
// built-in defaults, policy::Policy{}), "none" or "off" (not protected); the keywords in any case, names exactly,
// surrounding blanks ignored.
//
// Ownership: plain values. Thread-safety: pure; call from any thread.
// Failure modes: InvalidArgument naming the source, the value and the policy names configured, for an unknown
// name or an empty value.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "shadowd/nova/nova_options.h"
#include "shadowd/nova/openstack_api.h"
#include "shadowd/policy/policy.h"

namespace vs::nova {

struct NovaPolicyResult {
  // OK + nullopt: not protected (nothing names a policy, or "none"/"off"). OK + Policy: protected by it.
  // Error: a source names an unknown policy.
  StatusOr<std::optional<policy::Policy>> policy;
  // What decided, for logs and `virt-shadow` output, e.g. "flavor vs.small extra spec virt_shadow:policy=gold";
  // empty when nothing names a policy.
  std::string source;
};

NovaPolicyResult ResolveNovaPolicy(const NovaServer& server, const std::map<std::string, std::string>& image_properties,
                                   const std::map<std::string, policy::Policy>& named_policies,
                                   const NovaOptions& options);

}  // namespace vs::nova
