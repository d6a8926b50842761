#include "shadowd/notice/http_client.h"

#include <algorithm>
#include <cctype>

namespace vs::notice {

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  auto same_name = [name](const std::pair<std::string, std::string>& header) {
    return std::equal(header.first.begin(), header.first.end(), name.begin(), name.end(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
  };
  auto it = std::find_if(headers.begin(), headers.end(), same_name);
  if (it == headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

}  // namespace vs::notice
