// ReplicaPeer: how a primary's Replicator reaches the ReplicaKeeper of a shadow host. Production: the
// ShadowPeer gRPC service over TCP (shadowd/rpc/peer_client.h); unit tests call a ReplicaKeeper
// in-process. Thread-safety: implementations must be safe for concurrent calls. Failure modes:
// kUnavailable/kDeadlineExceeded when the host cannot be reached (the round is retried later); the
// keeper's own errors come back with their code and message.
#pragma once

#include <string>

#include "common/status.h"
#include "proto/replication.pb.h"

namespace vs::replication {

class ReplicaPeer {
 public:
  virtual ~ReplicaPeer() = default;
  virtual StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const std::string& host,
                                                               const virtshadow::v1::GetReplicaRequest& request) = 0;
  virtual StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const std::string& host,
                                                               const virtshadow::v1::ApplyRoundRequest& request) = 0;
  virtual Status FinishRound(const std::string& host, const virtshadow::v1::FinishRoundRequest& request) = 0;
  virtual StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(
      const std::string& host, const virtshadow::v1::ReplicaDigestsRequest& request) = 0;
};

}  // namespace vs::replication
