#include "shadowd/failover/libvirt_promotion_host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shadowd/cluster/domain_scan.h"
#include "shadowd/policy/domain_xml.h"

#include <optional>
#include <utility>

namespace vs::failover {

StatusOr<std::vector<controller::PeerShadow>> LibvirtPromotionHost::LocalShadows() {
  VS_ASSIGN_OR_RETURN(std::vector<cluster::ScannedDomain> domains, cluster::ScanDomains(local_, this_host_));
  std::vector<controller::PeerShadow> shadows;
  for (cluster::ScannedDomain& domain : domains) {
    if (domain.shadow) shadows.push_back(std::move(*domain.shadow));
  }
  return shadows;
}

StatusOr<PromotedVmState> LibvirtPromotionHost::VmState(const std::string& name) {
  StatusOr<virt::DomainState> state = local_.GetDomainState(name);
  if (!state.ok()) {
    if (state.status().code() == Code::kNotFound) return PromotedVmState{};
    return state.status();
  }
  const bool stopped = *state == virt::DomainState::kShutoff || *state == virt::DomainState::kShutdown ||
                       *state == virt::DomainState::kCrashed || *state == virt::DomainState::kNoState;
  return PromotedVmState{.defined = true, .running = !stopped};
}

StatusOr<VmSize> LibvirtPromotionHost::LiveSize(const std::string& name) {
  VS_ASSIGN_OR_RETURN(std::string xml, local_.GetDomainXml(name));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  return VmSize{.vcpus = facts.current_vcpus, .memory_kib = facts.current_memory_kib};
}

StatusOr<VmSize> LibvirtPromotionHost::FreeBesides(const std::string& name) {
  VS_ASSIGN_OR_RETURN(virt::NodeCapacity node, local_.GetNodeCapacity());
  VS_ASSIGN_OR_RETURN(VmSize own, LiveSize(name));  // also: the VM must run here
  VS_ASSIGN_OR_RETURN(std::vector<controller::PeerShadow> shadows, LocalShadows());
  // The running domains include the VM itself: what is left is what it may grow into.
  (void)own;
  int64_t vcpus = int64_t{node.cpus} - node.running_vcpus;
  int64_t memory_kib = static_cast<int64_t>(node.memory_kib) - static_cast<int64_t>(node.running_memory_kib);
  for (const controller::PeerShadow& shadow : shadows) {
    vcpus -= shadow.size.vcpus;
    memory_kib -= static_cast<int64_t>(shadow.size.memory_kib);
  }
  return VmSize{.vcpus = static_cast<std::uint32_t>(std::max<int64_t>(vcpus, 0)),
                .memory_kib = static_cast<std::uint64_t>(std::max<int64_t>(memory_kib, 0))};
}

namespace {

// "qemu+tcp://10.77.0.11/system" -> {"10.77.0.11", 16509}; nullopt for other transports.
std::optional<std::pair<std::string, std::string>> TcpEndpointOf(const std::string& uri) {
  const std::string scheme_end = "+tcp://";
  const size_t at = uri.find(scheme_end);
  if (at == std::string::npos) return std::nullopt;
  const size_t start = at + scheme_end.size();
  const size_t end = uri.find('/', start);
  std::string authority = uri.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const size_t user = authority.rfind('@'); user != std::string::npos) authority = authority.substr(user + 1);
  std::string port = "16509";
  if (const size_t colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
    port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return std::nullopt;
  return std::make_pair(authority, port);
}

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

StatusOr<bool> DestroyOnPrimary(virt::LibvirtRuntime& runtime, Clock& clock, const std::string& uri,
                                const std::string& vm_name, Duration connect_timeout) {
  if (auto endpoint = TcpEndpointOf(uri)) {
    VS_RETURN_IF_ERROR(TcpAnswers(endpoint->first, endpoint->second, connect_timeout));
  }
  VS_ASSIGN_OR_RETURN(std::unique_ptr<virt::Hypervisor> primary, runtime.Connect(uri, clock));
  VS_RETURN_IF_ERROR(primary->DestroyDomain(vm_name));  // OK when it does not run or is not defined
  StatusOr<virt::DomainState> state = primary->GetDomainState(vm_name);
  if (!state.ok()) {
    if (state.status().code() == Code::kNotFound) return true;
    return state.status();
  }
  return *state == virt::DomainState::kShutoff || *state == virt::DomainState::kShutdown ||
         *state == virt::DomainState::kCrashed;
}

}  // namespace vs::failover
