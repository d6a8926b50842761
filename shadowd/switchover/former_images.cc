#include "shadowd/switchover/former_images.h"

#include <algorithm>
#include <set>

#include "shadowd/policy/domain_xml.h"
#include "shadowd/policy/top_path.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;
using Action = FormerImageVerdict::Action;

FormerImageVerdict JudgeFormerImage(const v1::OriginRecord& origin, bool defined_here, bool on_tops,
                                    const std::optional<controller::VmStatusView>& view, WallTime now,
                                    Duration grace) {
  if (now < FromUnixMillis(origin.arrived_unix_ms()) + grace) return {Action::kWait, ""};
  if (!defined_here) return {Action::kLeave, "left: the VM no longer runs here"};
  const std::string& host = origin.origin_host();
  if (view && std::find(view->shadow_hosts.begin(), view->shadow_hosts.end(), host) != view->shadow_hosts.end()) {
    return {Action::kKeep, "kept: it is the replica of the VM's shadow on " + host};
  }
  if (view && view->pinned_host == host) {
    return {Action::kKeep, "kept: a failback places the VM's shadow on " + host + " and adopts it as the replica"};
  }
  if (origin.arrived_by() == v1::OriginRecord::ARRIVAL_PROMOTION) {
    // The stale copy's image, under its definition until a failback has it discarded and adopts the image at
    // once; a sweep in between would only turn the failback's resync into a full copy.
    return {Action::kKeep, "kept: the image of the stale copy on " + host +
                               " (the VM was promoted here); a failback adopts it"};
  }
  if (on_tops) return {Action::kWait, ""};
  return {Action::kRemove, ""};
}

namespace {

struct LocalDomain {
  bool defined = false;
  bool on_tops = false;
  std::vector<std::string> image_paths;
};

StatusOr<LocalDomain> ReadLocalDomain(cluster::LibvirtCluster& cluster, const v1::OriginRecord& origin) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * local, cluster.Local());
  StatusOr<std::string> xml = local->GetDomainXml(origin.vm_name());
  if (!xml.ok() && xml.status().code() == Code::kNotFound) return LocalDomain{};
  if (!xml.ok()) return xml.status();
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(*xml));
  LocalDomain domain;
  domain.defined = facts.uuid == origin.vm_uuid();  // a namesake is another VM
  for (const policy::DiskFacts& disk : facts.disks) {
    if (disk.source_kind != policy::DiskFacts::SourceKind::kFile || disk.source_path.empty()) continue;
    domain.on_tops = domain.on_tops || policy::IsTopPath(disk.source_path);
    domain.image_paths.push_back(disk.source_path);
  }
  return domain;
}

}  // namespace

void SettleFormerImages(ArrivalRecords& arrivals, controller::ProtectionController& controller,
                        cluster::LibvirtCluster& cluster, Duration grace, const Clock& clock,
                        const std::function<void(const std::string&)>& log) {
  StatusOr<std::vector<v1::OriginRecord>> origins = arrivals.Origins();
  if (!origins.ok()) return log("former images: " + origins.status().ToString());
  std::set<std::string> up;
  if (StatusOr<std::vector<scheduler::Host>> hosts = cluster.Hosts(); hosts.ok()) {
    for (const scheduler::Host& host : *hosts) {
      if (host.up) up.insert(host.name);
    }
  }
  for (const v1::OriginRecord& origin : *origins) {
    if (origin.former_image_settled_unix_ms() != 0) continue;
    // Cheap checks first, before any libvirt call: this runs at every refresh.
    if (clock.WallNow() < FromUnixMillis(origin.arrived_unix_ms()) + grace) continue;
    if (up.count(origin.origin_host()) == 0) continue;  // down or draining: tried again when it is back
    const std::string about = "the image " + origin.vm_name() + " left on " + origin.origin_host();
    StatusOr<LocalDomain> domain = ReadLocalDomain(cluster, origin);
    if (!domain.ok()) {
      log(about + ": " + domain.status().ToString());
      continue;
    }
    StatusOr<controller::VmStatusView> view = controller.StatusOf(origin.vm_uuid());
    std::optional<controller::VmStatusView> known;
    if (view.ok()) known = *view;
    const FormerImageVerdict verdict =
        JudgeFormerImage(origin, domain->defined, domain->on_tops, known, clock.WallNow(), grace);
    std::string outcome = verdict.outcome;
    if (verdict.action == Action::kWait) continue;
    if (verdict.action == Action::kRemove) {
      Status removed;
      for (const std::string& path : domain->image_paths) {
        removed = cluster.RemoveUnusedImage(origin.origin_host(), path);
        if (!removed.ok()) break;
      }
      if (removed.code() == Code::kFailedPrecondition) {
        outcome = "kept: " + removed.message();  // another domain there uses it: never ours to remove
      } else if (!removed.ok()) {
        log(about + " stays for now: " + removed.ToString());
        continue;
      } else {
        outcome = "removed after the grace period";
      }
    }
    log(about + ": " + outcome);
    if (Status settled = arrivals.SettleFormerImage(origin.vm_uuid(), outcome); !settled.ok()) {
      log(about + ": recording it: " + settled.ToString());
    }
  }
}

}  // namespace vs::switchover
