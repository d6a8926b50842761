// The one translation between vs::Status and grpc::Status, used by every gRPC server and client of
// virt-shadow (the CLI's and the hook's calls to shadowd, and shadowd's calls to its peers), so that a
// code survives the round trip. Pure functions; thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace vs {

grpc::Status ToGrpcStatus(const Status& status);
// UNIMPLEMENTED (an older peer) becomes FailedPrecondition asking for an update.
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace vs
