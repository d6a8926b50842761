#include "shadowd/rpc/peer_identity.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <set>
#include <vector>

namespace vs::rpc {

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

}  // namespace

std::string PeerCaller::Describe() const {
  return host ? "host " + *host : "an unauthenticated caller (TLS off)";
}

StatusOr<PeerCaller> CallerOf(const grpc::ServerContext& context, const PeerAuthentication& authentication) {
  if (!authentication.mutual_tls) return PeerCaller{};
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // The server requires a verified client certificate, so this is a defence should that ever change.
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return PermissionDenied("the peer service takes only callers with a client certificate of the cluster's CA "
                            "([tls] peer = mutual), and " + context.peer() + " presented none");
  }
  std::vector<std::string> names;  // as the certificate gives them, for the message
  std::set<std::string> hosts;     // those that are hosts of the cluster
  for (const char* property : {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    const std::string kind = property == std::string(GRPC_PEER_DNS_PROPERTY_NAME) ? "DNS:" : "CN:";
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      const std::string name(value.data(), value.size());
      names.push_back(kind + name);
      if (authentication.hosts.Find(name) != nullptr) hosts.insert(name);
    }
  }
  if (hosts.size() == 1) return PeerCaller{*hosts.begin()};
  std::vector<std::string> cluster;
  for (const cluster::HostConfig& host : authentication.hosts.hosts) cluster.push_back(host.name);
  if (hosts.empty()) {
    return PermissionDenied("the peer service refuses " + context.peer() + ": its certificate names " +
                            (names.empty() ? "nothing" : Join(names)) + ", no host of the cluster (" + Join(cluster) +
                            "); give each host a certificate naming it: scripts/pki.sh host CA_DIR ROOT NAME ADDRESS");
  }
  return PermissionDenied("the peer service refuses " + context.peer() + ": its certificate names " + Join(names) +
                          ", several hosts of the cluster (" + Join({hosts.begin(), hosts.end()}) +
                          "), so it could act as any of them; give each host a certificate naming only itself");
}

}  // namespace vs::rpc
