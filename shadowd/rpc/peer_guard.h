// PeerGuard: the one place every ShadowPeer request is validated and its caller authorised, before PeerService
// hands it to the replica keeper, the switchover target, the promotions or the self-fence. The rules (each
// method below applies those of its call; PeerService's header lists them per call):
//
//   Syntax    VM UUIDs are 8-4-4-4-12 hex digits; image paths are absolute, lexically normal (no ".", "..",
//             "//" or trailing "/"), without NUL and at most kMaxPathLength bytes; formats are "qcow2" or
//             "raw"; round modes are FULL, INCREMENTAL or RESYNC (no unknown enum value reaches the keeper);
//             host names are hosts of the cluster configuration; at most kMaxDisks disks per request; a
//             FinishRound commit records the round it finishes (the same checkpoint) with one of those modes.
//   Sizes     a disk's virtual_size is 1..kMaxVirtualSize (block_map.h: 2 TiB, what one message of block
//             digests can carry), and so is the sum over a round's disks; a RESYNC disk carries exactly one
//             source digest per block, other modes none; an INCREMENTAL disk names a dirty-bitmap context.
//             (No shrinking is the keeper's check: it needs the replica's size.)
//   Ownership a round, a digest read and the paths they name are only for a shadow of the VM defined on this
//             host whose disks include those paths (the keeper and the target check again, with the state
//             that needs: the shadow shut off, the switchover prepared).
//   Authority (Authorise, the function the mutual-TLS work feeds with the certificate's host name)
//             - a VM's calls (rounds, digests, replica state, switchover check/prepare/complete/abort) come only
//               from the VM's primary (KnownPrimary: the host that placed its shadow here, else the one its
//               unfinished prepared switchover, its replica record or its completed switchover names); when no
//               primary is known here only reads pass;
//             - a round writes only into a shadow placed for the primary that sends it (request.primary_host is
//               the shadow's placing host), and reads only from an NBD export on that primary: the source
//               URI's host is the primary's configured address, its scheme nbds:// when exports use TLS
//               ([tls] nbd = mutual) and nbd:// otherwise, and it has no query (no option of the caller's);
//             - QueryPromotion and DiscardStaleCopy come only from the host they name as asking_host;
//             - Complete and Abort act only on a switchover prepared here (SwitchoverTarget checks that).
//             An unauthenticated caller (all of them until mutual TLS lands) passes the identity comparisons; every
//             other rule applies to it.
//
// Ownership: a value holding the cluster configuration and the look-up it is given (which must outlive it).
// Thread-safety: const methods, safe from any thread if the look-up is. Failure modes: InvalidArgument for
// a malformed request, PermissionDenied for a caller that is not allowed and FailedPrecondition for a target
// that is not (naming who and why, and what would be allowed), the look-up's errors as they come.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "proto/peer.pb.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/peer_identity.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::rpc {

inline constexpr size_t kMaxDisks = 256;          // far above any VM's disks; bounds the per-disk work
inline constexpr size_t kMaxPathLength = 4096;    // PATH_MAX
inline constexpr size_t kMaxNameLength = 1024;    // checkpoint, target, domain names, contexts, URIs

// What this host knows about a VM, for the authorisation.
struct VmOnThisHost {
  std::optional<controller::PeerShadow> shadow;  // the VM's shadow domain here
  std::string primary_host;                      // see Authority above; "" when unknown here
};

bool IsUuid(std::string_view text);

class PeerGuard {
 public:
  using LookUp = std::function<StatusOr<VmOnThisHost>(const std::string& vm_uuid)>;

  // `exports_use_tls`: rounds read only from nbds:// sources (else only from nbd:// ones).
  PeerGuard(cluster::ClusterHosts hosts, LookUp look_up, bool exports_use_tls = false)
      : hosts_(std::move(hosts)), look_up_(std::move(look_up)), exports_use_tls_(exports_use_tls) {}

  Status GetReplica(const PeerCaller& caller, const virtshadow::v1::GetReplicaRequest& request) const;
  Status ApplyRound(const PeerCaller& caller, const virtshadow::v1::ApplyRoundRequest& request) const;
  Status FinishRound(const PeerCaller& caller, const virtshadow::v1::FinishRoundRequest& request) const;
  Status ReplicaDigests(const PeerCaller& caller, const virtshadow::v1::ReplicaDigestsRequest& request) const;
  Status CheckSwitchover(const PeerCaller& caller, const virtshadow::v1::CheckSwitchoverRequest& request) const;
  Status PrepareSwitchover(const PeerCaller& caller, const virtshadow::v1::PrepareSwitchoverRequest& request) const;
  Status CompleteSwitchover(const PeerCaller& caller, const virtshadow::v1::CompleteSwitchoverRequest& request) const;
  Status AbortSwitchover(const PeerCaller& caller, const virtshadow::v1::AbortSwitchoverRequest& request) const;
  Status QueryPromotion(const PeerCaller& caller, const virtshadow::v1::PromotionQueryRequest& request) const;
  Status DiscardStaleCopy(const PeerCaller& caller, const virtshadow::v1::DiscardStaleCopyRequest& request) const;

  // The identity rule: a known caller must be `expected_host` (the VM's primary, or the asking host). `writes`:
  // a call that changes something is refused to a known caller when no primary is known here. An unauthenticated
  // caller passes (no identity to compare yet).
  static Status Authorise(const PeerCaller& caller, const std::string& what, const std::string& expected_host,
                          bool writes);

 private:
  // Checks the UUID, looks the VM up and authorises the caller as its primary.
  StatusOr<VmOnThisHost> LookUpAndAuthorise(const PeerCaller& caller, const std::string& what,
                                            const std::string& vm_uuid, bool writes) const;
  // The same for calls that need nothing else of the look-up: none for an unauthenticated caller.
  Status AuthoriseForVm(const PeerCaller& caller, const std::string& what, const std::string& vm_uuid,
                        bool writes) const;
  Status CheckClusterHost(const std::string& what, const std::string& host) const;

  const cluster::ClusterHosts hosts_;
  const LookUp look_up_;
  const bool exports_use_tls_;
};

// Who the VM's primary is, as this host knows it: the host that placed its shadow here; else the source of a
// switchover prepared here and not completed; else the primary of its replica record; else the source of the
// switchover completed here last (its origin may retry the completion). "" when none. A completed switchover
// comes after the replica record because it may be long past: once the VM left again and a new primary placed
// a new shadow here, a stale completed record refused that primary's calls (seen in the lab when the new
// shadow's definition was gone).
std::string KnownPrimary(const std::optional<controller::PeerShadow>& shadow,
                         const std::optional<virtshadow::v1::SwitchoverRecord>& prepared,
                         const std::optional<virtshadow::v1::ReplicaRecord>& replica);

// The production look-up: the VM's shadow among `local`'s domains (this host: `this_host`) and its primary
// (KnownPrimary) from the shadow, the prepared switchover and the replica record. All borrowed.
PeerGuard::LookUp LookUpOnThisHost(virt::Hypervisor& local, std::string this_host,
                                   replication::ReplicaKeeper& keeper, switchover::ArrivalRecords& arrivals);

}  // namespace vs::rpc
