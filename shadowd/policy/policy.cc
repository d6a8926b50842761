#include "shadowd/policy/policy.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <iterator>
#include <system_error>

namespace vs::policy {
namespace {

using std::chrono::milliseconds;

constexpr std::uint64_t kKiBPerMiB = 1024;
constexpr std::uint64_t kKiBPerGiB = 1024 * 1024;

// Attribute values can be arbitrarily long (hostile or pasted by mistake); quote only a prefix.
std::string Quote(std::string_view value) {
  constexpr std::size_t kMaxQuoted = 64;
  if (value.size() <= kMaxQuoted) return "'" + std::string(value) + "'";
  return "'" + std::string(value.substr(0, kMaxQuoted)) + "...' (" + std::to_string(value.size()) +
         " characters)";
}

Status BadValue(std::string_view attribute, std::string_view value, std::string_view problem) {
  return InvalidArgument("policy attribute '" + std::string(attribute) + "': " + Quote(value) + " " +
                         std::string(problem));
}

// Digits only, no sign, no leading zero (so each number has one spelling, as in the schema).
std::optional<std::uint64_t> ParseWholeNumber(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // overflow
  return value;
}

// "N%" with N in 1..100; nullopt if `text` is not a percentage at all, an error if N is out of range.
StatusOr<std::optional<std::uint64_t>> ParsePercent(std::string_view attribute, std::string_view text) {
  if (text.empty() || text.back() != '%') return std::optional<std::uint64_t>();
  std::optional<std::uint64_t> percent = ParseWholeNumber(text.substr(0, text.size() - 1));
  if (!percent || *percent < 1 || *percent > 100) {
    return BadValue(attribute, text, "is not a percentage from 1% to 100%; use e.g. 50%");
  }
  return percent;
}

// Splits "512MiB" into 512 and "MiB"; nullopt if there is no leading number.
std::optional<std::pair<std::uint64_t, std::string_view>> SplitNumberAndUnit(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::optional<std::uint64_t> number = ParseWholeNumber(text.substr(0, digits));
  if (!number) return std::nullopt;
  return std::make_pair(*number, text.substr(digits));
}

StatusOr<bool> ParseYesNo(std::string_view attribute, std::string_view value) {
  if (value == "yes") return true;
  if (value == "no") return false;
  return BadValue(attribute, value, "is not yes or no; use " + std::string(attribute) + "=\"yes\" or " +
                                        std::string(attribute) + "=\"no\"");
}

StatusOr<HookFailureMode> ParseHookFailure(std::string_view value) {
  if (value == "open") return HookFailureMode::kOpen;
  if (value == "closed") return HookFailureMode::kClosed;
  return BadValue("hook-failure", value,
                  "is not open or closed; use open (let the VM start) or closed (refuse the start)");
}

StatusOr<ResourceSpec> ParseVcpus(std::string_view value) {
  VS_ASSIGN_OR_RETURN(std::optional<std::uint64_t> percent, ParsePercent("vcpus", value));
  if (percent) return ResourceSpec::Percent(*percent);
  std::optional<std::uint64_t> count = ParseWholeNumber(value);
  if (!count || *count > UINT32_MAX) {
    return BadValue("vcpus", value, "is not a vCPU count; use a whole number such as 2, or a percentage such as 50%");
  }
  if (*count < 1) return BadValue("vcpus", value, "is too small; use at least 1 vCPU, or a percentage such as 50%");
  return ResourceSpec::Absolute(*count);
}

StatusOr<ResourceSpec> ParseMemory(std::string_view value) {
  VS_ASSIGN_OR_RETURN(std::optional<std::uint64_t> percent, ParsePercent("memory", value));
  if (percent) return ResourceSpec::Percent(*percent);
  constexpr std::string_view kNotASize =
      "is not a size; use a number with KiB, MiB or GiB, or a percentage such as 50%";
  auto split = SplitNumberAndUnit(value);
  if (!split) return BadValue("memory", value, kNotASize);
  auto [number, unit] = *split;
  std::uint64_t kib_per_unit = 0;
  if (unit == "KiB" || unit == "K") {
    kib_per_unit = 1;
  } else if (unit == "MiB" || unit == "M") {
    kib_per_unit = kKiBPerMiB;
  } else if (unit == "GiB" || unit == "G") {
    kib_per_unit = kKiBPerGiB;
  } else {
    return BadValue("memory", value, kNotASize);
  }
  if (number > UINT64_MAX / kib_per_unit) return BadValue("memory", value, "is too large; use e.g. 512MiB or 4GiB");
  std::uint64_t kib = number * kib_per_unit;
  if (kib < kMinShadowMemoryKiB) {
    return BadValue("memory", value, "is below the 64 MiB minimum; use at least 64MiB, or a percentage such as 50%");
  }
  return ResourceSpec::Absolute(kib);
}

StatusOr<milliseconds> ParseInterval(std::string_view value) {
  constexpr std::pair<std::string_view, std::uint64_t> kMillisecondsPerUnit[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  constexpr std::uint64_t kMinMs = 1000;
  constexpr std::uint64_t kMaxMs = 3'600'000;
  auto split = SplitNumberAndUnit(value);
  const auto* unit = split ? std::find_if(std::begin(kMillisecondsPerUnit), std::end(kMillisecondsPerUnit),
                                          [&](const auto& u) { return u.first == split->second; })
                           : std::end(kMillisecondsPerUnit);
  if (unit == std::end(kMillisecondsPerUnit)) {
    return BadValue("interval", value, "is not a duration; use a number with ms, s, m or h, such as 5s");
  }
  // Compared before multiplying, so that no number of hours can overflow.
  const std::uint64_t number = split->first;
  if (number > kMaxMs / unit->second || number * unit->second < kMinMs) {
    return BadValue("interval", value, "is out of range; use a duration from 1s to 1h, such as 5s");
  }
  return milliseconds(number * unit->second);
}

StatusOr<std::uint32_t> ParseBounded(std::string_view attribute, std::string_view value, std::uint32_t min,
                                     std::uint32_t max, std::string_view example) {
  std::optional<std::uint64_t> number = ParseWholeNumber(value);
  if (!number || *number < min || *number > max) {
    return BadValue(attribute, value,
                    "is not a whole number from " + std::to_string(min) + " to " + std::to_string(max) + "; use e.g. " +
                        std::string(example));
  }
  return static_cast<std::uint32_t>(*number);
}

StatusOr<ZonePreference> ParseZone(std::string_view value) {
  if (value == "prefer-other") return ZonePreference::kPreferOther;
  if (value == "require-other") return ZonePreference::kRequireOther;
  if (value == "any") return ZonePreference::kAny;
  return BadValue("zone", value, "is not a zone rule; use prefer-other, require-other or any");
}

StatusOr<double> ParseCostCap(std::string_view value) {
  constexpr std::string_view kNotADecimal = "is not a decimal number >= 0; use e.g. 0.25 (cost per hour)";
  // digits, optionally '.' and digits: no sign, no exponent, no "inf"/"nan" (from_chars takes those).
  std::size_t dot = value.find('.');
  std::string_view whole = value.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view("0") : value.substr(dot + 1);
  auto is_digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!is_digits(whole) || !is_digits(fraction)) return BadValue("cost-cap", value, kNotADecimal);
  double cap = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), cap, std::chars_format::fixed);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(cap)) {
    return BadValue("cost-cap", value, "is out of range; use e.g. 0.25 (cost per hour)");
  }
  return cap;
}

