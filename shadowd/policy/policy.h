// The VM protection policy: what a user writes in a domain's <metadata> to ask for a shadow.
//
// Users set it with
//   virsh metadata DOM --uri http://virt-shadow.org/xmlns/policy/1.0 --key shadow
//     --set '<policy enabled="yes" vcpus="50%" memory="512MiB"/>'
// docs/policy.md is the user reference, docs/schema/policy.rng the schema; both agree with this parser.
//
// This unit turns the element's attributes (RawPolicy, extracted from the XML by domain_xml.h) into a
// typed Policy, renders a Policy back to its canonical element, and resolves the percentage sizes against
// a primary VM. It does no XML parsing itself and has no dependency beyond common/.
//
// Ownership: plain values. Thread-safety: every function is pure; call from any thread.
// Failure modes: bad attribute values give InvalidArgument naming the attribute, the value and an
// accepted example; nothing here aborts or throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace vs::policy {

inline constexpr std::string_view kPolicyNamespace = "http://virt-shadow.org/xmlns/policy/1.0";
inline constexpr std::string_view kPolicyElementName = "policy";

// The shadow never gets less RAM than this: smaller guests do not survive a switch-over.
inline constexpr std::uint64_t kMinShadowMemoryKiB = 64 * 1024;

// What the libvirt hook does at VM start when shadowd cannot be reached or the policy is invalid.
enum class HookFailureMode {
  kOpen,    // let the VM start unprotected
  kClosed,  // refuse the start
};

// Where the shadow may be placed relative to the primary's zone.
enum class ZonePreference { kPreferOther, kRequireOther, kAny };

// A shadow size as the user wrote it: either absolute or a percentage of the primary's, kept
// unresolved because the primary's size is only known (and may change) when the shadow is built.
struct ResourceSpec {
  enum class Kind { kAbsolute, kPercentOfPrimary };
  Kind kind = Kind::kPercentOfPrimary;
  // kAbsolute: vCPUs for a vCPU spec, KiB for a memory spec. kPercentOfPrimary: 1..100.
  std::uint64_t amount = 50;

  static ResourceSpec Absolute(std::uint64_t amount) { return {Kind::kAbsolute, amount}; }
  static ResourceSpec Percent(std::uint64_t percent) { return {Kind::kPercentOfPrimary, percent}; }
  bool operator==(const ResourceSpec&) const = default;
};

// A validated policy. Default-constructed = the defaults of every attribute.
struct Policy {
  bool enabled = true;
  ResourceSpec vcpus = ResourceSpec::Percent(50);
  ResourceSpec memory = ResourceSpec::Percent(50);  // absolute amounts in KiB
  std::chrono::milliseconds interval{5000};         // replication interval, 1s..1h
  bool warmup = true;                                // early precopy on an early warning
  std::uint32_t priority = 100;                      // 0..1000, higher goes first
  bool critical = false;
  std::uint32_t shadows = 1;  // 1..3
  ZonePreference zone = ZonePreference::kPreferOther;
  std::optional<double> cost_cap_per_hour;  // nullopt: no cap
  // nullopt: follows `critical` (see EffectiveHookFailure); kept apart so that setting critical later
  // still changes the failure mode of a policy that never chose one.
  std::optional<HookFailureMode> hook_failure;

  bool operator==(const Policy&) const = default;
};

// hook_failure if set, else closed for a critical VM and open otherwise.
HookFailureMode EffectiveHookFailure(const Policy& policy);

// One element in the policy namespace found in <metadata>, as written: nothing validated yet.
struct RawPolicy {
  std::string element_name;  // local name; anything but "policy" is an error
  // Attributes in document order; a namespaced attribute keeps its prefix ("shadow:vcpus") so that
  // the error names it as written.
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::string> child_elements;  // qualified names; the policy element must be empty
  bool has_text = false;                    // non-whitespace text content
};

// Validates every attribute; the first problem wins.
StatusOr<Policy> ParsePolicyElement(const RawPolicy& raw);

// The hook's failure mode when `raw` may be invalid: the hook-failure attribute if it parses, else
// closed when critical="yes", else open. Equal to EffectiveHookFailure(*ParsePolicyElement(raw))
// whenever that parse succeeds.
HookFailureMode BestEffortHookFailure(const RawPolicy& raw);

// The canonical element, without namespace (the form `virsh metadata --set` takes): every attribute
// in a fixed order, sizes in the largest exact unit; cost-cap only when set and hook-failure only when
// chosen explicitly. ParsePolicyElement of the result gives back an equal Policy.
std::string RenderPolicy(const Policy& policy);

struct ShadowSize {
  std::uint32_t vcpus = 0;
  std::uint64_t memory_kib = 0;
  bool operator==(const ShadowSize&) const = default;
};

// The shadow's size for a primary with `primary_vcpus` and `primary_memory_kib`:
//   vCPUs: the count, or the percentage rounded up, at least 1; never more than the primary's.
//   memory: the size, or the percentage rounded up to a whole MiB; at least 64 MiB; never more than
//   the primary's (which wins over the 64 MiB floor).
// InvalidArgument if the primary has no vCPU or no memory.
StatusOr<ShadowSize> ResolveShadowSize(const Policy& policy, std::uint32_t primary_vcpus,
                                       std::uint64_t primary_memory_kib);

}  // namespace vs::policy
