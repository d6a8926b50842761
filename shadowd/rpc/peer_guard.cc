#include "shadowd/rpc/peer_guard.h"

#include <algorithm>
#include <cctype>

#include "common/host_port.h"
#include "shadowd/cluster/domain_scan.h"
#include "shadowd/replication/block_map.h"

namespace vs::rpc {

namespace v1 = virtshadow::v1;

namespace {

Status CheckLength(const std::string& what, const std::string& text, size_t limit) {
  if (text.size() <= limit) return Status::Ok();
  return InvalidArgument(what + " is " + std::to_string(text.size()) + " bytes long, more than the " +
                         std::to_string(limit) + " allowed");
}

Status CheckUuid(const std::string& uuid) {
  if (IsUuid(uuid)) return Status::Ok();
  return InvalidArgument("'" + uuid.substr(0, 64) + "' is not a VM UUID (8-4-4-4-12 hex digits)");
}

// Absolute and lexically normal, so that one file has one spelling and comparisons with a shadow's disks hold.
Status CheckImagePath(const std::string& what, const std::string& path) {
  VS_RETURN_IF_ERROR(CheckLength(what, path, kMaxPathLength));
  bool normal = path.size() > 1 && path.front() == '/' && path.back() != '/' &&
                path.find('\0') == std::string::npos && path.find("//") == std::string::npos;
  for (size_t start = 1; normal && start < path.size();) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part(path.data() + start, end - start);
    normal = part != "." && part != "..";
    start = end + 1;
  }
  if (normal) return Status::Ok();
  return InvalidArgument(what + " '" + path.substr(0, 256) +
                         "' is not an absolute, normal path (no '.', '..', '//' or trailing '/')");
}

Status CheckFormat(const std::string& what, const std::string& format) {
  if (format == "qcow2" || format == "raw") return Status::Ok();
  return InvalidArgument(what + ": format '" + format.substr(0, 64) + "' is neither qcow2 nor raw");
}

Status CheckDiskCount(const std::string& what, int count) {
  if (static_cast<size_t>(count) <= kMaxDisks) return Status::Ok();
  return InvalidArgument(what + " names " + std::to_string(count) + " disks, more than the " +
                         std::to_string(kMaxDisks) + " allowed");
}

Status CheckSwitchoverDisks(const std::string& what,
                            const google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) {
  VS_RETURN_IF_ERROR(CheckDiskCount(what, disks.size()));
  for (const auto& disk : disks) {
    const std::string named = what + " disk " + disk.target().substr(0, 64);
    VS_RETURN_IF_ERROR(CheckLength(named + " target", disk.target(), kMaxNameLength));
    VS_RETURN_IF_ERROR(CheckImagePath(named + " base", disk.base_path()));
    VS_RETURN_IF_ERROR(CheckImagePath(named + " top", disk.top_path()));
    VS_RETURN_IF_ERROR(CheckFormat(named, disk.format()));
  }
  return Status::Ok();
}

// The checkpoint names a switchover carries (the source's, whose bitmaps the target removes): bounded in number
// and length, like every list a peer sends.
Status CheckSourceCheckpoints(const std::string& what, const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.size() > 4096) {
    return InvalidArgument(what + " names " + std::to_string(names.size()) +
                           " source checkpoints, more than the 4096 allowed");
  }
  for (const auto& checkpoint : names) VS_RETURN_IF_ERROR(CheckLength("source checkpoint", checkpoint, kMaxNameLength));
  return Status::Ok();
}

Status CheckOwned(const std::string& vm_uuid, const VmOnThisHost& vm, const std::string& path) {
  if (!vm.shadow) {
    return FailedPrecondition("no shadow of VM " + vm_uuid + " is defined on this host: nothing of it may be "
                              "read or written here until its primary places one");
  }
  const auto& owned = vm.shadow->replica_paths;
  if (std::find(owned.begin(), owned.end(), path) != owned.end()) return Status::Ok();
  return FailedPrecondition(path + " is not a disk of shadow " + vm.shadow->shadow_name + " of VM " + vm_uuid +
                            " on this host: refusing to touch it");
}

