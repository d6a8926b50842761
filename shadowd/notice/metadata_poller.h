// Metadata pollers: one PollOnce() asks a cloud's metadata service whether this host is about to
// go away and returns the notices it has not reported before. shadowd calls PollOnce every few
// seconds; the pollers hold no thread and never sleep.
//
//   GcePoller:   instance/preempted (TRUE -> preemption, deadline 30 s after it was first seen; TRUE
//                again after a FALSE is a new preemption)
//                and instance/maintenance-event (MIGRATE/TERMINATE_ON_HOST_MAINTENANCE -> early
//                warning, the earliest loss kGceMaintenanceNotice after first seen).
//   AwsPoller:   IMDSv2 token, then spot/instance-action and events/recommendations/rebalance
//                (404 = no event). A 401 means the token expired: one new token, one retry.
//   AzurePoller: scheduledevents (Preempt/Terminate for this VM); Approve() lets the platform
//                proceed early once shadowd has moved the VMs away.
// The formats and deadlines are in gce_metadata.h, aws_metadata.h, azure_scheduled_events.h.
//
// Each event is reported once: the poller remembers the ids it returned (the last
// RecentIds::kCapacity of them; a poller sees a handful of events in its life). A GCE
// maintenance-event that ends (back to NONE) and comes again later is a new event with a new id.
// When one of a poller's requests fails but another found a new notice, the notice is returned and
// the error dropped: a notice cannot wait, and the failing request fails again on the next poll.
//
// Ownership: a poller keeps references to the HttpClient and Clock, which must outlive it.
// Thread-safety: a poller is not thread-safe; call PollOnce from one thread (or under a lock).
// AzurePoller::Approve touches no poller state, so it may run concurrently with PollOnce when the
// HttpClient allows that (BeastHttpClient does).
// Failure modes: the HttpClient's errors (Unavailable, DeadlineExceeded, naming the URL);
// for an unexpected HTTP status, Unavailable (5xx, 429) or FailedPrecondition (others) naming the
// URL and the status; the parsers' InvalidArgument for a malformed answer. Nothing is marked as
// reported unless PollOnce returns it, so polling again after a failure loses no event.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/notice/gce_metadata.h"
#include "shadowd/notice/http_client.h"
#include "shadowd/notice/notice.h"

namespace vs::notice {

inline constexpr Duration kGcePreemptionNotice = std::chrono::seconds(30);
// GCE announces host maintenance 60 s ahead.
inline constexpr Duration kGceMaintenanceNotice = std::chrono::seconds(60);

// The ids a poller has reported, oldest forgotten first beyond kCapacity.
class RecentIds {
 public:
  static constexpr size_t kCapacity = 256;
  // True when `id` was not among the remembered ids; it is remembered from now on.
  bool Insert(const std::string& id);

 private:
  std::deque<std::string> order_;
  std::unordered_set<std::string> ids_;
};

struct MetadataEndpoint {
  std::string base_url = "http://169.254.169.254";  // tests point it at a local server
  Duration timeout = std::chrono::seconds(2);       // per request
};

class MetadataPoller {
 public:
  virtual ~MetadataPoller() = default;
  // The new notices (usually none).
  virtual StatusOr<std::vector<Notice>> PollOnce() = 0;
};

class GcePoller final : public MetadataPoller {
 public:
  GcePoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint = {});
  StatusOr<std::vector<Notice>> PollOnce() override;

 private:
  struct Maintenance {
    GceMaintenanceEvent event;
    WallTime first_seen;
  };
  StatusOr<std::string> Get(std::string_view path);
  StatusOr<std::optional<Notice>> PollPreempted(WallTime now);
  StatusOr<std::optional<Notice>> PollMaintenance(WallTime now);

  HttpClient& http_;
  Clock& clock_;
  const MetadataEndpoint endpoint_;
  std::optional<Maintenance> maintenance_;  // the maintenance event under way, if any
  // When instance/preempted was first seen TRUE in its current run of TRUEs: the flag has no event id of
  // its own, so a TRUE that comes back after a FALSE (the host was back) is a new preemption.
  std::optional<WallTime> preempted_since_;
  RecentIds reported_;
};

class AwsPoller final : public MetadataPoller {
 public:
  AwsPoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint = {});
  StatusOr<std::vector<Notice>> PollOnce() override;

 private:
  Status RefreshToken();
  // GET with the session token (fetched first if there is none); the body, or nullopt for a 404.
  StatusOr<std::optional<std::string>> GetOptional(std::string_view path);

  HttpClient& http_;
  Clock& clock_;
  const MetadataEndpoint endpoint_;
  std::string token_;  // empty until the first request
  RecentIds reported_;
};

class AzurePoller final : public MetadataPoller {
 public:
  // `vm_name`: this VM's name as Azure knows it, to ignore the events of other VMs in the same
  // availability set or scale set; empty = act on every event.
  AzurePoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint = {}, std::string vm_name = "");
  StatusOr<std::vector<Notice>> PollOnce() override;

  // Tells Azure that event `event_id` (a Notice::id from this poller) may start now.
  Status Approve(const std::string& event_id);

 private:
  HttpClient& http_;
  Clock& clock_;
  const MetadataEndpoint endpoint_;
  const std::string vm_name_;
  RecentIds reported_;
};

}  // namespace vs::notice
