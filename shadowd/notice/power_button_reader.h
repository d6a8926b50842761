// Readers that turn power-button presses into Notices (formats in power_button.h):
//
//   AcpidSocketReader: a client of acpid's unix socket (/var/run/acpid.socket), line by line.
//   InputEventReader:  an input event device (/dev/input/eventN, the one whose name is "Power
//                      Button"), record by record; any readable file works (a FIFO in tests).
//
// Next() blocks until a press arrives and returns its notice; other events are skipped. It waits
// in poll() on the descriptor and a stop signal together, so it neither spins nor needs a timeout:
// Stop(), from any thread, makes the pending and every later Next() return nullopt.
//
// Ownership: each reader owns its descriptor and its stop signal; it keeps a reference to the
// Clock, which must outlive it. Destroy a reader only once no thread is inside Next().
// Thread-safety: Next() from one thread at a time; Stop() from any thread.
// Failure modes: Connect/Open return Unavailable naming the path (no such socket or device,
// permission denied, acpid not running). Next() returns InvalidArgument for a malformed line or
// record, after which the reader goes on with the next one (acpid lines over 1024 bytes are
// skipped up to their newline), and Unavailable when the peer closed or the device went away:
// that reader is finished, make a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/notice/notice.h"
#include "shadowd/notice/power_button.h"
#include "common/wakeable_fd.h"

namespace vs::notice {

class AcpidSocketReader {
 public:
  static constexpr const char* kDefaultSocketPath = "/var/run/acpid.socket";

  static StatusOr<std::unique_ptr<AcpidSocketReader>> Connect(const std::string& socket_path, Clock& clock,
                                                              PowerButtonOptions options = {});

  // The next power-button press; nullopt once stopped.
  StatusOr<std::optional<Notice>> Next();
  void Stop() { stop_.Raise(); }

 private:
  AcpidSocketReader(UniqueFd socket, StopSignal stop, std::string path, Clock& clock, PowerButtonOptions options);

  UniqueFd socket_;
  StopSignal stop_;
  const std::string path_;
  Clock& clock_;
  const PowerButtonOptions options_;
  std::string pending_;         // received bytes not yet ending in a newline
  bool skipping_line_ = false;  // inside a line that was too long, until its newline
  uint64_t presses_ = 0;
};

class InputEventReader {
 public:
  static StatusOr<std::unique_ptr<InputEventReader>> Open(const std::string& device_path, Clock& clock,
                                                          PowerButtonOptions options = {});

  // The next KEY_POWER press; nullopt once stopped.
  StatusOr<std::optional<Notice>> Next();
  void Stop() { stop_.Raise(); }

 private:
  InputEventReader(UniqueFd device, StopSignal stop, std::string path, Clock& clock, PowerButtonOptions options);

  UniqueFd device_;
  StopSignal stop_;
  const std::string path_;
  Clock& clock_;
  const PowerButtonOptions options_;
  std::string pending_;  // bytes of a record not complete yet (pipes may split records)
  uint64_t presses_ = 0;
};

}  // namespace vs::notice
