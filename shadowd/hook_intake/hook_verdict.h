// The answer shadowd gives the libvirt hook, decided from the event and the VM's fence record alone (no
// controller state; the record is one store read by the caller), so that it is answered within
// milliseconds: a start ("prepare") of a tagged VM is refused when
//   - this host fenced the VM and has not released it (failover::BlocksStart: fenced, releasing, or promoted
//     elsewhere), whatever starts it (virsh, autostart, an incoming migration): the reason says why and since
//     when, and what the operator can do; or
//   - its policy is invalid and the policy asks to fail closed (hook-failure="closed", or critical="yes").
// Everything else is allowed — the VM's protection is worked out afterwards on shadowd's loop.
// Pure function; thread-safe.
#pragma once

#include <optional>

#include "proto/failover.pb.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"

namespace vs::hook_intake {

// `fence`: the VM's fence record on this host, if it has one.
virtshadow::v1::HookVerdict HookVerdictFor(const virtshadow::v1::HookEvent& event,
                                           const std::optional<virtshadow::v1::FenceRecord>& fence = std::nullopt);

}  // namespace vs::hook_intake
