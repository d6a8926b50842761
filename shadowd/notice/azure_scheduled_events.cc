#include "shadowd/notice/azure_scheduled_events.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "shadowd/notice/http_date.h"
#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

constexpr size_t kMaxEventIdBytes = 128;

struct AzureEvent {
  std::string id;
  std::string type;
  std::string status;
  std::string not_before;
  std::string description;
  std::vector<std::string> resources;
};

bool SameNameIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

// Member `key` of event `index` when present: it must then be a string.
StatusOr<std::string> OptionalString(const nlohmann::json& event, const char* key, size_t index) {
  auto it = event.find(key);
  if (it == event.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return InvalidArgument("Azure scheduled event #" + std::to_string(index) + " field \"" + key +
                           "\" must be a string, got " + it->type_name());
  }
  return it->get<std::string>();
}

StatusOr<AzureEvent> ReadEvent(const nlohmann::json& event, size_t index) {
  const std::string where = "Azure scheduled event #" + std::to_string(index);
  if (!event.is_object()) return InvalidArgument(where + " must be a JSON object, got " + event.type_name());
  AzureEvent out;
  VS_ASSIGN_OR_RETURN(out.id, OptionalString(event, "EventId", index));
  if (out.id.empty()) return InvalidArgument(where + " has no \"EventId\" (or an empty one)");
  if (out.id.size() > kMaxEventIdBytes) {
    return InvalidArgument(where + " \"EventId\" is " + std::to_string(out.id.size()) + " bytes, more than " +
                           std::to_string(kMaxEventIdBytes));
  }
  if (std::any_of(out.id.begin(), out.id.end(), [](char c) { return c <= 0x20 || c >= 0x7f; })) {
    return InvalidArgument(where + " \"EventId\" '" + Printable(out.id) +
                           "' contains a space or a non-ASCII or control character; Azure event ids are GUIDs");
  }
  VS_ASSIGN_OR_RETURN(out.type, OptionalString(event, "EventType", index));
  if (out.type.empty()) return InvalidArgument(where + " (" + Printable(out.id) + ") has no \"EventType\"");
  VS_ASSIGN_OR_RETURN(out.status, OptionalString(event, "EventStatus", index));
  VS_ASSIGN_OR_RETURN(out.not_before, OptionalString(event, "NotBefore", index));
  VS_ASSIGN_OR_RETURN(out.description, OptionalString(event, "Description", index));
  if (auto it = event.find("Resources"); it != event.end() && !it->is_null()) {
    if (!it->is_array()) {
      return InvalidArgument(where + " field \"Resources\" must be an array of VM names, got " + it->type_name());
    }
    for (const nlohmann::json& resource : *it) {
      if (!resource.is_string()) {
        return InvalidArgument(where + " field \"Resources\" must hold only strings, got " + resource.type_name());
      }
      out.resources.push_back(resource.get<std::string>());
    }
  }
  return out;
}

bool Concerns(const AzureEvent& event, std::string_view vm_name) {
  if (vm_name.empty()) return true;
  return std::any_of(event.resources.begin(), event.resources.end(),
                     [vm_name](const std::string& r) { return SameNameIgnoringCase(r, vm_name); });
}

bool IsPreemption(const AzureEvent& event) { return event.type == "Preempt" || event.type == "Terminate"; }

std::string Describe(const AzureEvent& event) {
  std::string out = "Azure " + Printable(event.type, 32) + " event " + Printable(event.id);
  out += " (" + (event.status.empty() ? std::string("no status") : Printable(event.status, 32));
  out += ", NotBefore '" + Printable(event.not_before, 64) + "'";
  if (!event.resources.empty()) {
    out += ", resources";
    for (const std::string& r : event.resources) out += " " + Printable(r, 64);
  }
  out += ")";
  if (!event.description.empty()) out += ": " + Printable(event.description);
  return out;
}

}  // namespace

StatusOr<std::vector<Notice>> ParseAzureScheduledEvents(std::string_view body, std::string_view vm_name, WallTime now) {
  VS_ASSIGN_OR_RETURN(const nlohmann::json doc, ParseJsonObject(body, "Azure scheduled events"));
  if (auto it = doc.find("DocumentIncarnation"); it != doc.end() && !it->is_number_integer()) {
    return InvalidArgument(
        std::string("Azure scheduled events field \"DocumentIncarnation\" must be an integer, got ") + it->type_name());
  }
  auto events_it = doc.find("Events");
  if (events_it == doc.end()) return InvalidArgument("Azure scheduled events document has no \"Events\" array");
  if (!events_it->is_array()) {
    return InvalidArgument(std::string("Azure scheduled events field \"Events\" must be an array, got ") +
                           events_it->type_name());
  }

  std::vector<AzureEvent> preemptions;
  std::string ignored;
  for (size_t i = 0; i < events_it->size(); ++i) {
    VS_ASSIGN_OR_RETURN(AzureEvent event, ReadEvent((*events_it)[i], i));
    if (!Concerns(event, vm_name)) continue;
    if (IsPreemption(event)) {
      preemptions.push_back(std::move(event));
    } else {
      ignored += (ignored.empty() ? "" : ", ") + Printable(event.type, 32) + " " + Printable(event.id);
    }
  }

  std::vector<Notice> notices;
  for (const AzureEvent& event : preemptions) {
    Notice notice{.source = Notice::Source::kAzure,
                  .kind = Notice::Kind::kPreemption,
                  .deadline = now + kAzureDefaultNotice,
                  .id = event.id,
                  .detail = Describe(event)};
    if (event.not_before.empty()) {
      notice.detail += "; no NotBefore, deadline assumed 30 s after it was seen";
    } else if (StatusOr<WallTime> not_before = ParseRfc1123(event.not_before); not_before.ok()) {
      notice.deadline = *not_before;
    } else {
      notice.detail += "; deadline assumed 30 s after it was seen because " + not_before.status().message();
    }
    if (!ignored.empty()) notice.detail += "; other events, ignored: " + ignored;
    notices.push_back(std::move(notice));
  }
  return notices;
}

std::string AzureStartRequestBody(std::string_view event_id) {
  nlohmann::json request = nlohmann::json::object();
  request["EventId"] = std::string(event_id);
  nlohmann::json body = nlohmann::json::object();
  body["StartRequests"] = nlohmann::json::array({request});
  // `replace` keeps invalid UTF-8 from throwing; an id that came from Azure is valid anyway.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vs::notice
