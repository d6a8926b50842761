// Mutual TLS between the hosts' peer services: this host's part of the cluster's one PKI (scripts/pki.sh), in
// libvirt's layout under a root (/etc/pki by default), read once at start-up, and the gRPC credentials made from it.
// The peer service presents the host's server certificate and accepts only clients with a certificate of the
// cluster's CA (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY; who the client is: peer_identity.h);
// the peer client presents the host's client certificate and accepts only a server whose certificate names the host
// it meant to reach (by its cluster name, GrpcPeerClient).
//
// The files are read at start-up only: a renewed certificate takes effect when shadowd restarts.
//
// Thread-safety: PeerTls is a value; the functions are pure. Failure modes: LoadPeerTls fails naming the file that
// is missing, unreadable or not PEM of the expected kind, and how to make it.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
}  // namespace grpc

namespace vs::rpc {

// PEM texts.
struct PeerTls {
  std::string ca_cert;      // the cluster's CA: the only one whose certificates either side accepts
  std::string server_cert;  // this host's server certificate and key: the peer service presents them
  std::string server_key;
  std::string client_cert;  // this host's client certificate and key: its peer client presents them
  std::string client_key;
};

// Reads `pki_root`/CA/cacert.pem, libvirt/servercert.pem, libvirt/private/serverkey.pem, libvirt/clientcert.pem and
// libvirt/private/clientkey.pem (what `scripts/pki.sh host` installs; libvirtd uses the same files).
StatusOr<PeerTls> LoadPeerTls(const std::string& pki_root);

std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const PeerTls& tls);
// Verifies the server's certificate against the CA and the name gRPC checks it for (the channel's
// GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, else the target's address).
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const PeerTls& tls);

}  // namespace vs::rpc
