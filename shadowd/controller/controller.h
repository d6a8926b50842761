// ProtectionController: shadowd's core for the VMs whose primary runs on THIS host. It turns
// observations (hook events, libvirt domain events, metadata changes, timers, capacity changes) and
// the outcomes of the actions it performs into lifecycle transitions (shadowd/lifecycle), persists
// each transition, and performs the resulting commands through small interfaces: PeerOps (the other
// hosts), ClusterView (capacity, shadows everywhere), ImageInfo (local disk sizes), the Store.
// No libvirt, gRPC or RocksDB here: everything outside is behind those interfaces.
//
// Execution model (deterministic, one thread):
//   - On*/HandleHookEvent/Recover/SweepOrphans apply events at once (read record, lifecycle::Apply,
//     write one store batch, dispatch the commands) and return. Commands that act on other hosts or
//     ask the scheduler (ComputePlacement, DefineShadow, ReleaseShadow, orphan releases) are queued;
//     timers (grace, retry) are kept as (deadline, VM) and fire from OnTimer(); DeleteRecord is part of
//     the transition's batch; ReportError goes to ControllerOptions::report.
//   - Step() performs the oldest queued command (blocking PeerOps calls) and applies its outcome as
//     an event (ShadowDefined, ShadowDefineFailed, ...); RunPending() steps until the queue is empty.
//     The queue is FIFO, so one VM's remote commands run in the order issued, each after the previous
//     one finished (the ordering lifecycle.h requires). Before performing a command the controller
//     checks that the VM's current record still asks for it (e.g. DefineShadow only in Placing on that
//     host); commands overtaken by later transitions are dropped.
//   - Refused events (lifecycle's FailedPrecondition: stale timers, late results) are ignored: OK.
//
// Persistence and the single-writer rule. Each transition is one store::WriteBatch on
// Key(Table::kVm, vm uuid), written (durably) before its commands are performed. One controller owns
// the records of its host and serialises everything on its thread, so a plain read-modify-write is
// safe; the rule is checked: the controller remembers the version of every record it loaded or wrote
// and refuses (kAborted, naming the VM and both versions) to act on a record whose stored version
// differs, i.e. that someone else wrote. A failed write leaves the record as it was; the VM's recovery
// commands are then re-issued from the stored record after a backoff (a "resync" timer).
//
// Crash safety (kill -9 anywhere): every remote action is recorded as an intent before it starts and
// is idempotent (deterministic shadow UUID: a re-define replaces), so after a restart:
//     Recover();                                  // load every VmRecord, re-issue its commands
//     ReconcileLocalDomains(all domains of this host, with XML and run state);
//     SweepOrphans(ClusterView's shadows);        // release shadows no record of ours accounts for
//     RunPending();
// converges to exactly one shadow per protected VM. A DefineShadow needs the primary's domain XML,
// which is not persisted: it waits until the VM has been observed (ReconcileLocalDomains does that).
//
// Thread-safety: none; every call from one thread (the daemon's event loop). The interfaces passed
// in are borrowed and must outlive the controller. Failure modes: calls return Status; InvalidArgument
// for malformed input (naming the field), kFailedPrecondition before Recover(), store errors as the
// store reports them. Problems of one VM are recorded in its record (last_error) and never stop others.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"
#include "proto/vm_record.pb.h"
#include "scheduler/placement.h"
#include "shadowd/controller/cluster_view.h"
#include "shadowd/controller/image_info.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/lifecycle/commands.h"
#include "shadowd/lifecycle/events.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/store.h"