// Sets one field of `policy` from one attribute.
struct AttributeRule {
  std::string_view name;
  Status (*apply)(std::string_view value, Policy& policy);
};

template <typename T>
Status Assign(StatusOr<T> parsed, T& field) {
  if (!parsed.ok()) return parsed.status();
  field = std::move(parsed).value();
  return Status::Ok();
}

template <typename T>
Status AssignOptional(StatusOr<T> parsed, std::optional<T>& field) {
  if (!parsed.ok()) return parsed.status();
  field = std::move(parsed).value();
  return Status::Ok();
}

constexpr std::array<AttributeRule, 11> kAttributeRules = {{
    {"enabled", [](std::string_view v, Policy& p) { return Assign(ParseYesNo("enabled", v), p.enabled); }},
    {"vcpus", [](std::string_view v, Policy& p) { return Assign(ParseVcpus(v), p.vcpus); }},
    {"memory", [](std::string_view v, Policy& p) { return Assign(ParseMemory(v), p.memory); }},
    {"interval", [](std::string_view v, Policy& p) { return Assign(ParseInterval(v), p.interval); }},
    {"warmup", [](std::string_view v, Policy& p) { return Assign(ParseYesNo("warmup", v), p.warmup); }},
    {"priority",
     [](std::string_view v, Policy& p) { return Assign(ParseBounded("priority", v, 0, 1000, "100"), p.priority); }},
    {"critical", [](std::string_view v, Policy& p) { return Assign(ParseYesNo("critical", v), p.critical); }},
    {"shadows", [](std::string_view v, Policy& p) { return Assign(ParseBounded("shadows", v, 1, 3, "1"), p.shadows); }},
    {"zone", [](std::string_view v, Policy& p) { return Assign(ParseZone(v), p.zone); }},
    {"cost-cap", [](std::string_view v, Policy& p) { return AssignOptional(ParseCostCap(v), p.cost_cap_per_hour); }},
    {"hook-failure",
     [](std::string_view v, Policy& p) { return AssignOptional(ParseHookFailure(v), p.hook_failure); }},
}};

