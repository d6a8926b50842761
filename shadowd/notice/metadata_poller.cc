#include "shadowd/notice/metadata_poller.h"

#include <utility>

#include "shadowd/notice/aws_metadata.h"
#include "shadowd/notice/azure_scheduled_events.h"
#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

constexpr std::string_view kGcePreemptedPath = "/computeMetadata/v1/instance/preempted";
constexpr std::string_view kGceMaintenanceEventPath = "/computeMetadata/v1/instance/maintenance-event";
constexpr std::string_view kAwsTokenPath = "/latest/api/token";
constexpr std::string_view kAwsInstanceActionPath = "/latest/meta-data/spot/instance-action";
constexpr std::string_view kAwsRebalancePath = "/latest/meta-data/events/recommendations/rebalance";
constexpr std::string_view kAwsTokenTtlSeconds = "21600";
constexpr std::string_view kAzureScheduledEventsPath = "/metadata/scheduledevents?api-version=2020-07-01";

std::string UrlOf(const MetadataEndpoint& endpoint, std::string_view path) {
  std::string_view base = endpoint.base_url;
  while (base.ends_with('/')) base.remove_suffix(1);
  return std::string(base) + std::string(path);
}

Status UnexpectedStatus(const HttpRequest& request, const HttpResponse& response) {
  return UnexpectedHttpStatus(request.method + " " + request.url, response);
}

// One poll's outcome from its requests' results: the notices not reported before, or the first
// error when there is no such notice (see the header for why errors yield to notices).
class PollCollector {
 public:
  explicit PollCollector(RecentIds& reported) : reported_(reported) {}

  void Add(StatusOr<std::optional<Notice>> result) {
    if (!result.ok()) {
      if (error_.ok()) error_ = result.status();
      return;
    }
    if (result->has_value() && reported_.Insert((*result)->id)) fresh_.push_back(std::move(**result));
  }

  StatusOr<std::vector<Notice>> Finish() && {
    if (!error_.ok() && fresh_.empty()) return error_;
    return std::move(fresh_);
  }

 private:
  RecentIds& reported_;
  std::vector<Notice> fresh_;
  Status error_;
};

}  // namespace

bool RecentIds::Insert(const std::string& id) {
  if (!ids_.insert(id).second) return false;
  order_.push_back(id);
  if (order_.size() > kCapacity) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

// ---- GCE

GcePoller::GcePoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint)
    : http_(http), clock_(clock), endpoint_(std::move(endpoint)) {}

StatusOr<std::string> GcePoller::Get(std::string_view path) {
  HttpRequest request{
      .url = UrlOf(endpoint_, path), .headers = {{"Metadata-Flavor", "Google"}}, .timeout = endpoint_.timeout};
  VS_ASSIGN_OR_RETURN(HttpResponse response, http_.Send(request));
  VS_RETURN_IF_ERROR(CheckGceResponse(response, "GET " + request.url));
  return std::move(response.body);
}

StatusOr<std::optional<Notice>> GcePoller::PollPreempted(WallTime now) {
  VS_ASSIGN_OR_RETURN(const std::string body, Get(kGcePreemptedPath));
  VS_ASSIGN_OR_RETURN(const bool preempted, ParseGcePreempted(body));
  if (!preempted) {
    preempted_since_.reset();
    return std::optional<Notice>();
  }
  if (!preempted_since_) preempted_since_ = now;
  return std::optional<Notice>(
      Notice{.source = Notice::Source::kGce,
             .kind = Notice::Kind::kPreemption,
             .deadline = *preempted_since_ + kGcePreemptionNotice,
             .id = "gce/preempted/" + std::to_string(ToUnixMillis(*preempted_since_)),
             .detail = "GCE instance/preempted is TRUE; deadline assumed 30 s after it was seen"});
}

StatusOr<std::optional<Notice>> GcePoller::PollMaintenance(WallTime now) {
  VS_ASSIGN_OR_RETURN(const std::string body, Get(kGceMaintenanceEventPath));
  VS_ASSIGN_OR_RETURN(const GceMaintenanceEvent event, ParseGceMaintenanceEvent(body));
  if (event == GceMaintenanceEvent::kNone) {
    maintenance_.reset();
    return std::optional<Notice>();
  }
  if (!maintenance_ || maintenance_->event != event) maintenance_ = Maintenance{event, now};
  const std::string name(GceMaintenanceEventName(event));
  return std::optional<Notice>(
      Notice{.source = Notice::Source::kGce,
             .kind = Notice::Kind::kEarlyWarning,
             .deadline = maintenance_->first_seen + kGceMaintenanceNotice,
             .id = "gce/maintenance-event/" + name + "/" + std::to_string(ToUnixMillis(maintenance_->first_seen)),
             .detail = "GCE instance/maintenance-event is " + name});
}

