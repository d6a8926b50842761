// The data-loss oracle: reads the test guest's record disk and serial log and says whether any
// acknowledged record was lost, a hole or a corrupt record exists, the guest restarted or the
// kernel complained (contract: docs/record-format.md).
//
// Analyse is pure apart from the reads it makes through the BlockReader: one 512-byte sector per
// 64 KiB slot, so a 1 GiB disk costs 16384 small reads. Thread-safe as long as the reader is not
// shared. Failure modes: an error Status when the disk is too small to hold a record, a read
// fails, or the options are invalid; problems found in the data are never errors, they are
// violations in the Report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "images/oracle/block_reader.h"
#include "images/oracle/record_format.h"

namespace vs::oracle {

struct AnalyseOptions {
  // The disk is a replica that may lag its source: it may end before the last ACK and records
  // newer than the last ACK are fine; it must still be a gap-free, uncorrupted run, and every
  // ACKed record up to its newest record must be there.
  bool prefix_mode = false;
  // When set (8 lowercase hex digits): every boot id seen must be this one, and it must be seen.
  std::optional<std::string> expect_boot;
};

// A list that keeps its first kMaxListed items and counts all of them, so a wiped 1 GiB disk
// yields a readable report.
template <typename T>
struct CappedList {
  static constexpr std::size_t kMaxListed = 50;
  std::vector<T> items;
  std::uint64_t total = 0;

  void Add(T item) {
    ++total;
    if (items.size() < kMaxListed) items.push_back(std::move(item));
  }
};

struct CorruptSlot {
  std::uint64_t slot = 0;
  std::string reason;
};

struct Report {
  bool prefix_mode = false;
  std::uint64_t disk_bytes = 0;
  std::uint64_t slots = 0;  // including the header slot; the window holds slots - 1 records

  // Slot 0. Informational only: the contract's verdicts do not cover it.
  std::optional<Header> header;
  std::string header_problem;  // set when slot 0 starts with "VSHDR " but does not parse

  std::uint64_t valid_records = 0;                  // well-formed, in their own slot
  std::optional<std::uint64_t> newest_seq_on_disk;  // "last record on disk"
  std::optional<std::uint64_t> oldest_seq_in_window;
  std::uint64_t ack_count = 0;  // VS-ACK tokens in the serial log
  std::optional<std::uint64_t> last_acked_seq;

  CappedList<std::uint64_t> holes;          // missing seqs between oldest and newest on disk
  CappedList<CorruptSlot> corrupt;          // slots starting with "VSREC " that are not valid here
  CappedList<std::uint64_t> acked_missing;  // ACKed, inside the window, not on disk (or replaced)
  std::vector<std::string> boot_ids;        // serial log first, then records by ascending seq
  CappedList<std::string> oops_lines;       // verbatim kernel-trouble lines
  CappedList<std::string> malformed_serial_lines;  // VS-ACK/VS-BOOT tokens that did not parse

  std::vector<std::string> violations;  // human-readable; empty means the verdict is ok
  bool ok() const { return violations.empty(); }
};

StatusOr<Report> Analyse(BlockReader& disk, std::string_view serial_log, const AnalyseOptions& options);

// Multi-line human-readable report, verdict first.
std::string FormatReportText(const Report& report);
// The report as a JSON object (pretty-printed); invalid UTF-8 from the serial log is replaced.
std::string FormatReportJson(const Report& report);

}  // namespace vs::oracle
