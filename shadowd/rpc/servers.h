// The two gRPC servers of shadowd, started from the composition root without it touching gRPC:
//   peer     TCP on this host's peer address: replication rounds into the replicas kept here and the target's
//            half of switchovers (PeerService); with `tls`, mutual TLS (peer_tls.h), and a caller whose certificate
//            names no host of `hosts` is refused (peer_identity.h); without, plaintext and unauthenticated;
//   control  the unix socket of the hook and the CLI (ShadowService), mode 0600: the hook and the CLI run as
//            root.
//
// Ownership: a RunningServer owns its gRPC server and the service it serves; the service borrows the parts.
// Thread-safety: Shutdown from any thread, once. Failure modes: Unavailable naming the address when it cannot
// listen; the socket's mode that cannot be set is an error too (a socket others can reach is not served).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/logger.h"
#include "common/status.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/failover/self_fence.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/control_service.h"
#include "shadowd/rpc/peer_tls.h"
#include "shadowd/switchover/switchover_target.h"

namespace vs::rpc {

class RunningServer {
 public:
  virtual ~RunningServer() = default;
  // Stops taking calls and waits for those in flight (a CLI call may wait on the loop: keep it running).
  virtual void Shutdown() = 0;
};

StatusOr<std::unique_ptr<RunningServer>> StartPeerServer(const std::string& address,
                                                         replication::ReplicaKeeper& keeper,
                                                         switchover::SwitchoverTarget& target,
                                                         failover::Promotions& promotions,
                                                         failover::SelfFence* self_fence,
                                                         const std::optional<PeerTls>& tls,
                                                         cluster::ClusterHosts hosts);

StatusOr<std::unique_ptr<RunningServer>> StartControlServer(const std::string& socket_path,
                                                            cluster::ClusterHosts hosts, Duration drain_deadline,
                                                            ShadowService::Parts parts, Logger::Line log);

}  // namespace vs::rpc