// "nbd://HOST[:PORT]/NAME" (or "nbds://" with `tls`) on `address` (the primary's configured address, as
// Replicator::ExportUri writes it), without a query: libnbd reads options from it.
Status CheckSourceOn(const std::string& what, const std::string& uri, const std::string& primary,
                     const std::string& address, bool tls) {
  const std::string_view scheme = tls ? "nbds://" : "nbd://";
  auto refuse = [&](const std::string& why) {
    return FailedPrecondition(what + ": source " + uri.substr(0, 256) + " " + why + "; a round reads only from " +
                              "the NBD export of the VM's primary " + primary + " (" + std::string(scheme) + address +
                              ":PORT/DISK)");
  };
  if (!uri.starts_with(scheme)) {
    return refuse("is not an " + std::string(scheme) + " URI" +
                  (tls ? " (exports use TLS here: [tls] nbd = mutual)" : ""));
  }
  const size_t slash = uri.find('/', scheme.size());
  if (slash == std::string::npos) return refuse("names no export");
  if (uri.find_first_of("?#", slash) != std::string::npos) return refuse("has a query or fragment");
  StatusOr<HostPort> authority = SplitHostPort(std::string_view(uri).substr(scheme.size(), slash - scheme.size()));
  if (!authority.ok()) return refuse("has no valid host: " + authority.status().message());
  if (authority->host != address) return refuse("is on " + authority->host + ", not on " + address);
  return Status::Ok();
}

}  // namespace

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

Status PeerGuard::Authorise(const PeerCaller& caller, const std::string& what, const std::string& expected_host,
                            bool writes) {
  if (!caller.host) return Status::Ok();
  if (expected_host.empty()) {
    if (!writes) return Status::Ok();
    return PermissionDenied(what + " from " + caller.Describe() + " refused: no primary of the VM is known on "
                              "this host (no shadow placed here, no replica or switchover recorded)");
  }
  if (*caller.host == expected_host) return Status::Ok();
  return PermissionDenied(what + " from " + caller.Describe() + " refused: only " + expected_host +
                            " may make it on this host");
}

Status PeerGuard::CheckClusterHost(const std::string& what, const std::string& host) const {
  if (hosts_.Find(host) != nullptr) return Status::Ok();
  return InvalidArgument(what + " '" + host.substr(0, 256) + "' is not a host of this cluster's configuration");
}

StatusOr<VmOnThisHost> PeerGuard::LookUpAndAuthorise(const PeerCaller& caller, const std::string& what,
                                                     const std::string& vm_uuid, bool writes) const {
  VS_RETURN_IF_ERROR(CheckUuid(vm_uuid));
  VS_ASSIGN_OR_RETURN(VmOnThisHost vm, look_up_(vm_uuid));
  VS_RETURN_IF_ERROR(Authorise(caller, what + " of VM " + vm_uuid, vm.primary_host, writes));
  return vm;
}

Status PeerGuard::AuthoriseForVm(const PeerCaller& caller, const std::string& what, const std::string& vm_uuid,
                                 bool writes) const {
  // The look-up scans this host's domains: only worth it when there is an identity to compare.
  if (!caller.host) return CheckUuid(vm_uuid);
  return LookUpAndAuthorise(caller, what, vm_uuid, writes).status();
}

Status PeerGuard::GetReplica(const PeerCaller& caller, const v1::GetReplicaRequest& request) const {
  VS_RETURN_IF_ERROR(CheckDiskCount("GetReplica", request.replica_paths_size()));
  for (const auto& path : request.replica_paths()) VS_RETURN_IF_ERROR(CheckImagePath("replica path", path));
  return AuthoriseForVm(caller, "GetReplica", request.vm_uuid(), /*writes=*/false);
}

