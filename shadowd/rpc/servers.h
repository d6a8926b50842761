// The two gRPC servers of shadowd, started from the composition root without it touching gRPC:
//   peer     TCP on this host's peer address: replication rounds into the replicas kept here and the target's
//            half of switchovers (PeerService; every request through `guard`, exceptions logged with `log`),
//            messages capped to what the largest disk's digest list needs, at most 32 calls at once (servers.cc);
//            with `tls`, mutual TLS (peer_tls.h), and a caller whose certificate names no host of `hosts` is
//            refused (peer_identity.h); without, plaintext and unauthenticated;
//   control  the unix socket of the hook and the CLI (ShadowService), mode 0600 in a directory of mode 0700
//            (common/private_paths.h: the directory is made private before the socket exists, so there is no
//            moment at which another user can connect): the hook and the CLI run as root.
//
// Ownership: a RunningServer owns its gRPC server and the service it serves; the service borrows the parts.
// Thread-safety: Shutdown from any thread, once. Failure modes: Unavailable naming the address when it cannot
// listen; FailedPrecondition when the socket's directory belongs to another user or the socket does not end up
// root's with mode 0600 (a socket others can reach is not served).
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
#include "shadowd/rpc/peer_guard.h"
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
                                                         failover::SelfFence* self_fence, PeerGuard guard,
                                                         const std::optional<PeerTls>& tls,
                                                         cluster::ClusterHosts hosts, Logger::Line log);

StatusOr<std::unique_ptr<RunningServer>> StartControlServer(const std::string& socket_path,
                                                            cluster::ClusterHosts hosts, Duration drain_deadline,
                                                            ShadowService::Parts parts, Logger::Line log);

}  // namespace vs::rpc
