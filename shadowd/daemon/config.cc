#include "shadowd/daemon/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "common/host_port.h"

namespace vs::daemon {
namespace {

namespace pt = boost::property_tree;

constexpr char kHostPrefix[] = "host.";
constexpr char kPolicyPrefix[] = "policy.";

// A whole number in [min, max] (min >= 0), written as plain decimal digits. A sign is refused rather than read:
// istream's unsigned extraction takes "-4294967295" as 1 (it negates modulo 2^32), and no setting is negative.
template <typename T>
StatusOr<T> Integer(const pt::ptree& section, const std::string& where, const std::string& key, T min, T max) {
  static_assert(std::is_integral_v<T>);
  const std::string text = section.get<std::string>(key);
  const bool digits =
      !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t value = 0;  // from_chars refuses what does not fit (result_out_of_range) instead of wrapping
  if (!digits || std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc() ||
      value < static_cast<uint64_t>(min) || value > static_cast<uint64_t>(max)) {
    return InvalidArgument("[" + where + "] " + key + " = '" + text + "' is not a number in " + std::to_string(min) +
                           ".." + std::to_string(max) + " (digits only: no sign, no fraction)");
  }
  return static_cast<T>(value);
}

// A decimal number in [min, max], e.g. a cost or a share.
StatusOr<double> Real(const pt::ptree& section, const std::string& where, const std::string& key, double min,
                      double max) {
  std::string text = section.get<std::string>(key);
  std::istringstream in(text);
  double value{};
  if (!(in >> value) || !in.eof() || value < min || value > max) {
    std::ostringstream msg;
    msg << "[" << where << "] " << key << " = '" << text << "' is not a number in " << min << ".." << max;
    return InvalidArgument(msg.str());
  }
  return value;
}

Status CheckKeys(const pt::ptree& section, const std::string& where, const std::set<std::string>& allowed) {
  for (const auto& [key, value] : section) {
    if (!allowed.count(key)) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgument("[" + where + "] has an unknown key '" + key + "' (known: " + known + ")");
    }
  }
  return Status::Ok();
}

// "10.0.0.2" from "qemu+tcp://10.0.0.2/system" or "qemu+ssh://root@h2:22/system"; empty when none.
std::string UriHost(const std::string& uri) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string::npos) return "";
  std::string authority = uri.substr(scheme + 3, uri.find('/', scheme + 3) - scheme - 3);
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  StatusOr<HostPort> split = SplitHostPort(authority);
  return split.ok() ? split->host : "";
}

StatusOr<cluster::HostConfig> ParseHost(const std::string& name, const pt::ptree& section) {
  const std::string where = kHostPrefix + name;
  VS_RETURN_IF_ERROR(CheckKeys(section, where, {"zone", "uri", "address", "cost", "vcpus", "memory_mib"}));
  cluster::HostConfig host;
  host.name = name;
  host.zone = section.get<std::string>("zone", "");
  host.uri = section.get<std::string>("uri", "");
  if (host.zone.empty()) return InvalidArgument("[" + where + "] needs a zone, e.g. zone = zone-a");
  if (host.uri.empty()) return InvalidArgument("[" + where + "] needs a uri, e.g. uri = qemu+tcp://10.0.0.2/system");
  host.address = section.get<std::string>("address", UriHost(host.uri));
  if (host.address.size() > 2 && host.address.front() == '[' && host.address.back() == ']') {
    host.address = host.address.substr(1, host.address.size() - 2);  // [::1] -> ::1, bracketed where used
  }
  if (host.address.empty()) {
    return InvalidArgument("[" + where + "] uri = " + host.uri +
                           " names no host; add address = IP where its peer service listens");
  }
  if (section.count("cost")) { VS_ASSIGN_OR_RETURN(host.cost_per_hour, Real(section, where, "cost", 0, 1e9)); }
  if (section.count("vcpus")) {
    VS_ASSIGN_OR_RETURN(uint32_t vcpus, Integer<uint32_t>(section, where, "vcpus", 1, 1 << 16));
    host.vcpus_cap = vcpus;
  }
  if (section.count("memory_mib")) {
    VS_ASSIGN_OR_RETURN(uint64_t mib, Integer<uint64_t>(section, where, "memory_mib", 64, uint64_t{1} << 40));
    host.memory_mib_cap = mib;
  }
  return host;
}

