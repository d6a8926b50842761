// NovaReservingPeerOps: controller::PeerOps that also makes Nova's scheduler see what a Nova instance's shadow
// reserves (docs/nova.md, "What the shadows reserve"). A shadow is a shut-off domain at a fraction of the VM's size,
// but at switchover the VM arrives at its full size: that memory must stay free on the shadow's host, and Nova,
// which places instances by its Placement service, knows nothing of virt-shadow's shadows.
//
// So for a shadow whose domain XML carries Nova's instance metadata, DefineShadow first puts an allocation in
// Placement against the shadow host's compute node: consumer = the shadow domain's UUID (deterministic, so a
// re-issued define changes nothing), MEMORY_MB and VCPU = the VM's full size (the shadow XML's <memory> and
// <vcpu>), in the instance's project and user. Placement refuses it when the host has no such room: the define is
// then refused with FailedPrecondition (final for that host: the controller places the shadow elsewhere). Nova's
// resource tracker leaves allocations of consumers it does not know alone (nova/compute/resource_tracker.py,
// _remove_deleted_instances_allocations: an unknown consumer is taken for an instance being built). ReleaseShadow
// deletes the allocation after the shadow is gone (404: nothing was reserved). A switchover or a promotion deletes it
// just before Nova moves the VM there (nova_live_mover.h, nova_promotion_host.h).
//
// Ownership: borrows the wrapped PeerOps and the client. Thread-safety: as PeerOps (one caller thread); the cache of
// compute node UUIDs is that thread's. Failure modes: the wrapped calls' errors unchanged; Placement's and Nova's
// errors annotated with the host and the shadow; Unavailable stays retryable.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/logger.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/nova/openstack_api.h"

namespace vs::nova {

class NovaReservingPeerOps final : public controller::PeerOps {
 public:
  NovaReservingPeerOps(controller::PeerOps& inner, OpenStackApi& api, Logger::Line log);

  Status CreateReplicaImage(const std::string& host, const std::string& path, std::uint64_t virtual_size_bytes,
                            const std::string& format) override;
  Status DefineShadow(const std::string& host, const std::string& domain_xml) override;
  Status ReleaseShadow(const std::string& host, const std::string& shadow_uuid, const std::string& shadow_name,
                       const std::vector<std::string>& replica_paths) override;
  StatusOr<std::vector<controller::PeerShadow>> ListShadows(const std::string& host) override;

 private:
  StatusOr<std::string> ProviderOf(const std::string& host);

  controller::PeerOps& inner_;
  OpenStackApi& api_;
  const Logger::Line log_;
  std::map<std::string, std::string> providers_;  // Nova host -> compute node (resource provider) UUID
};

}  // namespace vs::nova
