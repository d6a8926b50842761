#include "shadowd/virt/libvirtd_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace vs::virt {

std::optional<std::pair<std::string, std::string>> TcpEndpointOf(const std::string& uri) {
  // libvirtd's default ports: 16509 for TCP, 16514 for TLS.
  std::string port;
  size_t start = std::string::npos;
  for (const auto& [scheme_end, default_port] : {std::pair{"+tcp://", "16509"}, std::pair{"+tls://", "16514"}}) {
    if (const size_t at = uri.find(scheme_end); at != std::string::npos) {
      start = at + std::string_view(scheme_end).size();
      port = default_port;
      break;
    }
  }
  if (start == std::string::npos) return std::nullopt;
  const size_t end = uri.find_first_of("/?", start);
  std::string authority = uri.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const size_t user = authority.rfind('@'); user != std::string::npos) authority = authority.substr(user + 1);
  if (const size_t colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
    port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return std::nullopt;
  return std::make_pair(authority, port);
}

namespace {

Status TcpAnswers(const std::string& host, const std::string& port, Duration timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Unavailable("cannot resolve " + host);
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return Unavailable(std::string("socket: ") + std::strerror(errno));
  }
  int rc = connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    rc = poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    int error = 0;
    socklen_t len = sizeof(error);
    if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0) rc = 0;
    else rc = -1;
  }
  close(fd);
  if (rc != 0) return Unavailable("libvirtd at " + host + ":" + port + " does not answer");
  return Status::Ok();
}

}  // namespace

Status LibvirtdAnswers(const std::string& uri, Duration timeout) {
  if (auto endpoint = TcpEndpointOf(uri)) return TcpAnswers(endpoint->first, endpoint->second, timeout);
  return Status::Ok();
}

}  // namespace vs::virt
