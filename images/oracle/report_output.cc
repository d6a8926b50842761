// FormatReportText and FormatReportJson (declared in oracle.h).
#include <nlohmann/json.hpp>

#include "images/oracle/oracle.h"

namespace vs::oracle {
namespace {

std::string SeqText(const std::optional<std::uint64_t>& seq) { return seq ? std::to_string(*seq) : "none"; }

template <typename T, typename Render>
void AppendList(std::string& out, std::string_view title, const CappedList<T>& list, Render render) {
  out += std::string(title) + ": " + std::to_string(list.total) + "\n";
  for (const T& item : list.items) out += "  " + render(item) + "\n";
  if (list.total > list.items.size()) {
    out += "  (and " + std::to_string(list.total - list.items.size()) + " more)\n";
  }
}

template <typename T>
nlohmann::json CappedJson(const CappedList<T>& list, nlohmann::json items) {
  return {{"total", list.total}, {"listed", std::move(items)}};
}

nlohmann::json OptionalSeqJson(const std::optional<std::uint64_t>& seq) {
  return seq ? nlohmann::json(*seq) : nlohmann::json(nullptr);
}

}  // namespace

std::string FormatReportText(const Report& report) {
  std::string out = report.ok() ? "verdict: OK\n" : "verdict: VIOLATION\n";
  for (const std::string& violation : report.violations) out += "  - " + violation + "\n";
  out += std::string("mode: ") + (report.prefix_mode ? "prefix (lagging replica)" : "exact") + "\n";
  out += "disk: " + std::to_string(report.disk_bytes) + " bytes, " + std::to_string(report.slots) +
         " slots (window of " + std::to_string(report.slots - 1) + " records)\n";
  if (report.header) {
    out += "header: last=" + std::to_string(report.header->last) + " boot=" + report.header->boot + "\n";
  } else if (!report.header_problem.empty()) {
    out += "header: unreadable: " + report.header_problem + "\n";
  } else {
    out += "header: none\n";
  }
  out += "records on disk: " + std::to_string(report.valid_records) + " valid, newest " +
         SeqText(report.newest_seq_on_disk) + ", oldest in window " + SeqText(report.oldest_seq_in_window) + "\n";
  out += "acks: " + std::to_string(report.ack_count) + ", last acked " + SeqText(report.last_acked_seq) + "\n";
  std::string boots;
  for (const std::string& boot : report.boot_ids) boots += " " + boot;
  out += "boot ids:" + (boots.empty() ? std::string(" none") : boots) + "\n";
  const auto seq = [](std::uint64_t n) { return "seq " + std::to_string(n); };
  const auto verbatim = [](const std::string& line) { return line; };
  AppendList(out, "holes", report.holes, seq);
  AppendList(out, "corrupt slots", report.corrupt,
             [](const CorruptSlot& c) { return "slot " + std::to_string(c.slot) + ": " + c.reason; });
  AppendList(out, "acknowledged but missing", report.acked_missing, seq);
  AppendList(out, "kernel-trouble lines", report.oops_lines, verbatim);
  AppendList(out, "malformed serial lines", report.malformed_serial_lines, verbatim);
  return out;
}

std::string FormatReportJson(const Report& report) {
  nlohmann::json corrupt = nlohmann::json::array();
  for (const CorruptSlot& c : report.corrupt.items) corrupt.push_back({{"slot", c.slot}, {"reason", c.reason}});
  nlohmann::json header = nullptr;
  if (report.header) header = {{"last", report.header->last}, {"boot", report.header->boot}};
  const nlohmann::json json = {
      {"ok", report.ok()},
      {"violations", report.violations},
      {"prefix_mode", report.prefix_mode},
      {"disk_bytes", report.disk_bytes},
      {"slots", report.slots},
      {"header", header},
      {"header_problem", report.header_problem},
      {"valid_records", report.valid_records},
      {"newest_seq_on_disk", OptionalSeqJson(report.newest_seq_on_disk)},
      {"oldest_seq_in_window", OptionalSeqJson(report.oldest_seq_in_window)},
      {"ack_count", report.ack_count},
      {"last_acked_seq", OptionalSeqJson(report.last_acked_seq)},
      {"boot_ids", report.boot_ids},
      {"holes", CappedJson(report.holes, report.holes.items)},
      {"corrupt", CappedJson(report.corrupt, std::move(corrupt))},
      {"acked_missing", CappedJson(report.acked_missing, report.acked_missing.items)},
      {"oops_lines", CappedJson(report.oops_lines, report.oops_lines.items)},
      {"malformed_serial_lines", CappedJson(report.malformed_serial_lines, report.malformed_serial_lines.items)},
  };
  return json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace vs::oracle
