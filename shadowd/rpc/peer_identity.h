// Who calls the peer service: with mutual TLS ([tls] peer = mutual), the host of the cluster that the client's
// certificate names (it was verified against the cluster's CA in the handshake: peer_tls.h); with TLS off, nobody
// in particular ("unauthenticated"). What a caller may do is decided by the service's handlers from the PeerCaller.
//
// The names a certificate gives are its subject alternative names of type dNSName and its subject's CN (what
// scripts/pki.sh writes: the host's cluster name in both). Exactly one host of the cluster must be among them: a
// certificate naming none (issued for another host or purpose by the same CA) or several (it could act as either)
// is refused.
//
// Thread-safety: values and a pure function; safe from any gRPC thread. Failure modes: CallerOf fails
// PermissionDenied naming the certificate's names and the cluster's hosts.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "shadowd/cluster/cluster_hosts.h"

namespace grpc {
class ServerContext;
}  // namespace grpc

namespace vs::rpc {

struct PeerCaller {
  // The cluster host whose certificate the caller presented; nullopt: unauthenticated (TLS off).
  std::optional<std::string> host;

  static PeerCaller Unauthenticated() { return {}; }
  static PeerCaller Host(std::string name) { return {std::move(name)}; }
  // "host h2", or "an unauthenticated caller (TLS off)": for messages.
  std::string Describe() const;
};

// How the peer service knows its callers.
struct PeerAuthentication {
  bool mutual_tls = false;      // false: every caller is unauthenticated
  cluster::ClusterHosts hosts;  // the hosts a certificate may name
};

StatusOr<PeerCaller> CallerOf(const grpc::ServerContext& context, const PeerAuthentication& authentication);

}  // namespace vs::rpc
