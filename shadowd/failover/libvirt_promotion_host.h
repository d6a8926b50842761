// LibvirtPromotionHost: the PromotionHost of shadowd, over this host's libvirtd (a connection of the promotion
// thread's own, docs/threading.md rule 3) and the replica keeper.
//
// Free capacity (FreeBesides): the node's CPUs and memory less what the running domains use now and less the
// reduced sizes of the shadows defined here (shut off, but reserved: placement put them here on that promise),
// the promoted VM's own use added back. The same reservation placement counts (a shadow reserves its reduced
// size, not its maximum), so a grown VM never eats into another VM's promised shadow room.
//
// Ownership: borrows the hypervisor and the keeper. Thread-safety: as the hypervisor and the keeper (both
// thread-safe). Failure modes: libvirt's and the keeper's errors as they come.
#pragma once

#include <string>

#include "shadowd/failover/promotions.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::failover {

class LibvirtPromotionHost final : public PromotionHost {
 public:
  LibvirtPromotionHost(virt::Hypervisor& local, replication::ReplicaKeeper& keeper, std::string this_host)
      : local_(local), keeper_(keeper), this_host_(std::move(this_host)) {}

  StatusOr<std::vector<controller::PeerShadow>> LocalShadows() override;
  StatusOr<virtshadow::v1::ReplicaRecord> SettleReplica(const std::string& vm_uuid) override {
    return keeper_.SettleForPromotion(vm_uuid);
  }
  StatusOr<std::string> DefinitionXml(const std::string& name) override { return local_.GetDomainXml(name); }
  Status Define(const std::string& xml) override { return local_.DefineDomain(xml).status(); }
  Status Undefine(const std::string& name) override { return local_.UndefineDomain(name); }
  StatusOr<PromotedVmState> VmState(const std::string& name) override;
  Status Start(const std::string& name) override { return local_.StartDomain(name); }
  StatusOr<VmSize> LiveSize(const std::string& name) override;
  StatusOr<VmSize> FreeBesides(const std::string& name) override;
  Status SetVcpusLive(const std::string& name, std::uint32_t vcpus) override {
    return local_.SetVcpusLive(name, vcpus);
  }
  Status SetMemoryLive(const std::string& name, std::uint64_t memory_kib) override {
    return local_.SetMemoryLive(name, memory_kib);
  }

 private:
  virt::Hypervisor& local_;
  replication::ReplicaKeeper& keeper_;
  const std::string this_host_;
};

// PromotionWorker's probe: destroys the domain with UUID `vm_uuid` on the libvirtd at `uri` (the VM's primary host)
// and says whether it is confirmed not running there (destroyed, shut off, or not defined). By UUID, not by name:
// the name may belong to a new VM created since (one lab run's prober destroyed it on an old shadow's behalf). For a qemu+tcp URI a TCP connection to
// libvirtd's port is tried first with `connect_timeout` (a cut link never answers, and libvirt's own connect
// would wait out the kernel's SYN retries, minutes); kUnavailable when it does not answer. Blocks for the
// libvirt calls otherwise: call it on a thread of its own.
StatusOr<bool> DestroyOnPrimary(virt::LibvirtRuntime& runtime, Clock& clock, const std::string& uri,
                                const std::string& vm_uuid, Duration connect_timeout);
// DestroyOnPrimary's work once connected: the domain whose UUID is `vm_uuid` destroyed on `primary`.
StatusOr<bool> DestroyVm(virt::Hypervisor& primary, const std::string& vm_uuid);

}  // namespace vs::failover
