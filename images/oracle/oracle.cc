#include "images/oracle/oracle.h"

#include <algorithm>
#include <map>
#include <utility>

#include "images/oracle/serial_log.h"

namespace vs::oracle {
namespace {

// What each record slot holds after the scan; nullopt for empty or corrupt slots.
using SlotContents = std::vector<std::optional<Record>>;

// The lowest seq that can still be on disk when `newest` is the newest record: wrapping
// overwrites everything older than the last `slots - 1` records.
std::uint64_t WindowStart(std::uint64_t newest, std::uint64_t slots) {
  const std::uint64_t window = slots - 1;
  return newest >= window ? newest - window + 1 : 1;
}

bool HoldsSeq(const SlotContents& contents, std::uint64_t slots, std::uint64_t seq) {
  const std::optional<Record>& record = contents[SlotForSeq(seq, slots)];
  return record.has_value() && record->seq == seq;
}

Status ReadHeader(BlockReader& disk, Report& report) {
  VS_ASSIGN_OR_RETURN(std::string sector, disk.ReadAt(0, kSectorBytes));
  if (!LooksLikeHeader(sector)) return Status::Ok();
  StatusOr<Header> header = ParseHeaderSector(sector);
  if (header.ok()) {
    report.header = std::move(header).value();
  } else {
    report.header_problem = header.status().message();
  }
  return Status::Ok();
}

void ExamineSlot(std::uint64_t slot, std::string_view sector, SlotContents& contents, Report& report) {
  if (!LooksLikeRecord(sector)) return;  // empty by definition
  StatusOr<Record> record = ParseRecordSector(sector);
  if (!record.ok()) {
    report.corrupt.Add({slot, record.status().message()});
    return;
  }
  const std::uint64_t home = SlotForSeq(record->seq, report.slots);
  if (home != slot) {
    report.corrupt.Add({slot, "seq " + std::to_string(record->seq) + " belongs in slot " + std::to_string(home)});
    return;
  }
  ++report.valid_records;
  report.newest_seq_on_disk = std::max(report.newest_seq_on_disk.value_or(0), record->seq);
  contents[slot] = std::move(record).value();
}

// Reads the first sector of every record slot, a batch at a time: batches let an NBD reader
// overlap its round trips while memory stays bounded on a large disk.
StatusOr<SlotContents> ScanRecords(BlockReader& disk, Report& report) {
  constexpr std::uint64_t kSlotsPerBatch = 1024;
  SlotContents contents(report.slots);
  for (std::uint64_t first = 1; first < report.slots; first += kSlotsPerBatch) {
    const std::uint64_t end = std::min(report.slots, first + kSlotsPerBatch);
    std::vector<std::uint64_t> offsets;
    for (std::uint64_t slot = first; slot < end; ++slot) offsets.push_back(slot * kSlotBytes);
    StatusOr<std::vector<std::string>> sectors = disk.ReadMany(offsets, kSectorBytes);
    if (!sectors.ok()) {
      return sectors.status().Annotate("reading slots " + std::to_string(first) + ".." + std::to_string(end - 1));
    }
    for (std::uint64_t slot = first; slot < end; ++slot) ExamineSlot(slot, (*sectors)[slot - first], contents, report);
  }
  return contents;
}

void FindHoles(const SlotContents& contents, Report& report) {
  if (!report.newest_seq_on_disk) return;
  const std::uint64_t newest = *report.newest_seq_on_disk;
  // Counts up to newest inclusive without `seq <= newest`, which never ends at UINT64_MAX.
  for (std::uint64_t seq = WindowStart(newest, report.slots);; ++seq) {
    if (!HoldsSeq(contents, report.slots, seq)) {
      if (report.oldest_seq_in_window) report.holes.Add(seq);
    } else if (!report.oldest_seq_in_window) {
      report.oldest_seq_in_window = seq;
    }
    if (seq == newest) break;
  }
}

// ACKed records that should still be on disk but are not, or were replaced by a record of
// another boot with the same seq.
void FindAckedMissing(const SlotContents& contents, const std::map<std::uint64_t, std::string>& acked,
                      const AnalyseOptions& options, Report& report) {
  std::optional<std::uint64_t> top = report.newest_seq_on_disk;
  if (!options.prefix_mode && report.last_acked_seq) top = std::max(top.value_or(0), *report.last_acked_seq);
  if (!top) return;
  for (auto it = acked.lower_bound(WindowStart(*top, report.slots)); it != acked.end() && it->first <= *top;
       ++it) {
    const std::optional<Record>& record = contents[SlotForSeq(it->first, report.slots)];
    if (!record || record->seq != it->first || record->boot != it->second) report.acked_missing.Add(it->first);
  }
}

void CollectBootIds(const SerialLog& serial, const SlotContents& contents, Report& report) {
  report.boot_ids = serial.boot_ids;
  std::vector<std::pair<std::uint64_t, std::string>> by_seq;
  for (const std::optional<Record>& record : contents) {
    if (record) by_seq.emplace_back(record->seq, record->boot);
  }
  std::sort(by_seq.begin(), by_seq.end());
  for (auto& [seq, boot] : by_seq) {
    if (std::find(report.boot_ids.begin(), report.boot_ids.end(), boot) == report.boot_ids.end()) {
      report.boot_ids.push_back(std::move(boot));
    }
  }
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string SeqOrNone(const std::optional<std::uint64_t>& seq) {
  return seq ? "seq " + std::to_string(*seq) : "none";
}

void JudgeVerdict(const AnalyseOptions& options, Report& report) {
  std::vector<std::string>& v = report.violations;
  if (report.acked_missing.total > 0) {
    v.push_back("acknowledged loss: " + std::to_string(report.acked_missing.total) +
                " acknowledged record(s) inside the on-disk window are missing or replaced (first: seq " +
                std::to_string(report.acked_missing.items.front()) + ")");
  }
  if (!options.prefix_mode && report.last_acked_seq &&
      report.newest_seq_on_disk.value_or(0) < *report.last_acked_seq) {
    v.push_back("acknowledged loss: newest record on disk is " + SeqOrNone(report.newest_seq_on_disk) +
                " but seq " + std::to_string(*report.last_acked_seq) + " was acknowledged");
  }
  if (report.holes.total > 0) {
    v.push_back("hole: " + std::to_string(report.holes.total) + " sequence number(s) missing between seq " +
                std::to_string(*report.oldest_seq_in_window) + " and seq " +
                std::to_string(*report.newest_seq_on_disk) + " (first: seq " +
                std::to_string(report.holes.items.front()) + ")");
  }
  if (report.corrupt.total > 0) {
    const CorruptSlot& first = report.corrupt.items.front();
    v.push_back("corrupt: " + std::to_string(report.corrupt.total) + " slot(s) hold a bad record (first: slot " +
                std::to_string(first.slot) + ": " + first.reason + ")");
  }
  if (report.boot_ids.size() > 1) {
    v.push_back("restart: " + std::to_string(report.boot_ids.size()) + " boot ids seen: " + Join(report.boot_ids));
  }
  if (options.expect_boot) {
    std::vector<std::string> unexpected;
    for (const std::string& boot : report.boot_ids) {
      if (boot != *options.expect_boot) unexpected.push_back(boot);
    }
    if (!unexpected.empty()) {
      v.push_back("restart: boot id(s) " + Join(unexpected) + " seen, expected only " + *options.expect_boot);
    }
    if (unexpected.size() == report.boot_ids.size()) {
      v.push_back("restart: expected boot id " + *options.expect_boot + " is in neither the serial log nor a record");
    }
  }
  if (report.oops_lines.total > 0) {
    v.push_back("oops: " + std::to_string(report.oops_lines.total) +
                " kernel-trouble line(s) in the serial log (first: " + report.oops_lines.items.front() + ")");
  }
}

}  // namespace

StatusOr<Report> Analyse(BlockReader& disk, std::string_view serial_log, const AnalyseOptions& options) {
  if (options.expect_boot && !IsBootId(*options.expect_boot)) {
    return InvalidArgument("expected boot id '" + *options.expect_boot +
                           "' is not 8 lowercase hex digits (the start of /proc/sys/kernel/random/boot_id)");
  }
  Report report;
  report.prefix_mode = options.prefix_mode;
  report.disk_bytes = disk.Size();
  report.slots = report.disk_bytes / kSlotBytes;
  if (report.slots < 2) {
    return InvalidArgument("disk of " + std::to_string(report.disk_bytes) +
                           " bytes has no record slot: the format needs at least 2 slots of 64 KiB (128 KiB); "
                           "check that --disk names the guest's record disk");
  }
  VS_RETURN_IF_ERROR(ReadHeader(disk, report).Annotate("reading the header in slot 0"));
  VS_ASSIGN_OR_RETURN(const SlotContents contents, ScanRecords(disk, report));
  FindHoles(contents, report);

  const SerialLog serial = ParseSerialLog(serial_log);
  std::map<std::uint64_t, std::string> acked;  // seq -> boot of its latest ACK
  for (const SerialAck& ack : serial.acks) {
    acked[ack.seq] = ack.boot;
    report.last_acked_seq = std::max(report.last_acked_seq.value_or(0), ack.seq);
  }
  report.ack_count = serial.acks.size();
  for (const std::string& line : serial.oops_lines) report.oops_lines.Add(line);
  for (const std::string& line : serial.malformed_lines) report.malformed_serial_lines.Add(line);
  FindAckedMissing(contents, acked, options, report);
  CollectBootIds(serial, contents, report);
  JudgeVerdict(options, report);
  return report;
}

}  // namespace vs::oracle