std::string KnownAttributeList() {
  std::string list;
  for (const AttributeRule& rule : kAttributeRules) {
    if (!list.empty()) list += ", ";
    list += rule.name;
  }
  return list;
}

const std::string* FindAttribute(const RawPolicy& raw, std::string_view name) {
  for (const auto& [attribute, value] : raw.attributes) {
    if (attribute == name) return &value;
  }
  return nullptr;
}

std::string RenderSize(const ResourceSpec& spec, bool is_memory) {
  std::string amount = std::to_string(spec.amount);
  if (spec.kind == ResourceSpec::Kind::kPercentOfPrimary) return amount + "%";
  if (!is_memory) return amount;
  if (spec.amount % kKiBPerGiB == 0) return std::to_string(spec.amount / kKiBPerGiB) + "GiB";
  if (spec.amount % kKiBPerMiB == 0) return std::to_string(spec.amount / kKiBPerMiB) + "MiB";
  return amount + "KiB";
}

std::string RenderDuration(milliseconds duration) {
  std::int64_t ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string RenderDecimal(double value) {
  // Shortest fixed-point text that reads back as the same double: "0.25", not "0.250000".
  std::array<char, 512> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buffer.data(), end) : "0";
}

// ceil(a * percent / 100 / divisor) without overflow for any 64-bit `a`; percent is capped at 100.
std::uint64_t PercentOfRoundedUp(std::uint64_t a, std::uint64_t percent, std::uint64_t divisor) {
  percent = std::min<std::uint64_t>(percent, 100);
  const std::uint64_t d = 100 * divisor;
  const std::uint64_t quotient = a / d;
  const std::uint64_t remainder = a % d;
  return quotient * percent + (remainder * percent + d - 1) / d;
}

}  // namespace

HookFailureMode EffectiveHookFailure(const Policy& policy) {
  if (policy.hook_failure) return *policy.hook_failure;
  return policy.critical ? HookFailureMode::kClosed : HookFailureMode::kOpen;
}

StatusOr<Policy> ParsePolicyElement(const RawPolicy& raw) {
  if (raw.element_name != kPolicyElementName) {
    return InvalidArgument("unexpected element '" + raw.element_name + "' in namespace " +
                           std::string(kPolicyNamespace) + "; the only element there is <policy .../>");
  }
  if (!raw.child_elements.empty()) {
    return InvalidArgument("policy element must be empty but has a child element <" + raw.child_elements.front() +
                           ">; settings are attributes, e.g. <policy vcpus=\"2\"/>");
  }
  if (raw.has_text) {
    return InvalidArgument("policy element must be empty but contains text; settings are attributes, e.g. "
                           "<policy vcpus=\"2\"/>");
  }
  Policy policy;
  for (std::size_t i = 0; i < raw.attributes.size(); ++i) {
    // Not a structured binding: clang before 16 cannot capture one in the lambda below.
    const std::string& name = raw.attributes[i].first;
    const std::string& value = raw.attributes[i].second;
    for (std::size_t j = 0; j < i; ++j) {
      if (raw.attributes[j].first == name) return InvalidArgument("policy attribute '" + name + "' is given twice");
    }
    auto rule = std::find_if(kAttributeRules.begin(), kAttributeRules.end(),
                             [&](const AttributeRule& r) { return r.name == name; });
    if (rule == kAttributeRules.end()) {
      return InvalidArgument("policy has unknown attribute '" + name + "'; known attributes: " + KnownAttributeList());
    }
    VS_RETURN_IF_ERROR(rule->apply(value, policy));
  }
  return policy;
}

