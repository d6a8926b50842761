// DomainScan: every domain defined on one host, read once through its libvirtd: name, UUID, whether it is a
// shadow (and of which VM), and every file of its disk chains. The one place that answers "which domain is this
// VM's shadow" and "is this path in use", for the cluster view, the switchover target and steps, and the
// replica keeper's ownership check.
//
// "In use" has one definition: the path is the source of a disk of the domain, or of any layer beneath one
// (libvirt writes every file of a running domain's chain as <source file='PATH'/>, the active layer and each
// <backingStore>). Shadows count or not by the caller's choice: a replica is a shadow's own disk, so placing or
// releasing it asks about other domains only.
//
// Ownership: values. Thread-safety: ScanDomains is as thread-safe as the hypervisor (libvirt connections are).
// Failure modes: the hypervisor's errors for the listing; a domain undefined while it is read is skipped; one
// whose XML does not parse is listed with its name only (it uses no path anyone can tell).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "shadowd/controller/controller.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::cluster {

struct ScannedDomain {
  std::string name;
  std::string uuid;                                // empty when the XML does not parse
  std::optional<controller::PeerShadow> shadow;    // set for a shadow domain (a shadow-of link)
  std::vector<std::string> files;                  // every file of its disk chains
};

// `host` is the name the shadows' links are read with (the host being scanned).
StatusOr<std::vector<ScannedDomain>> ScanDomains(virt::Hypervisor& hypervisor, const std::string& host);
// One domain's entry, from its XML as listed on `host`. Pure.
ScannedDomain ReadScannedDomain(const std::string& name, const std::string& host, const std::string& xml);

enum class ShadowsCount { kNo, kYes };
// The name of a scanned domain that uses `path`, if any.
std::optional<std::string> DomainUsing(const std::vector<ScannedDomain>& domains, const std::string& path,
                                       ShadowsCount shadows_count);

// What releasing the shadow `shadow_uuid`, defined as `shadow_name`, may remove from a host with `domains`. The
// name alone does not say whose domain it is: once that shadow is gone (undefined by a promotion, or released
// before), its VM may have been re-created under the same name with a new UUID, and the new VM's shadow has the old
// one's name and replica paths. So the definition goes only when the domain of that name is that shadow (or its XML
// does not parse: nothing says otherwise), and of `replica_paths` only those no other domain uses, shadows
// included.
struct ShadowRelease {
  bool undefine = false;
  std::vector<std::string> images;  // to delete, before the definition
};
ShadowRelease PlanShadowRelease(const std::vector<ScannedDomain>& domains, const std::string& shadow_uuid,
                                const std::string& shadow_name, const std::vector<std::string>& replica_paths);

// One domain of `local` as it is now: its XML, and whether it runs, which a paused domain does (fenced, or paused by
// its administrator: its QEMU and disks are there, and its rounds go on). The one definition of "running" for the
// scan below and for the domain events (shadowd/daemon/main.cc). NotFound when it is not defined (any more).
StatusOr<controller::DomainObservation> ObserveDomain(virt::Hypervisor& local, const std::string& name);

// Every domain of `local` as it is now, for ProtectionController::ReconcileLocalDomains. A domain that cannot be
// read fails the whole observation (one undefined meanwhile is left out: its event follows), because the controller
// takes a domain missing from it as undefined and would end the record of a VM that runs.
StatusOr<std::vector<controller::DomainObservation>> ObserveDomains(virt::Hypervisor& local);

// The shadow of VM `vm_uuid` among the scanned domains, if any.
std::optional<controller::PeerShadow> ShadowOf(const std::vector<ScannedDomain>& domains, const std::string& vm_uuid);

// The shadow domain of `vm_uuid` defined on `local` (this host, `this_host`), if any.
StatusOr<std::optional<controller::PeerShadow>> FindShadowOf(virt::Hypervisor& local, const std::string& this_host,
                                                             const std::string& vm_uuid);

// The replica keeper's shadow check: OK when `local` (this host, `this_host`) has a shadow domain of `vm_uuid`
// that is not running and whose disks include every one of `replica_paths`; NotFound when no shadow of it
// is defined here, FailedPrecondition naming what is wrong otherwise.
Status CheckShadowOwnsReplicas(virt::Hypervisor& local, const std::string& this_host, const std::string& vm_uuid,
                               const std::vector<std::string>& replica_paths);

// Whether a domain of `local` other than a shadow uses any of `paths` (the replica keeper's ReplicasInUse).
StatusOr<bool> AnyUsedByNonShadow(virt::Hypervisor& local, const std::string& this_host,
                                  const std::vector<std::string>& paths);

}  // namespace vs::cluster
