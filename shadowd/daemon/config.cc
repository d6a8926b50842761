#include "shadowd/daemon/config.h"

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <fstream>
#include <set>
#include <sstream>

namespace vs::daemon {
namespace {

namespace pt = boost::property_tree;

constexpr char kHostPrefix[] = "host.";

template <typename T>
StatusOr<T> Number(const pt::ptree& section, const std::string& where, const std::string& key, T min, T max) {
  std::string text = section.get<std::string>(key);
  std::istringstream in(text);
  T value{};
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
  if (!authority.empty() && authority.front() == '[') return authority.substr(1, authority.find(']') - 1);
  return authority.substr(0, authority.find(':'));
}

StatusOr<HostConfig> ParseHost(const std::string& name, const pt::ptree& section) {
  const std::string where = kHostPrefix + name;
  VS_RETURN_IF_ERROR(CheckKeys(section, where, {"zone", "uri", "address", "cost", "vcpus", "memory_mib"}));
  HostConfig host;
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
  if (section.count("cost")) { VS_ASSIGN_OR_RETURN(host.cost_per_hour, Number<double>(section, where, "cost", 0, 1e9)); }
  if (section.count("vcpus")) {
    VS_ASSIGN_OR_RETURN(uint32_t vcpus, Number<uint32_t>(section, where, "vcpus", 1, 1 << 16));
    host.vcpus_cap = vcpus;
  }
  if (section.count("memory_mib")) {
    VS_ASSIGN_OR_RETURN(uint64_t mib, Number<uint64_t>(section, where, "memory_mib", 64, uint64_t{1} << 40));
    host.memory_mib_cap = mib;
  }
  return host;
}

}  // namespace

const HostConfig* Config::FindHost(const std::string& name) const {
  for (const auto& h : hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

std::string Config::PeerTarget(const HostConfig& host) const {
  const bool ipv6 = host.address.find(':') != std::string::npos;
  return (ipv6 ? "[" + host.address + "]" : host.address) + ":" + std::to_string(peer_port);
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
                               {"host", "socket", "store", "spool", "libvirt", "grace_seconds", "refresh_seconds",
                                "peer_port", "nbd_port", "metrics"}));
  config.this_host = daemon->get<std::string>("host", "");
  config.socket_path = daemon->get<std::string>("socket", config.socket_path);
  config.store_path = daemon->get<std::string>("store", config.store_path);
  config.spool_path = daemon->get<std::string>("spool", config.spool_path);
  config.local_libvirt_uri = daemon->get<std::string>("libvirt", config.local_libvirt_uri);
  if (daemon->count("grace_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Number<int64_t>(*daemon, "shadowd", "grace_seconds", 0, 30 * 86400));
    config.grace = std::chrono::seconds(s);
  }
  if (daemon->count("refresh_seconds")) {
    VS_ASSIGN_OR_RETURN(int64_t s, Number<int64_t>(*daemon, "shadowd", "refresh_seconds", 1, 3600));
    config.refresh = std::chrono::seconds(s);
  }
  if (daemon->count("peer_port")) {
    VS_ASSIGN_OR_RETURN(config.peer_port, Number<int>(*daemon, "shadowd", "peer_port", 1, 65535));
  }
  if (daemon->count("nbd_port")) {
    VS_ASSIGN_OR_RETURN(config.nbd_port, Number<int>(*daemon, "shadowd", "nbd_port", 1, 65535));
  }
  config.metrics_listen = daemon->get<std::string>("metrics", "");
  for (const auto& [section_name, section] : tree) {
    if (section_name == "shadowd") continue;
    if (section_name.rfind(kHostPrefix, 0) != 0 || section_name.size() == sizeof(kHostPrefix) - 1) {
      return InvalidArgument("config has an unknown section [" + section_name +
                             "]; sections are [shadowd] and [host.NAME]");
    }
    VS_ASSIGN_OR_RETURN(HostConfig host, ParseHost(section_name.substr(sizeof(kHostPrefix) - 1), section));
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
  return config;
}

}  // namespace vs::daemon