HookFailureMode BestEffortHookFailure(const RawPolicy& raw) {
  if (const std::string* value = FindAttribute(raw, "hook-failure")) {
    StatusOr<HookFailureMode> mode = ParseHookFailure(*value);
    if (mode.ok()) return *mode;
  }
  const std::string* critical = FindAttribute(raw, "critical");
  return critical != nullptr && *critical == "yes" ? HookFailureMode::kClosed : HookFailureMode::kOpen;
}

std::string RenderPolicy(const Policy& policy) {
  auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  auto zone = [](ZonePreference z) {
    switch (z) {
      case ZonePreference::kPreferOther: return "prefer-other";
      case ZonePreference::kRequireOther: return "require-other";
      case ZonePreference::kAny: return "any";
    }
    return "prefer-other";
  };
  std::string xml = "<policy";
  auto add = [&xml](std::string_view name, std::string_view value) {
    xml += " ";
    xml += name;
    xml += "=\"";
    xml += value;  // every rendered value is from a fixed alphabet: nothing to escape
    xml += "\"";
  };
  add("enabled", yes_no(policy.enabled));
  add("vcpus", RenderSize(policy.vcpus, /*is_memory=*/false));
  add("memory", RenderSize(policy.memory, /*is_memory=*/true));
  add("interval", RenderDuration(policy.interval));
  add("warmup", yes_no(policy.warmup));
  add("priority", std::to_string(policy.priority));
  add("critical", yes_no(policy.critical));
  add("shadows", std::to_string(policy.shadows));
  add("zone", zone(policy.zone));
  if (policy.cost_cap_per_hour) add("cost-cap", RenderDecimal(*policy.cost_cap_per_hour));
  if (policy.hook_failure) add("hook-failure", *policy.hook_failure == HookFailureMode::kClosed ? "closed" : "open");
  return xml + "/>";
}

StatusOr<ShadowSize> ResolveShadowSize(const Policy& policy, std::uint32_t primary_vcpus,
                                       std::uint64_t primary_memory_kib) {
  if (primary_vcpus == 0 || primary_memory_kib == 0) {
    return InvalidArgument("cannot size a shadow for a primary with " + std::to_string(primary_vcpus) + " vCPUs and " +
                           std::to_string(primary_memory_kib) + " KiB of memory; both must be at least 1");
  }
  ShadowSize size;
  std::uint64_t vcpus = policy.vcpus.kind == ResourceSpec::Kind::kAbsolute
                            ? policy.vcpus.amount
                            : PercentOfRoundedUp(primary_vcpus, policy.vcpus.amount, 1);
  size.vcpus = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(vcpus, 1, primary_vcpus));

  std::uint64_t memory_kib = policy.memory.amount;
  if (policy.memory.kind == ResourceSpec::Kind::kPercentOfPrimary) {
    const std::uint64_t mib = PercentOfRoundedUp(primary_memory_kib, policy.memory.amount, kKiBPerMiB);
    // More MiB than the primary holds whole means more than the primary: clamp before multiplying,
    // which could otherwise overflow for a primary within 1 MiB of 2^64 KiB.
    memory_kib = mib > primary_memory_kib / kKiBPerMiB ? primary_memory_kib : mib * kKiBPerMiB;
  }
  // The primary's size wins over the floor: a shadow never outgrows what it stands in for.
  size.memory_kib = std::min(std::max(memory_kib, kMinShadowMemoryKiB), primary_memory_kib);
  return size;
}

}  // namespace vs::policy
