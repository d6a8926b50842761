// The answer shadowd gives the libvirt hook, decided from the event alone (no controller state), so that the
// gRPC handler answers within milliseconds: a start ("prepare") of a tagged VM is refused only when its policy is
// invalid and the policy asks to fail closed (hook-failure="closed", or critical="yes"); everything else is
// allowed — the VM's protection is worked out afterwards on shadowd's loop.
// Pure function; thread-safe.
#pragma once

#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"

namespace vs::rpc {

virtshadow::v1::HookVerdict HookVerdictFor(const virtshadow::v1::HookEvent& event);

}  // namespace vs::rpc
