// The ACPI power button as a preemption notice: pure parsers of the two ways Linux reports a
// press, and the Notice a press becomes.
//
//   acpid socket (/var/run/acpid.socket), one event per line, e.g.
//     "button/power PBTN 00000080 00000000"  or  "button/power LNXPWRBN:00 00000080 00000001"
//     (other lines: "button/lid LID close", "ac_adapter ACPI0003:00 00000080 00000001", ...)
//   Linux input event device (/dev/input/eventN): fixed-size `struct input_event` records;
//     a press is type EV_KEY, code KEY_POWER, value 1 (0 = release, 2 = autorepeat).
//
// Clouds (GCE preemption among them) and hypervisors press the virtual power button to ask the
// host to shut down. Note that systemd-logind also acts on it (HandlePowerKey=poweroff by
// default): on a shadowd host set HandlePowerKey=ignore, or the host powers off before the VMs
// have been switched over.
// A press becomes Notice{kAcpiPowerButton, kPreemption, now + deadline_after_press}. Every press
// is a new event: the id counts presses per reader ("acpi-power-button/<unix ms>/<n>").
// Ownership and thread-safety: pure functions of values. Failure modes: InvalidArgument quoting the malformed line or
// naming the record's field and value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/notice/notice.h"

namespace vs::notice {

struct PowerButtonOptions {
  // How long the host is assumed to last after a press (platforms commonly allow ~30 s).
  Duration deadline_after_press = std::chrono::seconds(30);
};

// One acpid line (without its newline): true for a power-button event, false for any other
// well-formed event. Malformed: empty, over 1024 bytes, a control or non-ASCII character, a
// single word, or a button/power event whose two numeric fields are not 8 hex digits.
StatusOr<bool> IsAcpidPowerButtonEvent(std::string_view line);

// sizeof(struct input_event) on 64-bit Linux (checked where <linux/input.h> is included, so that
// its macros stay out of this header).
inline constexpr size_t kInputEventBytes = 24;

// One record of exactly kInputEventBytes bytes: true for a press of KEY_POWER. Malformed: a
// wrong size, or a KEY_POWER value other than 0, 1 or 2.
StatusOr<bool> IsPowerKeyPress(std::span<const std::byte> record);

// The notice for the `press_number`-th press seen by a reader, at `now`.
Notice PowerButtonNotice(WallTime now, const PowerButtonOptions& options, uint64_t press_number, std::string detail);

}  // namespace vs::notice