namespace vs::controller {

// A policy named outside the domain XML, and where it was found (for status, e.g. "flavor vs.small extra spec
// virt_shadow:policy=gold"). policy: OK + nullopt = not protected by that source; an error = the source names
// something invalid (the VM is PolicyInvalid with this message).
struct ExternalPolicy {
  StatusOr<std::optional<policy::Policy>> policy = std::optional<policy::Policy>{};
  std::string source;
};

struct ControllerOptions {
  std::string this_host;  // this host's name, as ClusterView and the shadows' links spell it
  Duration grace_period = std::chrono::minutes(10);  // how long a shadow outlives its VM's interest
  scheduler::PlacementOptions placement;
  // Receives every error reported for a VM (the same text is in its record's last_error); may be empty.
  std::function<void(const std::string& vm_uuid, const std::string& message)> report;
  // The host where a VM defined here was promoted after this host fenced it (its copy here is stale; the self-fence
  // learned it from the shadow host), if it was. Such a VM is not protected from here: its record ends as after a
  // switchover (the shadow became the VM there, nothing to release) and its domain is ignored like a shadow's, so
  // that the stale copy gets no new shadow and no rounds. Answers from memory or the store; may be empty.
  std::function<std::optional<std::string>(const std::string& vm_uuid)> promoted_elsewhere;
  // The policy that a cloud's records name for a VM whose domain XML has no policy element of its own (Nova's
  // flavor, image and instance properties for a Nova instance: shadowd/nova/nova_policy_watcher.h). nullopt when
  // the VM is not the cloud's or its answer is not known yet; when it becomes known or changes, the caller calls
  // OnExternalPolicyChanged. Called on the controller's thread; must not block (answer from memory). May be empty.
  std::function<std::optional<ExternalPolicy>(const std::string& vm_uuid, const policy::DomainFacts& facts)>
      external_policy;
};

// What Nova's domain metadata says of a VM Nova manages, for status.
struct NovaView {
  std::string instance_id;
  std::string name;
  std::string project_id;
  std::string project_name;
  std::string flavor;
};

// One look at a domain of this host.
struct DomainObservation {
  std::string xml;  // the full domain XML, <metadata> included (hook stdin, virDomainGetXMLDesc)
  bool running = false;
  // Identity as the source reported it apart from the XML (HookEvent, virDomainGetUUIDString): lets an
  // XML that cannot be parsed be attributed to its VM. May be empty.
  std::string uuid_hint;
  std::string name_hint;
};

// What the CLI shows for one VM with a record.
struct VmStatusView {
  std::string name;
  std::string uuid;
  virtshadow::v1::ProtectionState state = virtshadow::v1::PROTECTION_STATE_UNSPECIFIED;
  bool damaged = false;  // the record cannot be read (last_error says why); `state` means nothing then
  bool running = false;
  std::vector<std::string> shadow_hosts;
  std::string pinned_host;  // a failback asked for the next shadow there
  lifecycle::ShadowSize shadow_size;
  std::string policy;  // the canonical policy in force; empty when none is valid
  std::string last_error;
  std::string unprotected_reason;
  std::optional<NovaView> nova;  // set for a Nova instance observed here
  std::string policy_source;     // where the policy in force was named when not in the domain XML
};

class ProtectionController {
 public:
  ProtectionController(ControllerOptions options, store::Store& store, PeerOps& peers, ClusterView& cluster,
                       ImageInfo& images, const Clock& clock);

  // ---- Start-up. Recover() must come first; every other call before it is kFailedPrecondition.

  // Loads every VmRecord and re-issues what each one's state asks for (lifecycle::Recover). A record
  // that cannot be read or recovered is reported and skipped; the first such error is returned after
  // all others were recovered.
  Status Recover();
  // Observes every domain of this host (`domains` must be the complete list); records of VMs missing
  // from it get VmUndefined. Call after Recover() and whenever the list may have drifted.
  Status ReconcileLocalDomains(const std::vector<DomainObservation>& domains);

  // ---- Observations.