Status PeerGuard::ApplyRound(const PeerCaller& caller, const v1::ApplyRoundRequest& request) const {
  VS_RETURN_IF_ERROR(CheckUuid(request.vm_uuid()));
  const std::string what = "round " + request.round().checkpoint().substr(0, 64) + " of VM " + request.vm_uuid();
  VS_RETURN_IF_ERROR(CheckLength(what + ": checkpoint", request.round().checkpoint(), kMaxNameLength));
  VS_RETURN_IF_ERROR(CheckLength(what + ": base checkpoint", request.base_checkpoint(), kMaxNameLength));
  VS_RETURN_IF_ERROR(CheckClusterHost(what + ": primary host", request.primary_host()));
  VS_RETURN_IF_ERROR(CheckDiskCount(what, request.disks_size()));
  uint64_t round_bytes = 0;
  for (const auto& disk : request.disks()) {
    const std::string named = what + ", disk " + disk.target().substr(0, 64);
    VS_RETURN_IF_ERROR(CheckLength(named + " target", disk.target(), kMaxNameLength));
    VS_RETURN_IF_ERROR(CheckImagePath(named + " replica", disk.replica_path()));
    VS_RETURN_IF_ERROR(CheckFormat(named, disk.format()));
    VS_RETURN_IF_ERROR(CheckLength(named + " source", disk.source_uri(), kMaxNameLength));
    VS_RETURN_IF_ERROR(CheckLength(named + " dirty context", disk.dirty_context(), kMaxNameLength));
    if (disk.virtual_size() == 0) return InvalidArgument(named + ": a virtual size of 0 bytes");
    VS_RETURN_IF_ERROR(replication::CheckDeviceSize(disk.virtual_size()).Annotate(named));
    round_bytes += disk.virtual_size();
    const uint64_t blocks = replication::BlockCount(disk.virtual_size());
    switch (disk.mode()) {
      case v1::ROUND_MODE_FULL:
        break;
      case v1::ROUND_MODE_INCREMENTAL:
        if (!disk.dirty_context().starts_with(replication::kDirtyContextPrefix)) {
          return InvalidArgument(named + ": an incremental disk needs a dirty-bitmap context (" +
                                 std::string(replication::kDirtyContextPrefix) + "...)");
        }
        break;
      case v1::ROUND_MODE_RESYNC:
        if (static_cast<uint64_t>(disk.source_digests_size()) != blocks) {
          return InvalidArgument(named + ": a resync carries one digest per block, " + std::to_string(blocks) +
                                 ", not " + std::to_string(disk.source_digests_size()));
        }
        break;
      default:
        return InvalidArgument(named + ": round mode " + std::to_string(disk.mode()) +
                               " is not FULL, INCREMENTAL or RESYNC");
    }
    if (disk.mode() != v1::ROUND_MODE_RESYNC && disk.source_digests_size() != 0) {
      return InvalidArgument(named + ": only a resync carries source digests");
    }
  }
  VS_RETURN_IF_ERROR(replication::CheckDeviceSize(round_bytes).Annotate(what + ", all disks together"));

  VS_ASSIGN_OR_RETURN(VmOnThisHost vm, LookUpAndAuthorise(caller, "a round", request.vm_uuid(), /*writes=*/true));
  // A round writes only into a shadow placed for the primary that sends it.
  if (!vm.shadow) return CheckOwned(request.vm_uuid(), vm, "");
  if (vm.shadow->primary_host != request.primary_host()) {
    return FailedPrecondition(what + " comes from " + request.primary_host() + ", but shadow " +
                              vm.shadow->shadow_name + " here was placed by " + vm.shadow->primary_host +
                              ": only the VM's primary writes its replicas");
  }
  const cluster::HostConfig* primary = hosts_.Find(request.primary_host());
  for (const auto& disk : request.disks()) {
    VS_RETURN_IF_ERROR(CheckOwned(request.vm_uuid(), vm, disk.replica_path()));
    VS_RETURN_IF_ERROR(CheckSourceOn(what + ", disk " + disk.target(), disk.source_uri(), primary->name,
                                     primary->address, exports_use_tls_));
  }
  return Status::Ok();
}

Status PeerGuard::FinishRound(const PeerCaller& caller, const v1::FinishRoundRequest& request) const {
  VS_RETURN_IF_ERROR(CheckLength("checkpoint", request.checkpoint(), kMaxNameLength));
  const std::string what = "round " + request.checkpoint().substr(0, 64);
  if (!v1::RoundMode_IsValid(request.round().mode())) {
    return InvalidArgument(what + ": mode " + std::to_string(request.round().mode()) + " is no round mode");
  }
  // A commit's round becomes the replica's applied round (ReplicaKeeper::FinishRound): naming another checkpoint,
  // it would claim a point in time the replica does not hold, and a later incremental round from that checkpoint
  // would pass the keeper's base check and miss writes. A discard's round is not read (the primary sends none).
  if (request.commit()) {
    if (request.round().checkpoint() != request.checkpoint()) {
      return InvalidArgument(what + ": the commit records round '" + request.round().checkpoint().substr(0, 64) +
                             "', not the round it finishes");
    }
    if (request.round().mode() == v1::ROUND_MODE_UNSPECIFIED) {
      return InvalidArgument(what + ": the commit records no round mode (FULL, INCREMENTAL or RESYNC)");
    }
  }
  return AuthoriseForVm(caller, "FinishRound", request.vm_uuid(), /*writes=*/true);
}

Status PeerGuard::ReplicaDigests(const PeerCaller& caller, const v1::ReplicaDigestsRequest& request) const {
  VS_RETURN_IF_ERROR(CheckImagePath("replica path", request.replica_path()));
  VS_RETURN_IF_ERROR(CheckFormat(request.replica_path(), request.format()));
  // A digest read settles the VM's pending round: the primary's call, as a round.
  VS_ASSIGN_OR_RETURN(VmOnThisHost vm,
                      LookUpAndAuthorise(caller, "ReplicaDigests", request.vm_uuid(), /*writes=*/true));
  return CheckOwned(request.vm_uuid(), vm, request.replica_path());
}

