// PromotionPeer: how a returning primary asks a VM's shadow host whether it promoted the VM (ShadowPeer.
// QueryPromotion, proto/failover.proto). The failover room owns the interface; rpc::GrpcPeerClient implements it
// over gRPC, tests fake it.
//
// Thread-safety: implementations are safe for concurrent calls. Failure modes: kUnavailable when the host cannot
// be reached, kDeadlineExceeded when it is slow, kUnimplemented when its shadowd predates the call, kNotFound for a
// host outside the configuration; all of them mean "no answer" to the caller, who keeps the VM fenced.
#pragma once

#include <string>

#include "common/status.h"
#include "proto/failover.pb.h"

namespace vs::failover {

class PromotionPeer {
 public:
  virtual ~PromotionPeer() = default;
  virtual StatusOr<virtshadow::v1::PromotionQueryReply> QueryPromotion(
      const std::string& host, const virtshadow::v1::PromotionQueryRequest& request) = 0;
};

}  // namespace vs::failover
