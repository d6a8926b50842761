#include "cli/tag.h"

#include <algorithm>

#include "shadowd/policy/domain_xml.h"

namespace vs::cli {
namespace {

const std::string kNamespace(policy::kPolicyNamespace);

StatusOr<policy::DomainFacts> ReadDomain(virt::Hypervisor& hypervisor, const std::string& domain) {
  VS_ASSIGN_OR_RETURN(std::string xml, hypervisor.GetDomainXml(domain));
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(xml);
  // libvirt wrote this XML; failing to read it is not the user's input error.
  if (!facts.ok()) return Internal("cannot read the domain XML libvirt returned: " + facts.status().message());
  return facts;
}

}  // namespace

StatusOr<policy::Policy> MergeTagPolicy(const std::vector<policy::RawPolicy>& current, const PolicyAttributes& given) {
  if (current.size() > 1) {
    return InvalidArgument("the domain has " + std::to_string(current.size()) + " policy elements in namespace " +
                           kNamespace + " instead of one; untag it first (that removes them), then tag it again");
  }
  policy::RawPolicy merged;
  merged.element_name = std::string(policy::kPolicyElementName);
  if (!current.empty()) merged.attributes = current.front().attributes;
  for (const auto& [name, value] : given) {
    auto existing = std::find_if(merged.attributes.begin(), merged.attributes.end(),
                                 [&](const auto& attribute) { return attribute.first == name; });
    if (existing != merged.attributes.end()) {
      existing->second = value;
    } else {
      merged.attributes.emplace_back(name, value);
    }
  }
  StatusOr<policy::Policy> parsed = policy::ParsePolicyElement(merged);
  if (!parsed.ok()) {
    return InvalidArgument("its current policy is invalid: " + parsed.status().message() +
                           " (give that option to replace the value, or untag the domain first)");
  }
  return parsed;
}

Status CheckTagScope(const TagCommand& tag, bool running) {
  if (!tag.live && !tag.config) return Status::Ok();
  if (tag.live && !running) {
    return FailedPrecondition("domain '" + tag.domain +
                              "' is not running, so --live has nothing to change; drop --live to change its "
                              "persistent definition");
  }
  if (running && !(tag.live && tag.config)) {
    return FailedPrecondition(std::string(tag.live ? "--live" : "--config") +
                              " alone is not supported on a running domain: the libvirt layer changes its live and "
                              "persistent definitions together; give both --live and --config, or neither");
  }
  return Status::Ok();
}

StatusOr<std::string> TagDomain(virt::Hypervisor& hypervisor, const TagCommand& tag) {
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, ReadDomain(hypervisor, tag.domain));
  VS_ASSIGN_OR_RETURN(policy::Policy merged, MergeTagPolicy(facts.policy_elements, tag.attributes));
  if (tag.live || tag.config) {
    VS_ASSIGN_OR_RETURN(virt::DomainState state, hypervisor.GetDomainState(tag.domain));
    VS_RETURN_IF_ERROR(CheckTagScope(tag, state != virt::DomainState::kShutoff));
  }
  std::string element = policy::RenderPolicy(merged);
  VS_RETURN_IF_ERROR(hypervisor.SetMetadata(tag.domain, kNamespace, std::string(kMetadataKey), element));
  return element;
}

StatusOr<bool> UntagDomain(virt::Hypervisor& hypervisor, const UntagCommand& untag) {
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, ReadDomain(hypervisor, untag.domain));
  // Removed even when the current definition has none: the other one (live or persistent) may.
  VS_RETURN_IF_ERROR(hypervisor.SetMetadata(untag.domain, kNamespace, std::string(kMetadataKey), ""));
  return !facts.policy_elements.empty();
}

}  // namespace vs::cli
