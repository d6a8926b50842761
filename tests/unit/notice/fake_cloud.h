// Test stand-ins for where preemption notices come from, shared by the notice unit tests and the lab
// tests (library vs_fake_cloud):
//
// FakeCloud: an HTTP/1.1 server (Boost.Beast, its own thread) speaking the GCE metadata server, AWS
// IMDSv2 and Azure Scheduled Events formats that shadowd's pollers read, for several hosts at once:
// host H is served under the path prefix "/H", so its base URL is BaseUrl(H) =
// "http://ADDRESS:PORT/H" and GCE's preempted flag is at "/H/computeMetadata/v1/instance/preempted".
// Like the real services, it rejects what they reject:
//   GCE:   403 without "Metadata-Flavor: Google" or with X-Forwarded-For; every answer carries
//          "Metadata-Flavor: Google"; preempted is TRUE/FALSE, maintenance-event the text set.
//   AWS:   IMDSv2 only: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds in
//          1..21600 (400 otherwise, 403 with X-Forwarded-For); a GET without a token it issued to
//          that host gets 401; spot/instance-action and events/recommendations/rebalance are 404
//          until set.
//   Azure: 400 without "Metadata: true", with X-Forwarded-For, or without a supported api-version;
//          GET lists the host's events, POST {"StartRequests":[{"EventId":...}]} approves them (the
//          event becomes Started with an empty NotBefore, as Azure does; 400 for an unknown id).
// Unknown paths get 404, other methods 405. Events are served for any host name; a host nobody set
// anything for has none. Tokens live as long as the server (no expiry).
//
// FakeAcpid: acpid's unix socket at a path: accepts any number of clients and writes acpid's
// power-button line to each of them on PressPowerButton().
//
// Ownership: each owns its listening socket and thread; the destructor stops and joins (and
// FakeAcpid removes its socket file). Thread-safety: every public method may be called from any
// thread while the server runs. Failure modes: Start returns Unavailable naming the address or path
// when it cannot listen there (in use, no such address or directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs::notice::test_support {

class FakeCloud {
 public:
  // Listens on `address`:`port` (0 = any free port, see port()).
  static StatusOr<std::unique_ptr<FakeCloud>> Start(const std::string& address, uint16_t port);
  ~FakeCloud();
  FakeCloud(const FakeCloud&) = delete;
  FakeCloud& operator=(const FakeCloud&) = delete;

  uint16_t port() const;
  // "http://ADDRESS:PORT/HOST": the base URL of every cloud for `host`.
  std::string BaseUrl(const std::string& host) const;

  // GCE instance/preempted: TRUE or FALSE (the default).
  void SetGcePreempted(const std::string& host, bool preempted);
  // GCE instance/maintenance-event, served as given: "NONE" (the default),
  // "MIGRATE_ON_HOST_MAINTENANCE", "TERMINATE_ON_HOST_MAINTENANCE" or anything a test wants to try.
  void SetGceMaintenance(const std::string& host, const std::string& event);
  // AWS spot/instance-action: {"action": action, "time": at as RFC 3339}. `action` as given:
  // "terminate", "stop", "hibernate" (or anything a test wants to try).
  void SetAwsInstanceAction(const std::string& host, const std::string& action, WallTime at);
  // AWS events/recommendations/rebalance: {"noticeTime": at as RFC 3339}.
  void SetAwsRebalance(const std::string& host, WallTime at);
  // An Azure event of `type` ("Preempt", "Terminate", "Reboot", ...) for VM `vm_name`, Scheduled,
  // NotBefore `not_before` (RFC 1123). Returns its EventId (GUID-shaped, unique in this server).
  std::string AddAzureEvent(const std::string& host, const std::string& type, const std::string& vm_name,
                            WallTime not_before);
  // The EventIds approved through POST for `host`, in the order of the POSTs (an id approved twice
  // is listed twice).
  std::vector<std::string> ApprovedAzureEvents(const std::string& host) const;
  // Forgets `host`'s events and approvals (GCE back to FALSE/NONE). Keeps its AWS tokens, as the
  // instance's sessions outlive events, and its request count.
  void ClearAll(const std::string& host);
  // Requests received under `host`'s prefix, answered or rejected.
  uint64_t RequestCount(const std::string& host) const;

 private:
  class Impl;
  explicit FakeCloud(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class FakeAcpid {
 public:
  // acpid's line for a press of the ACPI power button, newline included.
  static constexpr const char* kPowerButtonLine = "button/power PBTN 00000080 00000000\n";

  // Listens at `socket_path`, replacing a stale socket file left there (not any other file).
  static StatusOr<std::unique_ptr<FakeAcpid>> Start(const std::string& socket_path);
  ~FakeAcpid();
  FakeAcpid(const FakeAcpid&) = delete;
  FakeAcpid& operator=(const FakeAcpid&) = delete;

  // Writes kPowerButtonLine to every connected client; returns how many it reached.
  size_t PressPowerButton();
  // Writes `raw` as it is to every client (other events, malformed lines); returns how many it reached.
  size_t Send(const std::string& raw);
  // Clients connected now (those that hung up are forgotten as soon as the server notices).
  size_t ConnectedClients() const;

 private:
  class Impl;
  explicit FakeAcpid(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vs::notice::test_support
