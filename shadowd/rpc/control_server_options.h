// The options of shadowd's control socket (the hook and the CLI), set by StartControlServer. Header-only
// so that the hook's process tests serve their fake shadowd with exactly these, and so test the limits
// the hook meets in production.
//
// Thread-safety: configures a builder not yet shared. Failure modes: none.
#pragma once

#include <grpcpp/server_builder.h>

#include "shadowd/policy/domain_xml.h"

namespace vs::rpc {

inline void ConfigureControlServer(grpc::ServerBuilder& builder) {
  // A hook event carries the whole domain XML: gRPC's 4 MiB default turned larger tagged ones away.
  builder.SetMaxReceiveMessageSize(static_cast<int>(policy::kMaxHookEventBytes));
}

}  // namespace vs::rpc
