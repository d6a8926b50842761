// NovaOptions: how shadowd reaches an OpenStack cloud (Keystone, then Nova, Glance and Placement from its
// catalog) and which keys name a virt-shadow policy there. Set by [nova] in shadowd.conf
// (shadowd/daemon/config.h); a plain value with no dependency, so that the configuration parser need not
// link the OpenStack client.
// Ownership: plain value. Thread-safety: a value; copy freely.
#pragma once

#include <chrono>
#include <string>

namespace vs::nova {

struct NovaOptions {
  // Keystone v3, e.g. "http://10.77.0.1:5000/v3"; POST {auth_url}/auth/tokens. Its host is an IP address:
  // the HTTP client resolves no names (shadowd/notice/beast_http_client.h). So must the catalog's endpoints.
  // Plain HTTP only (that client has no TLS): the password and the tokens cross the network in clear, so
  // Keystone and the endpoints shadowd uses must be on a trusted management network (or a local TLS proxy).
  std::string auth_url;
  std::string username;
  // The password itself: [nova] password, or the content of [nova] password_file (first line) read by
  // LoadConfig. Never printed.
  std::string password;
  std::string password_file;  // where it came from; empty when given inline
  std::string project_name;
  std::string user_domain_name = "Default";
  std::string project_domain_name = "Default";
  std::string region_name;             // empty: the catalog's endpoints of any region (the first one)
  std::string interface = "public";    // public, internal or admin: which catalog endpoints are used
  std::chrono::seconds timeout{10};    // per HTTP call: connect + send + receive
  // The key of a flavor extra spec and of the server's metadata that names a policy ([policy.NAME],
  // "default" or "none"), and the image property with the same role.
  std::string policy_key = "virt_shadow:policy";
  std::string image_property = "virt_shadow_policy";
};

}  // namespace vs::nova
