#include "shadowd/rpc/peer_tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vs::rpc {

namespace {

// The file's text, when it holds a PEM block of `kind` ("CERTIFICATE", or "PRIVATE KEY", which also matches
// "EC PRIVATE KEY" and "RSA PRIVATE KEY").
StatusOr<std::string> ReadPem(const std::string& path, const std::string& kind) {
  const std::string remedy = "; make this host's certificates with scripts/pki.sh host CA_DIR / NAME ADDRESS, or set "
                             "[tls] pki to the root of the PKI";
  std::ifstream in(path);
  if (!in) {
    const int error = errno;
    const std::string why = std::strerror(error);
    if (error == ENOENT) return NotFound("TLS for the peer service: " + path + " does not exist" + remedy);
    return PermissionDenied("TLS for the peer service: cannot read " + path + ": " + why + "; shadowd runs as root");
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find(kind + "-----") == std::string::npos || text.str().find("-----BEGIN") == std::string::npos) {
    return InvalidArgument("TLS for the peer service: " + path + " holds no PEM " + kind + remedy);
  }
  return text.str();
}

}  // namespace

StatusOr<PeerTls> LoadPeerTls(const std::string& pki_root) {
  PeerTls tls;
  VS_ASSIGN_OR_RETURN(tls.ca_cert, ReadPem(pki_root + "/CA/cacert.pem", "CERTIFICATE"));
  VS_ASSIGN_OR_RETURN(tls.server_cert, ReadPem(pki_root + "/libvirt/servercert.pem", "CERTIFICATE"));
  VS_ASSIGN_OR_RETURN(tls.server_key, ReadPem(pki_root + "/libvirt/private/serverkey.pem", "PRIVATE KEY"));
  VS_ASSIGN_OR_RETURN(tls.client_cert, ReadPem(pki_root + "/libvirt/clientcert.pem", "CERTIFICATE"));
  VS_ASSIGN_OR_RETURN(tls.client_key, ReadPem(pki_root + "/libvirt/private/clientkey.pem", "PRIVATE KEY"));
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const PeerTls& tls) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.ca_cert;
  options.pem_key_cert_pairs.push_back({tls.server_key, tls.server_cert});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const PeerTls& tls) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_cert;
  options.pem_private_key = tls.client_key;
  options.pem_cert_chain = tls.client_cert;
  return grpc::SslCredentials(options);
}

}  // namespace vs::rpc