// `url` is a base URL the metadata pollers can append their paths to: http://IP[:PORT][/PREFIX].
// The host must be an IP address because the HTTP client resolves no names (see beast_http_client.h).
Status CheckBaseUrl(const std::string& key, const std::string& url) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("[notice] " + key + " = '" + url + "' " + why +
                           "; expected http://IP[:PORT][/PREFIX], e.g. " + key + " = http://169.254.169.254");
  };
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return bad("is not a plain http:// URL");
  for (char c : url) {
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return bad("contains a space, control character, '?' or '#'");
  }
  const size_t path = url.find('/', kScheme.size());
  const std::string authority = url.substr(kScheme.size(), path == std::string::npos ? path : path - kScheme.size());
  StatusOr<HostPort> split = SplitHostPort(authority);
  if (!split.ok()) return bad("has " + split.status().message());
  const std::string& host = split->host;
  if (split->port && *split->port == 0) return bad("has port '0', not a number in 1..65535");
  in6_addr address;
  if (inet_pton(split->bracketed ? AF_INET6 : AF_INET, host.c_str(), &address) != 1) {
    return bad("does not name its host by IP address (host names are not resolved)");
  }
  return Status::Ok();
}

// An absolute path of at most `max_bytes` bytes, for a key that is present.
Status CheckPath(const pt::ptree& section, const std::string& where, const std::string& key, size_t max_bytes,
                 const std::string& example) {
  const std::string path = section.get<std::string>(key);
  if (path.empty() || path.front() != '/') {
    return InvalidArgument("[" + where + "] " + key + " = '" + path + "' is not an absolute path; e.g. " + key +
                           " = " + example + ", or remove the key to leave this source off");
  }
  if (path.size() > max_bytes) {
    return InvalidArgument("[" + where + "] " + key + " is " + std::to_string(path.size()) +
                           " bytes long; at most " + std::to_string(max_bytes) + " fit");
  }
  return Status::Ok();
}

