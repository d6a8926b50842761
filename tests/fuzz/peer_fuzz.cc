// Fuzz target: the peer service's request validation (shadowd/rpc/peer_guard.h), on requests as a hostile or broken
// peer may send them. Input: byte 0 picks the call (mod 10: 0 GetReplica, 1 ApplyRound, 2 FinishRound,
// 3 ReplicaDigests, 4 CheckSwitchover, 5 PrepareSwitchover, 6 CompleteSwitchover, 7 AbortSwitchover,
// 8 QueryPromotion, 9 DiscardStaleCopy), byte 1 the caller (mod 4: unauthenticated, h1, h2 = this host, h3), the
// rest is that call's request in protobuf wire format, parsed as gRPC parses it (an input that does not parse is
// dropped). The seeds come from make_peer_seeds.sh. What this host knows about a VM follows from its UUID's first
// hex digit (WhatThisHostKnows), so that every well-formed UUID reaches the ownership and authority rules.
//
// Beyond "no crash, no leak, no UB" it checks, on every request the guard accepts, the rules peer_guard.h and
// peer_service.h state, each re-derived here without peer_guard.cc's helpers: UUID shape, absolute normal paths,
// formats, round modes, name and path lengths, disk counts, virtual sizes and their sum within 2 TiB, one digest
// per block for a resync and none otherwise, the dirty-bitmap context of an incremental disk, cluster host names,
// a round only into the disks of a shadow placed here by the sending primary and only from that primary's NBD
// address, and a known caller only as the VM's primary (or the host it names). A commit records request.round as
// the replica's applied round (ReplicaKeeper::FinishRound), so it must be the round being finished, with a round
// mode. On a refusal: a code the header names (PermissionDenied only for a known caller, the look-up's Unavailable
// only when a look-up failed), and a message that echoes only bounded pieces of the request.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proto/peer.pb.h"
#include "shadowd/replication/block_map.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/peer_guard.h"