Status PeerGuard::CheckSwitchover(const PeerCaller& caller, const v1::CheckSwitchoverRequest& request) const {
  // The check settles the VM's pending round (SwitchoverTarget::Check): the primary's call.
  return AuthoriseForVm(caller, "CheckSwitchover", request.vm_uuid(), /*writes=*/true);
}

Status PeerGuard::PrepareSwitchover(const PeerCaller& caller, const v1::PrepareSwitchoverRequest& request) const {
  VS_RETURN_IF_ERROR(CheckSwitchoverDisks("PrepareSwitchover", request.disks()));
  VS_RETURN_IF_ERROR(CheckSourceCheckpoints("PrepareSwitchover", request.source_checkpoints()));
  return AuthoriseForVm(caller, "PrepareSwitchover", request.vm_uuid(), /*writes=*/true);
}

Status PeerGuard::CompleteSwitchover(const PeerCaller& caller, const v1::CompleteSwitchoverRequest& request) const {
  VS_RETURN_IF_ERROR(CheckSwitchoverDisks("CompleteSwitchover", request.disks()));
  if (request.vm_name().empty()) return InvalidArgument("CompleteSwitchover names no VM");
  VS_RETURN_IF_ERROR(CheckLength("VM name", request.vm_name(), kMaxNameLength));
  VS_RETURN_IF_ERROR(CheckLength("guest_failed", request.guest_failed(), kMaxNameLength));
  VS_RETURN_IF_ERROR(CheckClusterHost("origin host", request.origin_host()));
  VS_RETURN_IF_ERROR(CheckSourceCheckpoints("CompleteSwitchover", request.source_checkpoints()));
  VS_RETURN_IF_ERROR(AuthoriseForVm(caller, "CompleteSwitchover", request.vm_uuid(), /*writes=*/true));
  // The origin is remembered for failback: only the origin itself may name it.
  return Authorise(caller, "CompleteSwitchover naming origin " + request.origin_host(), request.origin_host(),
                   /*writes=*/true);
}

Status PeerGuard::AbortSwitchover(const PeerCaller& caller, const v1::AbortSwitchoverRequest& request) const {
  VS_RETURN_IF_ERROR(CheckSwitchoverDisks("AbortSwitchover", request.disks()));
  return AuthoriseForVm(caller, "AbortSwitchover", request.vm_uuid(), /*writes=*/true);
}

Status PeerGuard::QueryPromotion(const PeerCaller& caller, const v1::PromotionQueryRequest& request) const {
  VS_RETURN_IF_ERROR(CheckUuid(request.vm_uuid()));
  VS_RETURN_IF_ERROR(CheckClusterHost("asking host", request.asking_host()));
  return Authorise(caller, "QueryPromotion naming " + request.asking_host(), request.asking_host(), /*writes=*/true);
}

Status PeerGuard::DiscardStaleCopy(const PeerCaller& caller, const v1::DiscardStaleCopyRequest& request) const {
  VS_RETURN_IF_ERROR(CheckUuid(request.vm_uuid()));
  VS_RETURN_IF_ERROR(CheckClusterHost("asking host", request.asking_host()));
  return Authorise(caller, "DiscardStaleCopy naming " + request.asking_host(), request.asking_host(),
                   /*writes=*/true);
}

std::string KnownPrimary(const std::optional<controller::PeerShadow>& shadow,
                         const std::optional<v1::SwitchoverRecord>& prepared,
                         const std::optional<v1::ReplicaRecord>& replica) {
  if (shadow) return shadow->primary_host;
  if (prepared && prepared->finished_unix_ms() == 0) return prepared->source_host();
  if (replica) return replica->primary_host();
  if (prepared) return prepared->source_host();
  return "";
}

PeerGuard::LookUp LookUpOnThisHost(virt::Hypervisor& local, std::string this_host,
                                   replication::ReplicaKeeper& keeper, switchover::ArrivalRecords& arrivals) {
  return [&local, this_host = std::move(this_host), &keeper, &arrivals](const std::string& vm_uuid)
             -> StatusOr<VmOnThisHost> {
    VmOnThisHost vm;
    VS_ASSIGN_OR_RETURN(vm.shadow, cluster::FindShadowOf(local, this_host, vm_uuid));
    std::optional<v1::SwitchoverRecord> prepared;
    std::optional<v1::ReplicaRecord> replica;
    if (!vm.shadow) {
      VS_ASSIGN_OR_RETURN(prepared, arrivals.PreparedOf(vm_uuid));
      if (!prepared || prepared->finished_unix_ms() != 0) {
        VS_ASSIGN_OR_RETURN(replica, keeper.RecordOf(vm_uuid));
      }
    }
    vm.primary_host = KnownPrimary(vm.shadow, prepared, replica);
    return vm;
  };
}

}  // namespace vs::rpc
