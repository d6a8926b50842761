// NovaPromotionHost: the PromotionHost of a shadow host in an OpenStack cloud. A crash promotion of a Nova
// instance goes through Nova's evacuate, so that Nova's records name this host and Nova keeps the replica
// (docs/nova.md, "A crash promotion through Nova's evacuate"); every other VM is promoted by the wrapped host
// (LibvirtPromotionHost) unchanged.
//
// Which VM is a Nova instance: its promoted definition (the shadow's, which keeps Nova's <metadata>,
// shadow_domain_xml.h) carries <nova:instance> (policy::DomainFacts::nova) AND Nova knows its UUID (GetServer; a
// 404 means "not Nova's": the wrapped host promotes it). Any other Nova error is a retry (kUnavailable), never a
// refusal that would fail the promotion.
//
// For a Nova instance:
//   Define     defines nothing: Nova's rebuild refuses a domain with the instance's UUID already defined here
//              (ComputeManager._check_instance_exists), and Nova writes its own definition when it spawns.
//   Undefine   (the shadow) passes through: the shadow's UUID differs from the instance's, but it must be gone
//              before Nova starts a domain over the same disks.
//   Start      asks Nova where the instance is (GetServer) and, unless Nova is already evacuating it or has it
//              here: forces the dead primary's nova-compute down (FindComputeService + SetForcedDown; Nova refuses
//              to evacuate from an "up" host), deletes the shadow's Placement allocation (consumer: the shadow's
//              UUID, lifecycle::ShadowUuid; else Nova's scheduler finds no room here), asks Evacuate(uuid, this
//              host); then polls GetServer until Nova has it on this host, ACTIVE (or SHUTOFF, as Nova rebuilds a
//              stopped instance stopped) with no task, for at most `evacuate_timeout`. The record of the
//              promotion (its vm_uuid, primary_host, shadow_name, promoted_xml) is read from the store by the
//              VM's name: nothing is remembered between calls, so a restarted shadowd resumes safely.
//   VmState    a domain that runs while Nova has not finished (not ACTIVE/SHUTOFF here with no task) is reported
//              not running, so that a restarted Promotions calls Start (which waits for Nova) instead of
//              taking Nova's half-spawned domain as started.
//   the rest   passes through. Nova spawns the domain at its flavor's full size (the promoted definition's full
//              size), so Promotions' growth finds nothing to grow and calls neither SetVcpusLive nor
//              SetMemoryLive.
// Never evacuated twice: Start evacuates only when Nova has the instance on another host with no task; an
// evacuation under way (task_state set, by Nova's API before it answers) or done is waited for, not repeated.
// Refused without calling Nova's evacuate: an instance in ERROR (an operator resets it), an instance Nova places on
// a host that is neither this one nor the promotion's primary (forcing that host down could be wrong).
//
// Ownership: borrows inner, api, store and clock (they must outlive it). Thread-safety: as Promotions calls it
// (the promotion thread only); no state of its own. Failure modes: every error names the VM, the Nova call and
// the host it concerns; kDeadlineExceeded when Nova has not finished within evacuate_timeout (Promotions retries
// Start, which waits again without a second evacuate); kFailedPrecondition for ERROR and refusals.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/logger.h"
#include "common/status.h"
#include "proto/failover.pb.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/nova/openstack_api.h"
#include "shadowd/store/store.h"

namespace vs::nova {

struct NovaPromotionSettings {
  std::string this_host;  // this host's name, which is also its Nova compute host name
  Duration evacuate_timeout{std::chrono::minutes(5)};
  Duration poll_interval{std::chrono::seconds(5)};
};

class NovaPromotionHost final : public failover::PromotionHost {
 public:
  NovaPromotionHost(failover::PromotionHost& inner, OpenStackApi& api, const store::Store& store, Clock& clock,
                    NovaPromotionSettings settings, Logger::Line log);

  StatusOr<std::vector<controller::PeerShadow>> LocalShadows() override { return inner_.LocalShadows(); }
  StatusOr<virtshadow::v1::ReplicaRecord> SettleReplica(const std::string& vm_uuid) override {
    return inner_.SettleReplica(vm_uuid);
  }
  StatusOr<std::string> DefinitionXml(const std::string& name) override { return inner_.DefinitionXml(name); }
  Status Define(const std::string& xml) override;
  Status Undefine(const std::string& name) override { return inner_.Undefine(name); }
  StatusOr<failover::PromotedVmState> VmState(const std::string& name) override;
  Status Start(const std::string& name) override;
  StatusOr<failover::VmSize> LiveSize(const std::string& name) override { return inner_.LiveSize(name); }
  StatusOr<failover::VmSize> FreeBesides(const std::string& name) override { return inner_.FreeBesides(name); }
  Status SetVcpusLive(const std::string& name, std::uint32_t vcpus) override {
    return inner_.SetVcpusLive(name, vcpus);
  }
  Status SetMemoryLive(const std::string& name, std::uint64_t memory_kib) override {
    return inner_.SetMemoryLive(name, memory_kib);
  }

 private:
  // The unfinished promotion record of the VM named `name` whose promoted definition carries <nova:instance>;
  // nullopt when there is none (an ordinary VM).
  StatusOr<std::optional<virtshadow::v1::PromotionRecord>> NovaRecord(const std::string& name) const;
  // Nova's server for `vm_uuid`, nullopt when Nova does not know it (404); other errors as kUnavailable.
  StatusOr<std::optional<NovaServer>> Server(const std::string& vm_uuid, const std::string& vm_name);
  // Force down, allocation, evacuate.
  Status Evacuate(const virtshadow::v1::PromotionRecord& record, const NovaServer& server);
  // Polls until Nova has finished (OK), failed, or the timeout passed.
  Status WaitForNova(const virtshadow::v1::PromotionRecord& record);
  bool Finished(const NovaServer& server) const;

  failover::PromotionHost& inner_;
  OpenStackApi& api_;
  const store::Store& store_;
  Clock& clock_;
  const NovaPromotionSettings settings_;
  const Logger::Line log_;
};

// The Placement consumer of the shadow `shadow_name` of the VM `vm_uuid`/`vm_name`: lifecycle::ShadowUuid with
// the index read from the name (lifecycle::ShadowName's "<vm>-shadow" or "<vm>-shadow<index>"). InvalidArgument
// when the name is not one ShadowName gives.
StatusOr<std::string> ShadowConsumerUuid(const std::string& vm_uuid, const std::string& vm_name,
                                         const std::string& shadow_name);

}  // namespace vs::nova
