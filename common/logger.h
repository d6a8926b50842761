// Logger: how shadowd writes its log. One line per message, "<UTC time> shadowd: [<component>: ]<message>", on
// stderr, which the lab's scripts and an init system keep. Components never see a logger type: they take a
// `Logger::Line` (a function of one message) bound to their name by For(), so tests pass any lambda.
//
// Why not spdlog: shadowd needs one sink, one format and no levels (every line is an event an operator may
// want); a file of glibc's stdio does that in a dozen lines, and the injectable clock stamps the time.
//
// Ownership: borrows the clock. Thread-safety: Write and the functions For returns may be called from any
// thread; each line is one fprintf call, which glibc writes whole. Failure modes: none reported (a log that
// cannot be written is lost, as stderr is).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace vs {

class Logger {
 public:
  using Line = std::function<void(const std::string& message)>;

  Logger(const Clock& clock, std::FILE* out) : clock_(clock), out_(out) {}

  // Writes one line; `component` may be empty.
  void Write(std::string_view component, std::string_view message) const;
  // Writes "<what>: <status>" unless `status` is OK.
  void Failure(std::string_view what, const Status& status) const;
  // A function writing lines for `component` (empty: none).
  Line For(std::string component) const;

 private:
  const Clock& clock_;
  std::FILE* const out_;
};

}  // namespace vs