StatusOr<std::vector<Notice>> GcePoller::PollOnce() {
  const WallTime now = clock_.WallNow();
  PollCollector collector(reported_);
  collector.Add(PollPreempted(now));
  collector.Add(PollMaintenance(now));
  return std::move(collector).Finish();
}

// ---- AWS

AwsPoller::AwsPoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint)
    : http_(http), clock_(clock), endpoint_(std::move(endpoint)) {}

Status AwsPoller::RefreshToken() {
  token_.clear();
  HttpRequest request{.method = "PUT",
                      .url = UrlOf(endpoint_, kAwsTokenPath),
                      .headers = {{"X-aws-ec2-metadata-token-ttl-seconds", std::string(kAwsTokenTtlSeconds)}},
                      .timeout = endpoint_.timeout};
  VS_ASSIGN_OR_RETURN(const HttpResponse response, http_.Send(request));
  if (response.status != 200) return UnexpectedStatus(request, response);
  VS_ASSIGN_OR_RETURN(token_, ParseAwsToken(response.body));
  return Status::Ok();
}

StatusOr<std::optional<std::string>> AwsPoller::GetOptional(std::string_view path) {
  if (token_.empty()) VS_RETURN_IF_ERROR(RefreshToken());
  HttpRequest request{.url = UrlOf(endpoint_, path), .timeout = endpoint_.timeout};
  auto send = [&]() {
    request.headers = {{"X-aws-ec2-metadata-token", token_}};
    return http_.Send(request);
  };
  VS_ASSIGN_OR_RETURN(HttpResponse response, send());
  if (response.status == 401) {  // the token expired (or IMDS restarted): one new token, one retry
    VS_RETURN_IF_ERROR(RefreshToken());
    VS_ASSIGN_OR_RETURN(response, send());
  }
  if (response.status == 404) return std::optional<std::string>();
  if (response.status != 200) return UnexpectedStatus(request, response);
  return std::optional<std::string>(std::move(response.body));
}

StatusOr<std::vector<Notice>> AwsPoller::PollOnce() {
  const WallTime now = clock_.WallNow();
  PollCollector collector(reported_);
  auto poll = [&](std::string_view path, auto parse) -> StatusOr<std::optional<Notice>> {
    VS_ASSIGN_OR_RETURN(const std::optional<std::string> body, GetOptional(path));
    if (!body) return std::optional<Notice>();
    VS_ASSIGN_OR_RETURN(Notice notice, parse(*body, now));
    return std::optional<Notice>(std::move(notice));
  };
  collector.Add(poll(kAwsInstanceActionPath, ParseAwsInstanceAction));
  collector.Add(poll(kAwsRebalancePath, ParseAwsRebalanceRecommendation));
  return std::move(collector).Finish();
}

// ---- Azure

AzurePoller::AzurePoller(HttpClient& http, Clock& clock, MetadataEndpoint endpoint, std::string vm_name)
    : http_(http), clock_(clock), endpoint_(std::move(endpoint)), vm_name_(std::move(vm_name)) {}

StatusOr<std::vector<Notice>> AzurePoller::PollOnce() {
  const WallTime now = clock_.WallNow();
  HttpRequest request{.url = UrlOf(endpoint_, kAzureScheduledEventsPath),
                      .headers = {{"Metadata", "true"}},
                      .timeout = endpoint_.timeout};
  VS_ASSIGN_OR_RETURN(const HttpResponse response, http_.Send(request));
  if (response.status != 200) return UnexpectedStatus(request, response);
  VS_ASSIGN_OR_RETURN(std::vector<Notice> notices, ParseAzureScheduledEvents(response.body, vm_name_, now));
  std::vector<Notice> fresh;
  for (Notice& notice : notices) {
    if (reported_.Insert(notice.id)) fresh.push_back(std::move(notice));
  }
  return fresh;
}

Status AzurePoller::Approve(const std::string& event_id) {
  if (event_id.empty()) return InvalidArgument("Azure Approve needs the EventId of a notice, got an empty one");
  HttpRequest request{.method = "POST",
                      .url = UrlOf(endpoint_, kAzureScheduledEventsPath),
                      .headers = {{"Metadata", "true"}, {"Content-Type", "application/json"}},
                      .body = AzureStartRequestBody(event_id),
                      .timeout = endpoint_.timeout};
  VS_ASSIGN_OR_RETURN(const HttpResponse response, http_.Send(request));
  if (response.status != 200) {
    return UnexpectedStatus(request, response).Annotate("approving Azure event '" + Printable(event_id) + "'");
  }
  return Status::Ok();
}

}  // namespace vs::notice
