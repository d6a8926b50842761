// The libvirt qemu hook's decision logic: libvirt's argv and the domain XML on stdin in, an exit code
// and at most one line for stderr out. main.cc only wires it to the process, to shadowd's socket and to the disk.
//
//   stdin --ReadDomainXml--> the XML (at most policy::kMaxDomainXmlBytes), or OversizedXml
//   libvirtd --argv, XML--> RunHook --untagged--> exit 0 (no parse, no channel, no spool)
//                              | unreadable (too large, or libxml2 fails it) and maybe tagged
//                              +--> exit 1 at `prepare begin` with the reason, else 0 with it
//                              | tagged
//                              +--HookEvent--> EventDeliverer (shadowd) --verdict--> exit 0, or 1 at prepare
//                              | unreachable / timed out
//                              +--HookEvent--> Spool (replayed by shadowd later) --> exit 0, or 1 at
//                                              `prepare begin` for a fail-closed VM
//
// Failure policy (libvirt aborts a start when the hook exits non-zero at prepare, start or started
// (killing the new QEMU at started), and a migration or restore when it does at migrate or restore;
// libvirt reports the hook's stderr as the reason. So the hook refuses only at `prepare begin`, the first
// of these, before libvirt has done anything, and only where the user asked for it or where it cannot
// tell that the user did not):
// - untagged domains (also one too large to keep: the rest of stdin is scanned for the policy
//   namespace without being kept), other operations, missing argv: exit 0; the last with one line on
//   stderr;
// - a domain XML that may be tagged (policy::MayBeTagged) but cannot be read, because it is larger
//   than policy::kMaxDomainXmlBytes or libxml2 fails it (e.g. nesting deeper than 256): its policy, so
//   whether it is critical, is unknown, and a critical VM must never start unprotected without a word:
//   exit 1 at `prepare begin` with the size, the limit and what to do; elsewhere exit 0 with one line.
//   An untagged VM is never refused for this unless its XML mentions the policy namespace, holds a
//   character reference (which could spell it), or is a Nova instance (whose policy may come from Nova's
//   API, policy::MayBeTagged): then it is impossible to tell it untagged;
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

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "common/clock.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/spool/spool.h"

namespace vs::hook {

// Hands one event to shadowd. Production: socket_deliverer.h; tests: a fake.
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

// What ReadDomainXml saw of a stdin larger than it keeps.
struct OversizedXml {
  std::uint64_t bytes_read = 0;  // more than `limit`; all of stdin unless may_be_tagged stopped the reading
  std::size_t limit = 0;         // the most the hook keeps and parses
  bool may_be_tagged = false;    // policy::MayBeTagged held somewhere in it (or a read failed): reading stopped there

  bool operator==(const OversizedXml&) const = default;
};

// All of stdin, a domain XML of at most the limit, or what was seen of a larger one.
using DomainXmlInput = std::variant<std::string, OversizedXml>;

// Reads stdin (`fd`) keeping at most `limit` + 1 bytes in memory: within the limit, all of it (on a
// read error, what came before it: RunHook then sees a malformed or an untagged XML). Beyond, it keeps
// nothing and scans the rest for what MayBeTagged looks for, stopping at the first sign, so that an
// untagged VM is still known untagged; memory stays bounded whatever libvirt sends (a 50 MB stdin
// read whole once cost 70 MB of RSS). libvirt ignores a hook that closes stdin early (EPIPE).
DomainXmlInput ReadDomainXml(int fd, std::size_t limit = policy::kMaxDomainXmlBytes);

// `args` is argv without argv[0]: object operation sub-operation extra (e.g. "vm1" "prepare"
// "begin" "-"); `domain_xml` is stdin as ReadDomainXml returned it. Time (the event's wall time) comes
// from `clock`. `fence_dir`: where shadowd keeps its fence markers (empty: none are looked at).
HookOutcome RunHook(std::span<const std::string> args, const DomainXmlInput& domain_xml, EventDeliverer& deliverer,
                    spool::Spool& spool, Clock& clock, const std::string& fence_dir = "");

}  // namespace vs::hook
