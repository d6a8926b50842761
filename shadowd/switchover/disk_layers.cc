#include "shadowd/switchover/disk_layers.h"

#include "shadowd/cluster/domain_scan.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/policy/top_path.h"

namespace vs::switchover {

namespace {

constexpr Duration kFlattenRetryPause = std::chrono::milliseconds(500);
// One commit of a top: the delta since the snapshot, written while the guest keeps writing.
constexpr std::chrono::seconds kOneCommit{300};

// OK once `disk` of `domain` no longer runs on its top; Aborted while it still does.
Status CheckOffTop(virt::Hypervisor& hypervisor, const std::string& domain, const DiskOnTop& disk) {
  VS_ASSIGN_OR_RETURN(std::vector<DiskOnTop> on_tops, DisksOnTops(hypervisor, domain));
  for (const DiskOnTop& still : on_tops) {
    if (still.target == disk.target) {
      return Aborted("the commit of disk " + disk.target + " of " + domain + " ended, but the disk still runs on " +
                     still.top_path + " (its pivot did not take)");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::optional<std::string>> DomainUsingPath(virt::Hypervisor& hypervisor, const std::string& path) {
  VS_ASSIGN_OR_RETURN(std::vector<cluster::ScannedDomain> domains, cluster::ScanDomains(hypervisor, ""));
  return cluster::DomainUsing(domains, path, cluster::ShadowsCount::kYes);
}

StatusOr<std::vector<DiskOnTop>> DisksOnTops(virt::Hypervisor& hypervisor, const std::string& domain) {
  VS_ASSIGN_OR_RETURN(std::string xml, hypervisor.GetDomainXml(domain));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  std::vector<DiskOnTop> on_tops;
  for (const auto& disk : facts.disks) {
    if (!policy::IsTopPath(disk.source_path)) continue;
    on_tops.push_back({disk.target_dev, disk.source_path, policy::BasePathOf(disk.source_path)});
  }
  return on_tops;
}

Status FlattenTops(virt::Hypervisor& hypervisor, const std::string& domain, Clock& clock, Duration give_up) {
  const MonoTime stop_trying = clock.Now() + give_up;
  VS_ASSIGN_OR_RETURN(std::vector<DiskOnTop> on_tops, DisksOnTops(hypervisor, domain));
  for (const DiskOnTop& disk : on_tops) {
    int attempts = 0;
    Status committed;
    do {
      ++attempts;
      committed = hypervisor.BlockCommitActive(domain, disk.target, kOneCommit);
      // libvirt's job can end without its pivot taking (the commit job failed or was cancelled after the pivot
      // was asked for): flattened only once the domain's XML no longer names the top.
      if (committed.ok()) committed = CheckOffTop(hypervisor, domain, disk);
      if (committed.ok() || clock.Now() >= stop_trying) break;
      clock.SleepFor(kFlattenRetryPause);
    } while (true);
    VS_RETURN_IF_ERROR(committed.Annotate("flattening " + disk.top_path + " into " + disk.base_path + " (" +
                                          std::to_string(attempts) + " attempts)"));
  }
  return Status::Ok();
}

}  // namespace vs::switchover
