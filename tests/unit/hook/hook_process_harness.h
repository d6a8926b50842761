// What the process-level hook tests and bench/hook_bench.cc need to run the real virt-shadow-hook
// binary the way libvirtd does, against the three shadowds that matter: none (no socket), a hung
// one, and shadowd's real hook socket listener. Test-only.
//
// Ownership: each object owns its socket, thread and server and stops them in its destructor.
// Thread-safety: FakeShadowd's accessors may be called while the server runs; the rest is for one
// thread. Failure modes: setup problems come back as a Status naming the path and errno.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"
#include "shadowd/hook_intake/hook_listener.h"

namespace vs::hook::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal if it was killed
  std::string stdout_text;
  std::string stderr_text;
  Duration elapsed{};  // spawn to exit, as libvirtd waits for it
  long max_rss_kib = 0;  // RunMeasuringPeakRss only: the program's peak resident set in KiB
};

// Runs argv[0] with `argv` and exactly `env` (libvirtd passes only LC_ALL, PATH and HOME), feeds it
// `stdin_text` and collects both outputs.
StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                   std::string_view stdin_text, Clock& clock);

// RunProcess through peak_rss (tests/unit/hook/peak_rss.cc), which writes the program's own peak RSS to
// `rss_file`; it comes back as max_rss_kib.
StatusOr<ProcessResult> RunMeasuringPeakRss(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                            std::string_view stdin_text, Clock& clock, const std::string& rss_file);

// libvirtd's environment for the hook, plus the test overrides (`socket_path`: the hook socket). `answer_within_ms` 0 keeps the
// hook's own deadline; tests that check delivery rather than timing pass a generous one.
std::vector<std::string> HookEnvironment(const std::string& socket_path, const std::string& spool_dir,
                                         int answer_within_ms = 0);

// A unix socket that accepts connections and never answers: a hung shadowd.
class HungListener {
 public:
  static StatusOr<std::unique_ptr<HungListener>> Start(const std::string& socket_path);
  ~HungListener();
  int accepted() const;

 private:
  HungListener(int listen_fd, int stop_read_fd, int stop_write_fd);
  void AcceptUntilStopped();

  const int listen_fd_;
  const int stop_read_fd_;
  const int stop_write_fd_;
  mutable std::mutex mu_;
  std::vector<int> connections_;  // guarded by mu_; kept open so that the hook waits for an answer
  std::thread thread_;
};

// An in-process shadowd that records each event and answers `verdict`: served by shadowd's own hook socket
// listener (shadowd/hook_intake/hook_listener.h) with its production options, its size limit included.
class FakeShadowd {
 public:
  static StatusOr<std::unique_ptr<FakeShadowd>> Start(const std::string& socket_path);
  ~FakeShadowd();
  void SetVerdict(const virtshadow::v1::HookVerdict& verdict);
  std::vector<virtshadow::v1::HookEvent> events() const;
  // What the listener logged (a refused frame, a connection closed unanswered), one line each.
  std::vector<std::string> log() const;

 private:
  FakeShadowd();

  std::unique_ptr<Clock> clock_ = NewRealClock();
  mutable std::mutex mu_;
  std::vector<virtshadow::v1::HookEvent> events_;  // guarded by mu_
  virtshadow::v1::HookVerdict verdict_;            // guarded by mu_
  std::vector<std::string> log_;                   // guarded by mu_
  std::unique_ptr<hook_intake::HookListener> listener_;  // last: its workers stop before the rest goes
};

// The median of `samples` (the upper one of the two middle samples for an even count).
Duration Median(std::vector<Duration> samples);

double Milliseconds(Duration d);

}  // namespace vs::hook::testing
