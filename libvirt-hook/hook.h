// The libvirt qemu hook's decision logic: libvirt's argv and the domain XML on stdin in, an exit code
// and at most one line for stderr out. main.cc only wires it to the process, to gRPC and to the disk.
//
//   libvirtd --argv, XML--> RunHook --untagged--> exit 0 (no parse, no channel, no spool)
//                              | tagged
//                              +--HookEvent--> EventDeliverer (shadowd) --verdict--> exit 0, or 1 at prepare
//                              | unreachable / timed out
//                              +--HookEvent--> Spool (replayed by shadowd later) --> exit 0, or 1 at
//                                              `prepare begin` for a fail-closed VM
//
// Failure policy (libvirt aborts a start when the hook exits non-zero at prepare, and a migration or
// restore when it does at migrate or restore, so the hook refuses only where the user asked it to):
// - untagged domains, other operations, missing argv, unreadable XML: exit 0 (fail-open: without a
//   parse the policy cannot be known); the last two with one line on stderr;
// - shadowd answers allow=false at `prepare begin`: exit 1 with its reason;
// - shadowd unreachable at `prepare begin` of a VM with a fence marker in `fence_dir` (this host fenced it
//   and has not released it; shadowd/failover/fence_marker.h): exit 1 with the marker's reason, whatever the
//   policy says (a booting host's autostart runs before shadowd);
// - shadowd unreachable: the event is spooled (or dropped, if the spool refuses it: full disk, bound
//   reached), then exit 1 only at `prepare begin` when the policy's hook failure mode is closed
//   (hook-failure="closed", or critical="yes" without hook-failure; read best-effort from an invalid
//   policy too), else 0. A valid policy with enabled="no" protects nothing, so it never refuses.
// The hook writes nothing on stdout, ever: at migrate and restore libvirt would take it as the new
// domain XML. RunHook has no stdout channel at all.
//
// Ownership: RunHook borrows everything it is given. Thread-safety: RunHook keeps no state; its
// thread-safety is that of the deliverer and spool. Failure modes: none escape; every problem ends in
// the exit code and the stderr line.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"
#include "shadowd/spool/spool.h"

namespace vs::hook {

// Hands one event to shadowd. Production: grpc_deliverer.h; tests: a fake.
class EventDeliverer {
 public:
  virtual ~EventDeliverer() = default;
  // shadowd's verdict, or why there is none: Unavailable (no socket, refused), DeadlineExceeded
  // (hung or slow), or another code if shadowd failed the call. Any error means "not delivered".
  virtual StatusOr<virtshadow::v1::HookVerdict> Deliver(const virtshadow::v1::HookEvent& event) = 0;
};

struct HookOutcome {
  int exit_code = 0;
  std::string stderr_line;  // empty, or one line ending in '\n'

  bool operator==(const HookOutcome&) const = default;
};

// `args` is argv without argv[0]: object operation sub-operation extra (e.g. "vm1" "prepare"
// "begin" "-"); `domain_xml` is all of stdin. Time (the event's wall time) comes from `clock`. `fence_dir`: where
// shadowd keeps its fence markers (empty: none are looked at).
HookOutcome RunHook(std::span<const std::string> args, std::string_view domain_xml, EventDeliverer& deliverer,
                    spool::Spool& spool, Clock& clock, const std::string& fence_dir = "");

}  // namespace vs::hook
