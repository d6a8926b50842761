#include "shadowd/cluster/domain_scan.h"

#include <algorithm>

#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::cluster {

namespace {

// Every <source file=PATH/> of the XML: the disks' and their backing chains' alike. libvirt formats
// attributes with single quotes; double quotes are read too (XML written by other tools).
std::vector<std::string> FileSources(const std::string& xml) {
  constexpr std::string_view kOpen = "<source file=";
  std::vector<std::string> files;
  for (size_t at = xml.find(kOpen); at != std::string::npos; at = xml.find(kOpen, at)) {
    at += kOpen.size();
    if (at >= xml.size() || (xml[at] != '\'' && xml[at] != '"')) continue;
    const char quote = xml[at++];
    const size_t end = xml.find(quote, at);
    if (end == std::string::npos) break;
    files.push_back(xml.substr(at, end - at));
    at = end;
  }
  return files;
}

}  // namespace

StatusOr<std::vector<ScannedDomain>> ScanDomains(virt::Hypervisor& hypervisor, const std::string& host) {
  VS_ASSIGN_OR_RETURN(std::vector<std::string> names, hypervisor.ListDomainNames());
  std::vector<ScannedDomain> domains;
  for (const std::string& name : names) {
    StatusOr<std::string> xml = hypervisor.GetDomainXml(name);
    if (!xml.ok()) {
      if (xml.status().code() == Code::kNotFound) continue;  // undefined meanwhile
      return xml.status();
    }
    domains.push_back(ReadScannedDomain(name, host, *xml));
  }
  return domains;
}

ScannedDomain ReadScannedDomain(const std::string& name, const std::string& host, const std::string& xml) {
  ScannedDomain domain{.name = name, .uuid = "", .shadow = std::nullopt, .files = FileSources(xml)};
  if (auto facts = policy::ParseDomain(xml); facts.ok()) domain.uuid = facts->uuid;
  if (auto shadow = controller::DescribeShadowDomain(host, xml); shadow.ok()) domain.shadow = std::move(*shadow);
  return domain;
}

std::optional<std::string> DomainUsing(const std::vector<ScannedDomain>& domains, const std::string& path,
                                       ShadowsCount shadows_count) {
  for (const ScannedDomain& domain : domains) {
    if (domain.shadow && shadows_count == ShadowsCount::kNo) continue;
    if (std::find(domain.files.begin(), domain.files.end(), path) != domain.files.end()) return domain.name;
  }
  return std::nullopt;
}

ShadowRelease PlanShadowRelease(const std::vector<ScannedDomain>& domains, const std::string& shadow_uuid,
                                const std::string& shadow_name, const std::vector<std::string>& replica_paths) {
  ShadowRelease release;
  std::vector<ScannedDomain> others;
  for (const ScannedDomain& domain : domains) {
    const bool is_the_shadow = domain.name == shadow_name && (domain.uuid == shadow_uuid || domain.uuid.empty());
    if (is_the_shadow) {
      release.undefine = true;
    } else {
      others.push_back(domain);
    }
  }
  for (const std::string& path : replica_paths) {
    if (!DomainUsing(others, path, ShadowsCount::kYes)) release.images.push_back(path);
  }
  return release;
}

std::optional<controller::PeerShadow> ShadowOf(const std::vector<ScannedDomain>& domains, const std::string& vm_uuid) {
  for (const ScannedDomain& domain : domains) {
    if (domain.shadow && domain.shadow->primary_uuid == vm_uuid) return domain.shadow;
  }
  return std::nullopt;
}

StatusOr<std::optional<controller::PeerShadow>> FindShadowOf(virt::Hypervisor& local, const std::string& this_host,
                                                             const std::string& vm_uuid) {
  VS_ASSIGN_OR_RETURN(std::vector<ScannedDomain> domains, ScanDomains(local, this_host));
  return ShadowOf(domains, vm_uuid);
}

Status CheckShadowOwnsReplicas(virt::Hypervisor& local, const std::string& this_host, const std::string& vm_uuid,
                               const std::vector<std::string>& replica_paths) {
  VS_ASSIGN_OR_RETURN(auto shadow, FindShadowOf(local, this_host, vm_uuid));
  if (!shadow) {
    return NotFound("no shadow of VM " + vm_uuid + " is defined on " + this_host +
                    ": its primary must place one before replicating");
  }
  const std::string& name = shadow->shadow_name;
  VS_ASSIGN_OR_RETURN(virt::DomainState state, local.GetDomainState(name));
  if (state != virt::DomainState::kShutoff) {
    return FailedPrecondition("shadow " + name + " of " + vm_uuid + " is " + std::string(virt::DomainStateName(state)) +
                              " on " + this_host + ": its replicas are in use and cannot be written");
  }
  for (const auto& path : replica_paths) {
    const auto& owned = shadow->replica_paths;
    if (std::find(owned.begin(), owned.end(), path) == owned.end()) {
      return FailedPrecondition(path + " is not a disk of shadow " + name + " on " + this_host +
                                ": refusing to write it");
    }
  }
  return Status::Ok();
}

StatusOr<bool> AnyUsedByNonShadow(virt::Hypervisor& local, const std::string& this_host,
                                  const std::vector<std::string>& paths) {
  VS_ASSIGN_OR_RETURN(std::vector<ScannedDomain> domains, ScanDomains(local, this_host));
  return std::any_of(paths.begin(), paths.end(),
                     [&](const std::string& path) { return DomainUsing(domains, path, ShadowsCount::kNo).has_value(); });
}

StatusOr<controller::DomainObservation> ObserveDomain(virt::Hypervisor& local, const std::string& name) {
  StatusOr<std::string> xml = local.GetDomainXml(name);
  StatusOr<virt::DomainState> state = local.GetDomainState(name);
  // A read that failed otherwise is the answer before NotFound: the domain may well be there.
  for (const Status& read : {xml.status(), state.status()}) {
    if (!read.ok() && read.code() != Code::kNotFound) return read.Annotate("reading local domain '" + name + "'");
  }
  if (!xml.ok()) return xml.status();
  if (!state.ok()) return state.status();
  return controller::DomainObservation{
      .xml = *xml,
      .running = *state == virt::DomainState::kRunning || *state == virt::DomainState::kPaused,
      .uuid_hint = "",
      .name_hint = name};
}

StatusOr<std::vector<controller::DomainObservation>> ObserveDomains(virt::Hypervisor& local) {
  VS_ASSIGN_OR_RETURN(std::vector<std::string> names, local.ListDomainNames());
  std::vector<controller::DomainObservation> domains;
  for (const auto& name : names) {
    StatusOr<controller::DomainObservation> domain = ObserveDomain(local, name);
    if (!domain.ok() && domain.status().code() == Code::kNotFound) continue;  // undefined meanwhile
    if (!domain.ok()) return domain.status();
    domains.push_back(std::move(*domain));
  }
  return domains;
}

}  // namespace vs::cluster