namespace vs::rpc {
namespace {

namespace v1 = virtshadow::v1;

void Check(bool promise) {
  if (!promise) std::abort();
}

constexpr char kVda[] = "/var/lib/libvirt/images/web-vda.qcow2";
constexpr char kVdb[] = "/var/lib/libvirt/images/web-vdb.raw";
// A refusal names what it refused and why; it may quote a path (kMaxPathLength) and a few names, never more.
constexpr size_t kMaxMessageLength = 16 * 1024;

// This host is h2.
cluster::ClusterHosts Hosts() {
  cluster::ClusterHosts hosts;
  hosts.this_host = "h2";
  hosts.hosts = {{.name = "h1", .address = "10.0.0.1"}, {.name = "h2", .address = "10.0.0.2"},
                 {.name = "h3", .address = "10.0.0.3"}};
  return hosts;
}

std::string AddressOf(const std::string& host) {
  for (const auto& known : Hosts().hosts) {
    if (known.name == host) return known.address;
  }
  return "";
}

bool IsClusterHost(const std::string& host) { return !AddressOf(host).empty(); }

struct KnownVm {
  bool look_up_fails = false;
  VmOnThisHost vm;
};

// By the UUID's first hex digit: 0-3 nothing of it here; 4-7 its shadow, placed by h1 (disks kVda and kVdb);
// 8-b only a replica record naming h3; c-d its shadow, placed by h3 (disk kVdb); e-f the look-up fails (libvirtd
// restarting).
KnownVm WhatThisHostKnows(const std::string& uuid) {
  const int digit = uuid.empty() ? 0 : std::tolower(static_cast<unsigned char>(uuid[0]));
  auto shadow_by = [&](const std::string& primary, std::vector<std::string> paths) {
    controller::PeerShadow shadow;
    shadow.host = "h2";
    shadow.shadow_name = "web-shadow";
    shadow.primary_uuid = uuid;
    shadow.primary_name = "web";
    shadow.primary_host = primary;
    shadow.replica_paths = std::move(paths);
    return KnownVm{.vm = {shadow, primary}};
  };
  if (digit >= '4' && digit <= '7') return shadow_by("h1", {kVda, kVdb});
  if ((digit >= '8' && digit <= '9') || (digit >= 'a' && digit <= 'b')) return {.vm = {std::nullopt, "h3"}};
  if (digit >= 'c' && digit <= 'd') return shadow_by("h3", {kVdb});
  if (digit >= 'e' && digit <= 'f') return {.look_up_fails = true};
  return {};
}

// The look-ups one validation made.
struct LookUps {
  std::vector<std::string> uuids;
  bool failed = false;
  bool Made(const std::string& uuid) const {
    for (const auto& made : uuids) {
      if (made == uuid) return true;
    }
    return false;
  }
};

// ---- The rules, re-derived ----

bool WellFormedUuid(std::string_view text) {
  constexpr std::string_view kShape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  if (text.size() != kShape.size()) return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool ok = kShape[i] == '-' ? text[i] == '-' : std::isxdigit(static_cast<unsigned char>(text[i])) != 0;
    if (!ok) return false;
  }
  return true;
}

// "/" followed by components, none of them empty, "." or ".."; no NUL; at most kMaxPathLength bytes.
bool AbsoluteNormalPath(std::string_view path) {
  if (path.size() < 2 || path.size() > kMaxPathLength || path[0] != '/') return false;
  if (path.find('\0') != std::string_view::npos) return false;
  for (size_t start = 1;;) {
    const size_t slash = path.find('/', start);
    const std::string_view part = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool KnownFormat(const std::string& format) { return format == "qcow2" || format == "raw"; }

bool IsRoundMode(int mode) {
  return mode == v1::ROUND_MODE_FULL || mode == v1::ROUND_MODE_INCREMENTAL || mode == v1::ROUND_MODE_RESYNC;
}

bool IsPort(std::string_view digits) {
  if (digits.empty()) return false;
  uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (value > 65535) return false;
  }
  return true;
}

// "nbd://" + AUTHORITY + "/..." where AUTHORITY is `address` or "[address]", optionally followed by ":PORT".
bool SourceOn(std::string_view uri, const std::string& address) {
  constexpr std::string_view kScheme = "nbd://";
  if (!uri.starts_with(kScheme)) return false;
  const std::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view authority = rest.substr(0, slash);
  for (const std::string& host : {address, "[" + address + "]"}) {
    if (authority == host) return true;
    if (authority.starts_with(host + ":") && IsPort(authority.substr(host.size() + 1))) return true;
  }
  return false;
}

// A VM's call from `caller` passed: a known caller is the VM's primary here (a reading call also passes when no
// primary is known); a failed look-up fails the call.
void CheckVmCaller(const PeerCaller& caller, const std::string& uuid, bool writes, const LookUps& look_ups) {
  Check(WellFormedUuid(uuid));
  if (!caller.host) return;
  Check(look_ups.Made(uuid));
  const KnownVm known = WhatThisHostKnows(uuid);
  Check(!known.look_up_fails);
  if (known.vm.primary_host.empty()) {
    Check(!writes);
  } else {
    Check(*caller.host == known.vm.primary_host);
  }
}

// Only from the host the request names.
void CheckNamedCaller(const PeerCaller& caller, const std::string& named_host) {
  Check(IsClusterHost(named_host));
  Check(!caller.host || *caller.host == named_host);
}

void CheckSwitchoverDisks(const google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) {
  Check(static_cast<size_t>(disks.size()) <= kMaxDisks);
  for (const auto& disk : disks) {
    Check(disk.target().size() <= kMaxNameLength);
    Check(AbsoluteNormalPath(disk.base_path()) && AbsoluteNormalPath(disk.top_path()));
    Check(KnownFormat(disk.format()));
  }
}

// ---- What an accepted request of each call promises ----

void Accepted(const PeerCaller& caller, const v1::GetReplicaRequest& request, const LookUps& look_ups) {
  Check(static_cast<size_t>(request.replica_paths_size()) <= kMaxDisks);
  for (const auto& path : request.replica_paths()) Check(AbsoluteNormalPath(path));
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/false, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::ApplyRoundRequest& request, const LookUps& look_ups) {
  Check(WellFormedUuid(request.vm_uuid()));
  Check(request.round().checkpoint().size() <= kMaxNameLength);
  Check(request.base_checkpoint().size() <= kMaxNameLength);
  Check(IsClusterHost(request.primary_host()));
  Check(static_cast<size_t>(request.disks_size()) <= kMaxDisks);
  // Ownership holds for every caller: the look-up was made and found a shadow placed by the sending primary.
  Check(look_ups.Made(request.vm_uuid()));
  const KnownVm known = WhatThisHostKnows(request.vm_uuid());
  Check(!known.look_up_fails && known.vm.shadow.has_value());
  Check(known.vm.shadow->primary_host == request.primary_host());
  const std::vector<std::string>& owned = known.vm.shadow->replica_paths;
  uint64_t round_bytes = 0;
  for (const auto& disk : request.disks()) {
    Check(disk.target().size() <= kMaxNameLength && disk.source_uri().size() <= kMaxNameLength &&
          disk.dirty_context().size() <= kMaxNameLength);
    Check(AbsoluteNormalPath(disk.replica_path()));
    Check(std::find(owned.begin(), owned.end(), disk.replica_path()) != owned.end());
    Check(KnownFormat(disk.format()));
    Check(SourceOn(disk.source_uri(), AddressOf(request.primary_host())));
    Check(disk.virtual_size() >= 1 && disk.virtual_size() <= replication::kMaxVirtualSize);
    round_bytes += disk.virtual_size();  // at most kMaxDisks x 2 TiB: no wrap
    Check(IsRoundMode(disk.mode()));
    const uint64_t blocks = (disk.virtual_size() + replication::kBlockSize - 1) / replication::kBlockSize;
    if (disk.mode() == v1::ROUND_MODE_RESYNC) {
      Check(static_cast<uint64_t>(disk.source_digests_size()) == blocks);
    } else {
      Check(disk.source_digests_size() == 0);
    }
    if (disk.mode() == v1::ROUND_MODE_INCREMENTAL) {
      Check(disk.dirty_context().starts_with(replication::kDirtyContextPrefix));
    }
  }
  Check(round_bytes <= replication::kMaxVirtualSize);
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::FinishRoundRequest& request, const LookUps& look_ups) {
  Check(request.checkpoint().size() <= kMaxNameLength);
  if (request.commit()) {
    Check(request.round().checkpoint() == request.checkpoint());
    Check(IsRoundMode(request.round().mode()));
  }
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::ReplicaDigestsRequest& request, const LookUps& look_ups) {
  Check(AbsoluteNormalPath(request.replica_path()));
  Check(KnownFormat(request.format()));
  Check(look_ups.Made(request.vm_uuid()));
  const KnownVm known = WhatThisHostKnows(request.vm_uuid());
  Check(!known.look_up_fails && known.vm.shadow.has_value());
  const std::vector<std::string>& owned = known.vm.shadow->replica_paths;
  Check(std::find(owned.begin(), owned.end(), request.replica_path()) != owned.end());
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::CheckSwitchoverRequest& request, const LookUps& look_ups) {
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::PrepareSwitchoverRequest& request, const LookUps& look_ups) {
  CheckSwitchoverDisks(request.disks());
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::CompleteSwitchoverRequest& request, const LookUps& look_ups) {
  CheckSwitchoverDisks(request.disks());
  Check(!request.vm_name().empty() && request.vm_name().size() <= kMaxNameLength);
  Check(request.guest_failed().size() <= kMaxNameLength);
  Check(request.source_checkpoints_size() <= 4096);
  for (const auto& checkpoint : request.source_checkpoints()) Check(checkpoint.size() <= kMaxNameLength);
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
  CheckNamedCaller(caller, request.origin_host());
}

void Accepted(const PeerCaller& caller, const v1::AbortSwitchoverRequest& request, const LookUps& look_ups) {
  CheckSwitchoverDisks(request.disks());
  CheckVmCaller(caller, request.vm_uuid(), /*writes=*/true, look_ups);
}

void Accepted(const PeerCaller& caller, const v1::PromotionQueryRequest& request, const LookUps&) {
  Check(WellFormedUuid(request.vm_uuid()));
  CheckNamedCaller(caller, request.asking_host());
}

void Accepted(const PeerCaller& caller, const v1::DiscardStaleCopyRequest& request, const LookUps&) {
  Check(WellFormedUuid(request.vm_uuid()));
  CheckNamedCaller(caller, request.asking_host());
}

void Refused(const PeerCaller& caller, const Status& status, const LookUps& look_ups) {
  switch (status.code()) {
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
      break;
    case Code::kPermissionDenied:
      Check(caller.host.has_value());  // an unauthenticated caller passes every identity comparison
      break;
    case Code::kUnavailable:
      Check(look_ups.failed);  // only the look-up's own error
      break;
    default:
      Check(false);
  }
  Check(!status.message().empty() && status.message().size() <= kMaxMessageLength);
}

// One PeerGuard method, e.g. &PeerGuard::ApplyRound.
template <typename Request>
using Validation = Status (PeerGuard::*)(const PeerCaller&, const Request&) const;

template <typename Request>
void FuzzCall(Validation<Request> validate, const PeerCaller& caller, const uint8_t* data, size_t size) {
  Request request;
  {
    const google::protobuf::LogSilencer quiet;  // a string that is not UTF-8 is refused with an ERROR line
    if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  }
  LookUps look_ups;
  const PeerGuard guard(Hosts(), [&look_ups](const std::string& uuid) -> StatusOr<VmOnThisHost> {
    Check(WellFormedUuid(uuid));  // the look-up scans this host's domains: only for a checked UUID
    look_ups.uuids.push_back(uuid);
    const KnownVm known = WhatThisHostKnows(uuid);
    if (known.look_up_fails) {
      look_ups.failed = true;
      return Unavailable("libvirtd is restarting");
    }
    return known.vm;
  });
  const Status status = (guard.*validate)(caller, request);
  if (status.ok()) {
    Accepted(caller, request, look_ups);
  } else {
    Refused(caller, status, look_ups);
  }
}

void FuzzOne(uint8_t call, uint8_t caller_byte, const uint8_t* data, size_t size) {
  const PeerCaller callers[] = {PeerCaller::Unauthenticated(), PeerCaller::Host("h1"), PeerCaller::Host("h2"),
                                PeerCaller::Host("h3")};
  const PeerCaller& caller = callers[caller_byte % 4];
  switch (call % 10) {
    case 0: return FuzzCall(&PeerGuard::GetReplica, caller, data, size);
    case 1: return FuzzCall(&PeerGuard::ApplyRound, caller, data, size);
    case 2: return FuzzCall(&PeerGuard::FinishRound, caller, data, size);
    case 3: return FuzzCall(&PeerGuard::ReplicaDigests, caller, data, size);
    case 4: return FuzzCall(&PeerGuard::CheckSwitchover, caller, data, size);
    case 5: return FuzzCall(&PeerGuard::PrepareSwitchover, caller, data, size);
    case 6: return FuzzCall(&PeerGuard::CompleteSwitchover, caller, data, size);
    case 7: return FuzzCall(&PeerGuard::AbortSwitchover, caller, data, size);
    case 8: return FuzzCall(&PeerGuard::QueryPromotion, caller, data, size);
    default: return FuzzCall(&PeerGuard::DiscardStaleCopy, caller, data, size);
  }
}

}  // namespace
}  // namespace vs::rpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  vs::rpc::FuzzOne(data[0], data[1], data + 2, size - 2);
  return 0;
}
