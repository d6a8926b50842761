// SwitchoverPeer: how a VM's current host reaches the switchover target (switchover_target.h) of the host its
// shadow lives on, and, for the failback of a promoted VM, the self-fence of its origin host (DiscardStaleCopy). Production: the ShadowPeer gRPC service (shadowd/rpc/peer_client.h); unit tests call a
// SwitchoverTarget in-process or script the answers.
//
// Thread-safety: implementations are safe for concurrent calls. Failure modes: kUnavailable or
// kDeadlineExceeded when the host cannot be reached; the target's own errors come back with their code and
// message, annotated with the call and the host.
#pragma once

#include <string>

#include "common/status.h"
#include "proto/failover.pb.h"
#include "proto/switchover.pb.h"

namespace vs::switchover {

class SwitchoverPeer {
 public:
  virtual ~SwitchoverPeer() = default;
  virtual StatusOr<virtshadow::v1::CheckSwitchoverReply> CheckSwitchover(
      const std::string& host, const virtshadow::v1::CheckSwitchoverRequest& request) = 0;
  virtual Status PrepareSwitchover(const std::string& host,
                                   const virtshadow::v1::PrepareSwitchoverRequest& request) = 0;
  virtual Status CompleteSwitchover(const std::string& host,
                                    const virtshadow::v1::CompleteSwitchoverRequest& request) = 0;
  virtual Status AbortSwitchover(const std::string& host, const virtshadow::v1::AbortSwitchoverRequest& request) = 0;
  // Whether `host` drains (and what it reports about itself). Short timeout: callers poll it.
  virtual StatusOr<virtshadow::v1::HostStateReply> HostState(const std::string& host) = 0;
  // Failback of a VM promoted here: `host`, its origin, discards the stale copy it keeps fenced
  // (failover::SelfFence::DiscardStaleCopy). kFailedPrecondition when it keeps none for this host.
  virtual StatusOr<virtshadow::v1::DiscardStaleCopyReply> DiscardStaleCopy(
      const std::string& host, const virtshadow::v1::DiscardStaleCopyRequest& request) = 0;
};

}  // namespace vs::switchover