  // The domain as it is now: run state and tag (added, changed, invalid or removed) are compared with
  // the record and the differences applied. Shadow domains (with a shadow-of link) are ignored. An XML
  // that cannot be parsed is recorded as the VM's error when uuid_hint names it, and returned.
  Status OnDomainObserved(const DomainObservation& observation);
  Status OnDomainStopped(std::string_view vm_uuid);
  Status OnDomainUndefined(std::string_view vm_uuid);
  // The domain's metadata changed (libvirt's metadata-change event, with the new XML): a live policy
  // edit. The run state is the last one observed.
  Status OnMetadataChanged(std::string_view xml);
  // The libvirt hook's event, mapped as in the table in controller.cc (prepare/start/started/migrate/
  // restore/reconnect/attach -> observed running; stopped/release -> stopped).
  Status HandleHookEvent(const virtshadow::v1::HookEvent& event);
  // Fires every timer due at the clock's wall time.
  Status OnTimer();
  // The VM moved live onto its shadow on `host` (shadowd/switchover), or `promoted` there from it while this
  // copy was fenced: its record ends without a release, since the shadow became the VM; the VM's new host
  // protects it from now on.
  Status OnSwitchedOver(std::string_view vm_uuid, const std::string& host, bool promoted = false);
  // Failback's first step: move the VM's shadow to `host` (release it, place the next one there only).
  // FailedPrecondition unless the VM is Protected or Unprotected; the lifecycle's error for a bad host.
  Status RequestShadowMove(std::string_view vm, const std::string& host);
  // The external policy (ControllerOptions::external_policy) of a VM observed here became known or changed: its
  // last observation is judged again. OK when the VM is not (or no longer) observed here.
  Status OnExternalPolicyChanged(std::string_view vm_uuid);
  // Some host's free capacity grew: every Unprotected VM tries placement again now.
  Status OnCapacityChanged();
  // `host` is leaving (it drains under a notice): every shadow defined or being defined there is released and
  // placed elsewhere (ClusterView offers a draining host as down), so that its VMs stay protected.
  Status OnHostLeaving(const std::string& host, const std::string& reason);
  // `host` is gone (it left the quorate membership and stayed away): a shadow defined or being defined there
  // cannot be released, so it is given up (ShadowLost) and the next one placed elsewhere. Its definition, when
  // the host comes back, is an orphan for SweepOrphans.
  Status OnHostLost(const std::string& host, const std::string& detail);
  // `found`: the shadow domains on the peer hosts (ClusterView::Shadows()). Every shadow owned by this
  // host (link host == this_host) that no record assigns to that host is queued for release.
  Status SweepOrphans(const std::vector<PeerShadow>& found);

  // ---- Execution.

  // Performs the oldest queued command and applies its outcome. False when the queue was empty.
  StatusOr<bool> Step();
  // Steps until the queue is empty; returns the first error met (after finishing the queue).
  Status RunPending();
  bool HasPending() const { return !queue_.empty(); }
  // The earliest timer deadline: when the event loop should call OnTimer() next.
  std::optional<WallTime> NextTimerDeadline() const;

  // ---- Queries (read the store; for the CLI).

  // `vm` is a UUID (any case) or a domain name. NotFound when the VM has no record (untagged, or
  // stopped with nothing held).
  StatusOr<VmStatusView> StatusOf(std::string_view vm) const;
  StatusOr<std::vector<VmStatusView>> List() const;
  // The scheduler's verdict for every host if the VM were placed now (its own current reservation
  // left out). FailedPrecondition when the VM has no valid policy.
  StatusOr<scheduler::Explanation> Explain(std::string_view vm);

