#include "shadowd/notice/parse_util.h"

namespace vs::notice {

std::string Printable(std::string_view text, size_t max_chars) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max_chars) out += "...";
  return out;
}

Status UnexpectedHttpStatus(std::string_view what, const HttpResponse& response) {
  std::string message = std::string(what) + " answered HTTP " + std::to_string(response.status) + ": '" +
                        Printable(response.body, 120) + "'";
  if (response.status >= 500 || response.status == 429) return Unavailable(std::move(message));
  return FailedPrecondition(std::move(message) + "; check the metadata endpoint and this host's metadata settings");
}

StatusOr<nlohmann::json> ParseJsonObject(std::string_view body, std::string_view what) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann reports only through exceptions; they stop here.
    return InvalidArgument(std::string(what) + " is not valid JSON (" + Printable(e.what()) + "): '" +
                           Printable(body, 120) + "'");
  }
  if (!doc.is_object()) {
    return InvalidArgument(std::string(what) + " must be a JSON object, got " + doc.type_name() + ": '" +
                           Printable(body, 120) + "'");
  }
  return doc;
}

}  // namespace vs::notice