Status ParseNotice(const pt::ptree& section, Config& config) {
  const std::string where = "notice";
  VS_RETURN_IF_ERROR(CheckKeys(section, where,
                               {"acpid_socket", "input_device", "power_button_deadline_seconds", "gce", "aws", "azure",
                                "azure_vm_name", "poll_seconds", "drain_deadline_seconds"}));
  notice::NoticeSourcesOptions& notice = config.notice;
  if (section.count("acpid_socket")) {
    VS_RETURN_IF_ERROR(
        CheckPath(section, where, "acpid_socket", sizeof(sockaddr_un::sun_path) - 1, "/var/run/acpid.socket"));
    notice.acpid_socket = section.get<std::string>("acpid_socket");
  }
  if (section.count("input_device")) {
    VS_RETURN_IF_ERROR(CheckPath(section, where, "input_device", 4096, "/dev/input/event0"));
    notice.input_device = section.get<std::string>("input_device");
  }
  if (section.count("power_button_deadline_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(section, where, "power_button_deadline_seconds", 1, 3600));
    notice.power_button_deadline = std::chrono::seconds(s);
  }
  for (auto [key, url] : {std::pair{"gce", &notice.gce_url}, std::pair{"aws", &notice.aws_url},
                          std::pair{"azure", &notice.azure_url}}) {
    if (!section.count(key)) continue;
    *url = section.get<std::string>(key);
    VS_RETURN_IF_ERROR(CheckBaseUrl(key, *url));
  }
  notice.azure_vm_name = section.get<std::string>("azure_vm_name", "");
  if (!notice.azure_url.empty() && notice.azure_vm_name.empty()) {
    return InvalidArgument(
        "[notice] azure is set but azure_vm_name is not; add azure_vm_name = this VM's name at Azure "
        "(Scheduled Events also lists the events of the other VMs of its scale set)");
  }
  if (notice.azure_url.empty() && section.count("azure_vm_name")) {
    return InvalidArgument("[notice] azure_vm_name is set but azure is not; add azure = http://169.254.169.254 "
                           "or remove azure_vm_name");
  }
  if (section.count("poll_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(section, where, "poll_seconds", 1, 3600));
    notice.poll_interval = std::chrono::seconds(s);
  }
  if (section.count("drain_deadline_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(section, where, "drain_deadline_seconds", 1, 86400));
    config.drain_deadline = std::chrono::seconds(s);
  }
  return Status::Ok();
}

Status ParseFailover(const pt::ptree& section, Config& config) {
  VS_RETURN_IF_ERROR(CheckKeys(section, "failover", {"fence_action"}));
  const std::string action = section.get<std::string>("fence_action", "pause");
  if (action == "pause") {
    config.fence_action = Config::FenceAction::kPause;
  } else if (action == "destroy") {
    config.fence_action = Config::FenceAction::kDestroy;
  } else {
    return InvalidArgument("[failover] fence_action = '" + action +
                           "' must be 'pause' (the default: a short cut costs a pause, not the VM) or 'destroy'");
  }
  return Status::Ok();
}

// One channel's "none" or "mutual" (TLS with a certificate at both ends, from the cluster's one CA).
StatusOr<bool> ParseTlsMode(const pt::ptree& section, const std::string& key, const std::string& example) {
  const std::string mode = section.get<std::string>(key, "none");
  if (mode == "mutual") return true;
  if (mode == "none") return false;
  return InvalidArgument("[tls] " + key + " = '" + mode + "' is not 'mutual' or 'none'; e.g. " + key +
                         " = mutual once every host has its certificates (scripts/pki.sh)" + example);
}

Status ParseTls(const pt::ptree& section, Config& config) {
  VS_RETURN_IF_ERROR(CheckKeys(section, "tls", {"peer", "nbd", "migration", "pki"}));
  VS_ASSIGN_OR_RETURN(config.peer_tls, ParseTlsMode(section, "peer", ""));
  VS_ASSIGN_OR_RETURN(config.nbd_tls,
                      ParseTlsMode(section, "nbd", " and libvirt's qemu.conf has backup_tls_x509_cert_dir's files"));
  VS_ASSIGN_OR_RETURN(config.switchover.migration_tls,
                      ParseTlsMode(section, "migration", " and libvirt's qemu.conf has migrate_tls_x509_cert_dir's files"));
  config.tls_pki = section.get<std::string>("pki", config.tls_pki);
  if (config.tls_pki.empty() || config.tls_pki.front() != '/') {
    return InvalidArgument("[tls] pki = '" + config.tls_pki +
                           "' is not an absolute path; e.g. pki = /etc/pki (libvirt's), or remove the key for that");
  }
  return Status::Ok();
}

Status ParseSwitchover(const pt::ptree& section, switchover::Settings& switchover) {
  const std::string where = "switchover";
  VS_RETURN_IF_ERROR(CheckKeys(section, where,
                               {"bandwidth_mibs", "safety_margin", "start_cost_ms", "snapshot_cost_ms",
                                "warmup_bandwidth_mibs", "precopy_hold"}));
  if (section.count("bandwidth_mibs")) {
    VS_ASSIGN_OR_RETURN(switchover.bandwidth_mibs, Real(section, where, "bandwidth_mibs", 0, 1e6));
    if (switchover.bandwidth_mibs == 0) {
      return InvalidArgument("[switchover] bandwidth_mibs = '" + section.get<std::string>("bandwidth_mibs") +
                             "' must be above 0: the expected migration bandwidth to the peers in MiB/s, e.g. "
                             "bandwidth_mibs = 100");
    }
  }
  if (section.count("safety_margin")) {
    VS_ASSIGN_OR_RETURN(switchover.safety_margin, Real(section, where, "safety_margin", 0, 1));
    if (switchover.safety_margin == 1) {
      return InvalidArgument("[switchover] safety_margin = '" + section.get<std::string>("safety_margin") +
                             "' leaves no time at all; it is the share of the time to the deadline kept spare, "
                             "in [0, 1), e.g. safety_margin = 0.2");
    }
  }
  for (auto [key, cost] : {std::pair{"start_cost_ms", &switchover.start_cost},
                           std::pair{"snapshot_cost_ms", &switchover.snapshot_cost}}) {
    if (!section.count(key)) continue;
    VS_ASSIGN_OR_RETURN(int64_t ms, Integer<int64_t>(section, where, key, 0, 600'000));
    *cost = std::chrono::milliseconds(ms);
  }
  if (section.count("warmup_bandwidth_mibs")) {
    VS_ASSIGN_OR_RETURN(switchover.warmup_bandwidth_mibs,
                        Integer<uint64_t>(section, where, "warmup_bandwidth_mibs", 1, 1'000'000));
  }
  if (section.count("precopy_hold")) {
    const std::string hold = section.get<std::string>("precopy_hold");
    if (hold != "none" && hold != "planned") {
      return InvalidArgument("[switchover] precopy_hold = '" + hold + "' must be 'none' (postcopy at once, the "
                             "default) or 'planned' (hold precopy for the plan's slack first)");
    }
    switchover.hold_planned_precopy = hold == "planned";
  }
  return Status::Ok();
}

// [policy.NAME]: every key is an attribute of the <policy> element, parsed by the very parser of the element so
// that a named policy and a tag mean the same.
Status ParseNamedPolicy(const std::string& name, const pt::ptree& section, Config& config) {
  const std::string where = kPolicyPrefix + name;
  const bool name_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
  if (!name_ok || name.empty() || name.size() > 64) {
    return InvalidArgument("[" + where + "]: a policy name has 1 to 64 letters, digits, '.', '_' or '-'; e.g. "
                           "[policy.gold]");
  }
  if (name == "default" || name == "none" || name == "off") {
    return InvalidArgument("[" + where + "]: '" + name + "' is reserved (default: the built-in policy; none, off: "
                           "not protected); give the section another name, e.g. [policy.gold]");
  }
  policy::RawPolicy raw;
  raw.element_name = std::string(policy::kPolicyElementName);
  for (const auto& [key, value] : section) {
    if (!value.empty()) {
      return InvalidArgument("[" + where + "] " + key + " has sub-keys; keys are policy attributes, e.g. vcpus = 50%");
    }
    raw.attributes.emplace_back(key, value.data());
  }
  StatusOr<policy::Policy> parsed = policy::ParsePolicyElement(raw);
  if (!parsed.ok()) {
    // ParsePolicyElement names the attribute, the value and an accepted one; say which section and key it is.
    std::string key_value;
    for (const auto& [key, value] : raw.attributes) {
      if (parsed.status().message().find("'" + key + "'") != std::string::npos) {
        key_value = " " + key + " = '" + value + "'";
        break;
      }
    }
    return InvalidArgument("[" + where + "]" + key_value + ": " + parsed.status().message() +
                           " (the keys and values of a <policy> element, docs/policy.md)");
  }
  config.policies.emplace(name, *parsed);
  return Status::Ok();
}

// Keystone's URL: http://IP[:PORT][/PREFIX] like the notice URLs (the client resolves no names).
Status CheckKeystoneUrl(const std::string& url) {
  Status checked = CheckBaseUrl("auth_url", url);
  if (checked.ok()) return checked;
  std::string message = checked.message();
  if (message.starts_with("[notice]")) message.replace(0, 8, "[nova]");
  const size_t example = message.find("e.g. auth_url = ");
  if (example != std::string::npos) message = message.substr(0, example) + "e.g. auth_url = http://10.77.0.1:5000/v3";
  return InvalidArgument(message);
}

Status ParseNova(const pt::ptree& section, Config& config) {
  const std::string where = "nova";
  VS_RETURN_IF_ERROR(CheckKeys(section, where,
                               {"auth_url", "username", "password", "password_file", "project_name",
                                "user_domain_name", "project_domain_name", "region_name", "interface",
                                "timeout_seconds", "policy_key", "image_property"}));
  nova::NovaOptions nova;
  auto required = [&](const std::string& key, const std::string& example, std::string& out) -> Status {
    out = section.get<std::string>(key, "");
    if (out.empty()) return InvalidArgument("[nova] needs " + key + ", e.g. " + key + " = " + example);
    return Status::Ok();
  };
  VS_RETURN_IF_ERROR(required("auth_url", "http://10.77.0.1:5000/v3", nova.auth_url));
  while (nova.auth_url.size() > 1 && nova.auth_url.back() == '/') nova.auth_url.pop_back();
  VS_RETURN_IF_ERROR(CheckKeystoneUrl(nova.auth_url));
  VS_RETURN_IF_ERROR(required("username", "virt-shadow", nova.username));
  VS_RETURN_IF_ERROR(required("project_name", "service", nova.project_name));
  const bool inline_password = section.count("password") != 0;
  const bool file_password = section.count("password_file") != 0;
  if (inline_password == file_password) {
    return InvalidArgument(std::string("[nova] ") + (inline_password ? "has both password and password_file; keep one"
                                                                     : "needs a password") +
                           ": password_file = /etc/virt-shadow/nova.password (a file of mode 0600 holding it, "
                           "preferred) or password = ...");
  }
  if (inline_password) {
    nova.password = section.get<std::string>("password");
    if (nova.password.empty()) {
      return InvalidArgument("[nova] password is empty; e.g. password_file = /etc/virt-shadow/nova.password");
    }
  } else {
    VS_RETURN_IF_ERROR(CheckPath(section, where, "password_file", 4096, "/etc/virt-shadow/nova.password"));
    nova.password_file = section.get<std::string>("password_file");
  }
  for (auto [key, value] : {std::pair{"user_domain_name", &nova.user_domain_name},
                            std::pair{"project_domain_name", &nova.project_domain_name},
                            std::pair{"region_name", &nova.region_name}, std::pair{"policy_key", &nova.policy_key},
                            std::pair{"image_property", &nova.image_property}}) {
    if (!section.count(key)) continue;
    *value = section.get<std::string>(key);
    if (value->empty()) {
      return InvalidArgument("[nova] " + std::string(key) + " is empty; remove the key for its default");
    }
  }
  nova.interface = section.get<std::string>("interface", nova.interface);
  if (nova.interface != "public" && nova.interface != "internal" && nova.interface != "admin") {
    return InvalidArgument("[nova] interface = '" + nova.interface +
                           "' is not public, internal or admin (which of the catalog's endpoints shadowd calls); "
                           "e.g. interface = internal, or remove the key for public");
  }
  if (section.count("timeout_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(section, where, "timeout_seconds", 1, 300));
    nova.timeout = std::chrono::seconds(s);
  }
  config.nova = std::move(nova);
  return Status::Ok();
}

}  // namespace

const cluster::HostConfig* Config::FindHost(const std::string& name) const {
  for (const auto& h : hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}


StatusOr<Config> ParseConfig(const std::string& text) {
  pt::ptree tree;
  try {
    std::istringstream in(text);
    pt::read_ini(in, tree);
  } catch (const pt::ini_parser_error& e) {
    return InvalidArgument(std::string("config: ") + e.what());
  }
  Config config;
  auto daemon = tree.get_child_optional("shadowd");
  if (!daemon) return InvalidArgument("config has no [shadowd] section; it needs at least 'host = NAME'");
  VS_RETURN_IF_ERROR(CheckKeys(*daemon, "shadowd",
                               {"host", "socket", "hook_socket", "store", "spool", "fence_dir", "libvirt",
                                "grace_seconds", "refresh_seconds", "peer_port", "nbd_port", "round_concurrency",
                                "metrics", "membership"}));
  config.this_host = daemon->get<std::string>("host", "");
  config.socket_path = daemon->get<std::string>("socket", config.socket_path);
  config.hook_socket_path = daemon->get<std::string>("hook_socket", config.hook_socket_path);
  if (config.hook_socket_path.empty() || config.hook_socket_path.front() != '/' ||
      config.hook_socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument("[shadowd] hook_socket = '" + config.hook_socket_path +
                           "' is not an absolute path of at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                           " bytes (a unix socket's); e.g. hook_socket = /run/virt-shadow/hook.sock, the default");
  }
  if (config.hook_socket_path == config.socket_path) {
    return InvalidArgument("[shadowd] hook_socket and socket are both '" + config.socket_path +
                           "'; the hook's socket and the gRPC control socket need a path each, e.g. hook_socket = "
                           "/run/virt-shadow/hook.sock");
  }
  config.store_path = daemon->get<std::string>("store", config.store_path);
  config.spool_path = daemon->get<std::string>("spool", config.spool_path);
  config.fence_dir = daemon->get<std::string>("fence_dir", config.fence_dir);
  config.local_libvirt_uri = daemon->get<std::string>("libvirt", config.local_libvirt_uri);
  if (daemon->count("grace_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(*daemon, "shadowd", "grace_seconds", 0, 30 * 86400));
    config.grace = std::chrono::seconds(s);
  }
  if (daemon->count("refresh_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Integer<int64_t>(*daemon, "shadowd", "refresh_seconds", 1, 3600));
    config.refresh = std::chrono::seconds(s);
  }
  if (daemon->count("peer_port")) {
    VS_ASSIGN_OR_RETURN(config.peer_port, Integer<int>(*daemon, "shadowd", "peer_port", 1, 65535));
  }
  if (daemon->count("nbd_port")) {
    VS_ASSIGN_OR_RETURN(config.nbd_port, Integer<int>(*daemon, "shadowd", "nbd_port", 1, 65535));
  }
  if (daemon->count("round_concurrency")) {
    VS_ASSIGN_OR_RETURN(config.round_concurrency, Integer<int>(*daemon, "shadowd", "round_concurrency", 1, 64));
  }
  if (config.nbd_port + config.round_concurrency - 1 > 65535) {
    return InvalidArgument("[shadowd] nbd_port = " + std::to_string(config.nbd_port) + " with round_concurrency = " +
                           std::to_string(config.round_concurrency) + " needs ports up to " +
                           std::to_string(config.nbd_port + config.round_concurrency - 1) +
                           ", above 65535; lower nbd_port or round_concurrency");
  }
  config.metrics_listen = daemon->get<std::string>("metrics", "");
  const std::string membership = daemon->get<std::string>("membership", "none");
  if (membership == "corosync") {
    config.membership = Config::Membership::kCorosync;
  } else if (membership != "none") {
    return InvalidArgument("[shadowd] membership = '" + membership +
                           "' is not 'corosync' or 'none'; e.g. membership = corosync where this host runs a "
                           "Corosync node of the cluster");
  }
  for (const auto& [section_name, section] : tree) {
    if (section_name == "shadowd") continue;
    if (section_name == "notice") {
      VS_RETURN_IF_ERROR(ParseNotice(section, config));
      continue;
    }
    if (section_name == "switchover") {
      VS_RETURN_IF_ERROR(ParseSwitchover(section, config.switchover));
      continue;
    }
    if (section_name == "failover") {
      VS_RETURN_IF_ERROR(ParseFailover(section, config));
      continue;
    }
    if (section_name == "tls") {
      VS_RETURN_IF_ERROR(ParseTls(section, config));
      continue;
    }
    if (section_name == "nova") {
      VS_RETURN_IF_ERROR(ParseNova(section, config));
      continue;
    }
    if (section_name.rfind(kPolicyPrefix, 0) == 0) {
      VS_RETURN_IF_ERROR(ParseNamedPolicy(section_name.substr(sizeof(kPolicyPrefix) - 1), section, config));
      continue;
    }
    if (section_name.rfind(kHostPrefix, 0) != 0 || section_name.size() == sizeof(kHostPrefix) - 1) {
      return InvalidArgument("config has an unknown section [" + section_name +
                             "]; sections are [shadowd], [host.NAME], [notice], [switchover], [failover], [tls], "
                             "[policy.NAME] and [nova]");
    }
    VS_ASSIGN_OR_RETURN(cluster::HostConfig host, ParseHost(section_name.substr(sizeof(kHostPrefix) - 1), section));
    config.hosts.push_back(std::move(host));
  }
  if (config.this_host.empty()) return InvalidArgument("[shadowd] needs 'host = NAME', this host's name");
  if (config.FindHost(config.this_host) == nullptr) {
    return InvalidArgument("[shadowd] host = " + config.this_host + " but there is no [host." + config.this_host +
                           "] section describing it");
  }
  return config;
}

StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config " + path + "; pass --config PATH");
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseConfig(text.str());
  if (!config.ok()) return config.status().Annotate(path);
  if (config->nova && !config->nova->password_file.empty()) {
    StatusOr<std::string> password = ReadSecretFile(config->nova->password_file, "[nova] password_file");
    if (!password.ok()) return password.status().Annotate(path);
    config->nova->password = *std::move(password);
  }
  return config;
}

StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  // The mode is checked on the descriptor read from, so that the file judged is the file read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(what + " = " + path + ": cannot be read; create it holding the password (chmod 600)");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return FailedPrecondition(what + " = " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return FailedPrecondition(what + " = " + path + " has mode " + mode +
                              ": a password must not be readable by group or others; chmod 600 " + path);
  }
  std::string text;
  char buffer[4096];
  for (ssize_t n; text.size() <= 65536 && (n = ::read(fd, buffer, sizeof(buffer))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailedPrecondition(what + " = " + path + ": read failed: " + std::strerror(errno));
    text.append(buffer, static_cast<size_t>(n));
  }
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return InvalidArgument(what + " = " + path + " is empty; its first line is the password");
  return line;
}

std::string DescribeConfig(const Config& config) {
  std::string hosts;
  for (const cluster::HostConfig& host : config.hosts) {
    hosts += (hosts.empty() ? "" : ", ") + host.name + " (" + host.zone + ", " + host.uri + ")";
  }
  std::vector<std::string> notices;
  if (!config.notice.acpid_socket.empty()) notices.push_back("acpid " + config.notice.acpid_socket);
  if (!config.notice.input_device.empty()) notices.push_back("power button " + config.notice.input_device);
  if (!config.notice.gce_url.empty()) notices.push_back("GCE " + config.notice.gce_url);
  if (!config.notice.aws_url.empty()) notices.push_back("AWS " + config.notice.aws_url);
  if (!config.notice.azure_url.empty()) notices.push_back("Azure " + config.notice.azure_url);
  std::string notice_list;
  for (const std::string& notice : notices) notice_list += (notice_list.empty() ? "" : ", ") + notice;
  const bool corosync = config.membership == Config::Membership::kCorosync;
  std::string policies;
  for (const auto& [name, policy] : config.policies) {
    policies += "policy " + name + ": " + policy::RenderPolicy(policy) + "\n";
  }
  std::string nova = "off";
  if (config.nova) {
    nova = config.nova->auth_url + " as " + config.nova->username + " (project " + config.nova->project_name +
           ", " + config.nova->interface + " endpoints" +
           (config.nova->region_name.empty() ? "" : ", region " + config.nova->region_name) + "), policy from " +
           config.nova->policy_key + " and image property " + config.nova->image_property;
  }
  return "this host: " + config.this_host + "\n" +
         "cluster: " + std::to_string(config.hosts.size()) + " host(s): " + hosts + "\n" +
         "peer port " + std::to_string(config.peer_port) + ", NBD ports " + std::to_string(config.nbd_port) + "-" +
         std::to_string(config.nbd_port + config.round_concurrency - 1) + " (" +
         std::to_string(config.round_concurrency) + " rounds at once)" + ", control socket " + config.socket_path +
         ", hook socket " + config.hook_socket_path + ", store " + config.store_path + "\n" +
         "membership: " + (corosync ? std::string("corosync, fence action ") +
                                          (config.fence_action == Config::FenceAction::kPause ? "pause" : "destroy")
                                    : std::string("none (no crash promotion, no self-fencing)")) + "\n" +
         "metrics: " + (config.metrics_listen.empty() ? "off" : config.metrics_listen) + "\n" +
         "notice sources: " + (notice_list.empty() ? "none" : notice_list) + "\n" +
         "TLS: peer service " + (config.peer_tls ? "mutual" : "none") + ", NBD exports " +
         (config.nbd_tls ? "mutual" : "none") + ", migrations " + (config.switchover.migration_tls ? "mutual" : "none") +
         (config.peer_tls || config.nbd_tls ? ", PKI " + config.tls_pki : std::string()) + "\n" + policies +
         "nova: " + nova + "\n";
}

}  // namespace vs::daemon
