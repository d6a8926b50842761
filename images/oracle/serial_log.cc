#include "images/oracle/serial_log.h"

#include <algorithm>
#include <array>
#include <optional>

#include "images/oracle/text_scan.h"

namespace vs::oracle {
namespace {

constexpr std::string_view kAckToken = "VS-ACK";
constexpr std::string_view kBootToken = "VS-BOOT";
// The kernel's hang reports count too (the guest's init shortens their timeouts): "INFO: task X blocked for
// more than 10 seconds" (hung task), "BUG: soft lockup", "rcu: INFO: rcu_sched detected stalls", "Watchdog
// detected hard LOCKUP".
constexpr std::array<std::string_view, 9> kKernelTroubleMarkers = {
    "Oops:", "BUG:", "Kernel panic", "general protection fault", "Call Trace:", "WARNING:",
    "blocked for more than", "detected stalls", "hard LOCKUP"};

// ` seq=<N> boot=<BOOT>` after "VS-ACK". Text may follow the token, but a token torn by an
// interleaved message fails: "seq=1<kernel text>2" lacks " boot=" after the digits, and BOOT must
// be exactly 8 hex digits.
std::optional<SerialAck> ParseAck(std::string_view text) {
  SerialAck ack;
  std::string_view boot;
  if (!scan::ConsumeLiteral(text, " seq=") || !scan::ConsumeUint64(text, ack.seq) || ack.seq == 0 ||
      !scan::ConsumeLiteral(text, " boot=") || !scan::ConsumeBootId(text, boot)) {
    return std::nullopt;
  }
  ack.boot = std::string(boot);
  return ack;
}

// ` boot=<BOOT> resume=<N>` after "VS-BOOT"; returns BOOT.
std::optional<std::string> ParseBoot(std::string_view text) {
  std::string_view boot;
  std::uint64_t resume = 0;
  if (!scan::ConsumeLiteral(text, " boot=") || !scan::ConsumeBootId(text, boot) ||
      !scan::ConsumeLiteral(text, " resume=") || !scan::ConsumeUint64(text, resume)) {
    return std::nullopt;
  }
  return std::string(boot);
}

void NoteBootId(SerialLog& log, const std::string& boot) {
  if (std::find(log.boot_ids.begin(), log.boot_ids.end(), boot) == log.boot_ids.end()) {
    log.boot_ids.push_back(boot);
  }
}

void ParseLine(std::string_view line, SerialLog& log) {
  bool malformed = false;
  for (std::size_t at = line.find("VS-"); at != std::string_view::npos; at = line.find("VS-", at + 1)) {
    const std::string_view rest = line.substr(at);
    if (rest.starts_with(kAckToken)) {
      if (std::optional<SerialAck> ack = ParseAck(rest.substr(kAckToken.size()))) {
        NoteBootId(log, ack->boot);
        log.acks.push_back(std::move(*ack));
      } else {
        malformed = true;
      }
    } else if (rest.starts_with(kBootToken)) {
      if (std::optional<std::string> boot = ParseBoot(rest.substr(kBootToken.size()))) {
        NoteBootId(log, *boot);
      } else {
        malformed = true;
      }
    }
  }
  if (malformed) log.malformed_lines.emplace_back(line);
  for (std::string_view marker : kKernelTroubleMarkers) {
    if (line.find(marker) != std::string_view::npos) {
      log.oops_lines.emplace_back(line);
      break;
    }
  }
}

}  // namespace

SerialLog ParseSerialLog(std::string_view text) {
  SerialLog log;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);  // the serial console sends CRLF
    ParseLine(line, log);
  }
  return log;
}

}  // namespace vs::oracle