 private:
  // Releases a shadow found by the orphan sweep; not part of any VM's lifecycle.
  struct ReleaseOrphan {
    PeerShadow shadow;
  };
  struct Pending {
    std::string vm_uuid;
    std::variant<lifecycle::ComputePlacement, lifecycle::DefineShadow, lifecycle::ReleaseShadow, ReleaseOrphan>
        action;
  };
  enum class TimerKind { kGrace, kRetry, kResync };
  using TimerKey = std::pair<std::string, TimerKind>;  // (vm uuid, kind): one timer of each kind per VM
  // What the domain's tag asks for, judged from one observation.
  struct Untagged {};
  struct Tagged {
    std::string policy_xml;
    lifecycle::ShadowSize size;
  };
  struct Rejected {
    std::string error;
  };
  using Judgement = std::variant<Untagged, Tagged, Rejected>;
  struct Observed {
    std::string xml;
    policy::DomainFacts facts;
    bool running = false;
    std::optional<std::string> rejection;  // the last Rejected error delivered, to report it once
    std::string policy_source;             // ExternalPolicy::source of the policy in force; empty: the XML's
    // Reported undefined: kept until its record ends, because a release still needs its disk paths.
    bool undefined = false;
  };

  Status RequireStarted() const;
  StatusOr<std::optional<virtshadow::v1::VmRecord>> LoadRecord(const std::string& vm_uuid) const;
  struct LoadedRecords {
    std::vector<virtshadow::v1::VmRecord> records;
    std::vector<std::pair<std::string, Status>> damaged;  // (store key, why it cannot be read)
  };
  StatusOr<LoadedRecords> LoadAllRecords() const;
  StatusOr<virtshadow::v1::VmRecord> FindRecord(std::string_view vm) const;
  // Apply + persist + dispatch. Refused (FailedPrecondition) events are ignored.
  Status ApplyEvent(const virtshadow::v1::VmRecord& current, const lifecycle::Event& event);
  Status ApplyEventTo(const std::string& vm_uuid, const lifecycle::Event& event);
  Status Persist(const std::string& vm_uuid, const virtshadow::v1::VmRecord& record, bool delete_record);
  void Dispatch(const std::string& vm_uuid, std::vector<lifecycle::Command> commands);
  Status DispatchRecovered(const virtshadow::v1::VmRecord& record);
  void Report(const std::string& vm_uuid, const std::string& message) const;

  Status Observe(const DomainObservation& observation, const std::string& vm_uuid, policy::DomainFacts facts);
  Status ObserveUnparsable(const DomainObservation& observation, const Status& error);
  // `policy_source` receives where the policy was named when an external source named it.
  Judgement Judge(const std::string& vm_uuid, const policy::DomainFacts& facts, std::string& policy_source) const;
  VmStatusView ViewWithObservation(const virtshadow::v1::VmRecord& record) const;

  Status Perform(const std::string& vm_uuid, const lifecycle::ComputePlacement& command);
  Status Perform(const std::string& vm_uuid, const lifecycle::DefineShadow& command);
  Status Perform(const std::string& vm_uuid, const lifecycle::ReleaseShadow& command);
  Status Perform(const std::string& vm_uuid, const ReleaseOrphan& command);
  Status DefineOn(const virtshadow::v1::VmRecord& record, const Observed& observed,
                  const lifecycle::DefineShadow& command);
  Status ReleaseOn(const std::string& host, const std::string& shadow_uuid, const std::string& shadow_name,
                   std::vector<std::string> known_paths);

  StatusOr<scheduler::ShadowRequest> RequestFor(const virtshadow::v1::VmRecord& record);
  // ClusterView's hosts with every reservation added, except those of `exclude_vm`.
  StatusOr<std::vector<scheduler::Host>> HostsWithReservations(const std::string& exclude_vm);

  const ControllerOptions options_;
  store::Store& store_;
  PeerOps& peers_;
  ClusterView& cluster_;
  ImageInfo& images_;
  const Clock& clock_;

  bool started_ = false;
  std::map<std::string, std::uint64_t> versions_;  // vm uuid -> version of the record as last loaded/written
  std::map<std::string, Observed> observed_;       // vm uuid -> its last observation (not persisted)
  std::map<std::string, lifecycle::DefineShadow> awaiting_xml_;  // defines waiting for an observation
  std::deque<Pending> queue_;
  std::map<TimerKey, WallTime> timers_;
};

}  // namespace vs::controller
