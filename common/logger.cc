#include "common/logger.h"

#include <ctime>

namespace vs {

void Logger::Write(std::string_view component, std::string_view message) const {
  const int64_t ms = ToUnixMillis(clock_.WallNow());
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  const std::string prefix = component.empty() ? "" : std::string(component) + ": ";
  std::fprintf(out_, "%s.%03dZ shadowd: %s%.*s\n", stamp, static_cast<int>(ms % 1000), prefix.c_str(),
               static_cast<int>(message.size()), message.data());
}

void Logger::Failure(std::string_view what, const Status& status) const {
  if (!status.ok()) Write("", std::string(what) + ": " + status.ToString());
}

Logger::Line Logger::For(std::string component) const {
  return [this, component = std::move(component)](const std::string& message) { Write(component, message); };
}

}  // namespace vs
