#include "shadowd/nova/nova_policy.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace vs::nova {
namespace {

std::string_view Trim(std::string_view s) {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Values come from Nova's users: quote a bounded, printable prefix.
std::string Quote(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return value.size() > 64 ? out + "..." : out;
}

StatusOr<std::optional<policy::Policy>> PolicyNamed(std::string_view raw, const std::string& source,
                                                    const std::map<std::string, policy::Policy>& named) {
  const std::string_view value = Trim(raw);
  const std::string keyword = Lower(value);
  if (keyword == "none" || keyword == "off") return std::optional<policy::Policy>();
  if (keyword == "default") return std::optional<policy::Policy>(policy::Policy{});
  if (auto it = named.find(std::string(value)); it != named.end()) return std::optional<policy::Policy>(it->second);
  std::string configured;
  for (const auto& [name, unused] : named) configured += (configured.empty() ? "" : ", ") + name;
  return InvalidArgument(source + ": " +
                         (value.empty() ? std::string("the value is empty")
                                        : "no policy '" + Quote(value) + "' in shadowd.conf") +
                         "; the policies configured are " + (configured.empty() ? "none" : configured) +
                         " ([policy.NAME] sections), besides default and none");
}

}  // namespace

NovaPolicyResult ResolveNovaPolicy(const NovaServer& server, const std::map<std::string, std::string>& image_properties,
                                   const std::map<std::string, policy::Policy>& named_policies,
                                   const NovaOptions& options) {
  struct Place {
    std::string what;  // "flavor vs.small extra spec"
    const std::map<std::string, std::string>* values;
    const std::string* key;
  };
  const Place places[] = {
      {"flavor " + server.flavor.name + " extra spec", &server.flavor.extra_specs, &options.policy_key},
      {"image " + server.image_id + " property", &image_properties, &options.image_property},
      {"server " + server.id + " metadata", &server.metadata, &options.policy_key},
  };
  for (const Place& place : places) {
    auto it = place.values->find(*place.key);
    if (it == place.values->end()) continue;
    std::string source = place.what + " " + *place.key + "=" + Quote(it->second);
    return {PolicyNamed(it->second, source, named_policies), std::move(source)};
  }
  return {std::optional<policy::Policy>(), ""};
}

}  // namespace vs::nova
