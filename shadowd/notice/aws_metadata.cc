#include "shadowd/notice/aws_metadata.h"

#include <array>

#include "shadowd/notice/http_date.h"
#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

constexpr size_t kMaxTokenBytes = 1024;
constexpr std::array<std::string_view, 3> kSpotActions = {"terminate", "stop", "hibernate"};

// The string member `key` of `doc`; InvalidArgument when it is missing or not a string.
StatusOr<std::string> RequiredString(const nlohmann::json& doc, const char* key, std::string_view what) {
  auto it = doc.find(key);
  if (it == doc.end()) return InvalidArgument(std::string(what) + " has no \"" + key + "\" field");
  if (!it->is_string()) {
    return InvalidArgument(std::string(what) + " field \"" + key + "\" must be a string, got " + it->type_name());
  }
  return it->get<std::string>();
}

}  // namespace

StatusOr<std::string> ParseAwsToken(std::string_view body) {
  while (body.ends_with('\n') || body.ends_with('\r')) body.remove_suffix(1);
  if (body.empty()) return InvalidArgument("AWS IMDSv2 token is empty");
  if (body.size() > kMaxTokenBytes) {
    return InvalidArgument("AWS IMDSv2 token is " + std::to_string(body.size()) + " bytes, more than the " +
                           std::to_string(kMaxTokenBytes) + " expected; check the metadata endpoint");
  }
  for (char c : body) {
    if (c <= 0x20 || c >= 0x7f) {
      return InvalidArgument("AWS IMDSv2 token '" + Printable(body, 64) +
                             "' contains a space or control character; it could not be sent back in a header");
    }
  }
  return std::string(body);
}

StatusOr<Notice> ParseAwsInstanceAction(std::string_view body, WallTime now) {
  constexpr std::string_view kWhat = "AWS spot instance-action";
  VS_ASSIGN_OR_RETURN(const nlohmann::json doc, ParseJsonObject(body, kWhat));
  VS_ASSIGN_OR_RETURN(const std::string action, RequiredString(doc, "action", kWhat));
  bool known = false;
  for (std::string_view a : kSpotActions) known = known || action == a;
  if (!known) {
    return InvalidArgument(std::string(kWhat) + " action '" + Printable(action, 64) +
                           "' is unknown; expected terminate, stop or hibernate");
  }

  Notice notice{
      .source = Notice::Source::kAws, .kind = Notice::Kind::kPreemption, .deadline = now + kAwsDefaultSpotNotice};
  std::string time_text = "none";
  std::string deadline_note;
  if (doc.contains("time")) {
    VS_ASSIGN_OR_RETURN(time_text, RequiredString(doc, "time", kWhat));
    StatusOr<WallTime> time = ParseRfc3339(time_text);
    if (time.ok()) {
      notice.deadline = *time;
    } else {
      deadline_note = "; deadline assumed 120 s after it was seen because " + time.status().message();
    }
  } else {
    deadline_note = "; no time given, deadline assumed 120 s after it was seen";
  }
  notice.id = "aws/spot/" + action + "/" + Printable(time_text, 64);
  notice.detail = std::string(kWhat) + ": " + Printable(body) + deadline_note;
  return notice;
}

StatusOr<Notice> ParseAwsRebalanceRecommendation(std::string_view body, WallTime now) {
  constexpr std::string_view kWhat = "AWS rebalance recommendation";
  VS_ASSIGN_OR_RETURN(const nlohmann::json doc, ParseJsonObject(body, kWhat));
  VS_ASSIGN_OR_RETURN(const std::string notice_time, RequiredString(doc, "noticeTime", kWhat));
  VS_RETURN_IF_ERROR(ParseRfc3339(notice_time).status().Annotate(std::string(kWhat) + " noticeTime"));
  return Notice{.source = Notice::Source::kAws,
                .kind = Notice::Kind::kEarlyWarning,
                .deadline = now + kAwsDefaultSpotNotice,
                .id = "aws/rebalance/" + notice_time,
                .detail = std::string(kWhat) + ": " + Printable(body)};
}

}  // namespace vs::notice
