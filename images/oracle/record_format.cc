#include "images/oracle/record_format.h"

#include <algorithm>

#include "images/oracle/crc32.h"
#include "images/oracle/text_scan.h"

namespace vs::oracle {
namespace {

// Shows a short, printable excerpt of hostile bytes inside an error message, up to the NUL
// padding.
std::string Excerpt(std::string_view text) {
  constexpr std::size_t kMaxChars = 24;
  text = text.substr(0, text.find('\0'));
  std::string out;
  for (char c : text.substr(0, std::min(text.size(), kMaxChars))) {
    out += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  if (text.size() > kMaxChars) out += "...";
  return "'" + out + "'";
}

Status ExpectOnlyNuls(std::string_view rest, std::string_view what) {
  const std::size_t bad = rest.find_first_not_of('\0');
  if (bad == std::string_view::npos) return Status::Ok();
  return InvalidArgument("non-NUL bytes after the " + std::string(what) + " " + Excerpt(rest.substr(bad)));
}

// Parses the "<name>=" prefix then a decimal number.
Status ConsumeNumberField(std::string_view& text, std::string_view name, std::uint64_t& value) {
  if (!scan::ConsumeLiteral(text, name) || !scan::ConsumeLiteral(text, "=")) {
    return InvalidArgument("expected field '" + std::string(name) + "=' at " + Excerpt(text));
  }
  if (!scan::ConsumeUint64(text, value)) {
    return InvalidArgument("field " + std::string(name) + ": not a 64-bit decimal number at " + Excerpt(text));
  }
  return Status::Ok();
}

Status ConsumeBootField(std::string_view& text, std::string& boot) {
  std::string_view found;
  if (!scan::ConsumeLiteral(text, "boot=")) return InvalidArgument("expected field 'boot=' at " + Excerpt(text));
  if (!scan::ConsumeBootId(text, found)) {
    return InvalidArgument("field boot: want 8 lowercase hex digits, got " + Excerpt(text));
  }
  boot = std::string(found);
  return Status::Ok();
}

Status ConsumeSpace(std::string_view& text) {
  if (!scan::ConsumeLiteral(text, " ")) return InvalidArgument("expected ' ' at " + Excerpt(text));
  return Status::Ok();
}

// UPTIME as /proc/uptime prints it: digits, optionally '.' and digits.
Status ConsumeUptimeField(std::string_view& text, std::string& uptime) {
  if (!scan::ConsumeLiteral(text, "up=")) return InvalidArgument("expected field 'up=' at " + Excerpt(text));
  std::size_t end = 0;
  while (end < text.size() && scan::IsDigit(text[end])) ++end;
  const std::size_t integer_digits = end;
  if (end < text.size() && text[end] == '.') {
    ++end;
    const std::size_t fraction_start = end;
    while (end < text.size() && scan::IsDigit(text[end])) ++end;
    if (end == fraction_start) end = 0;  // "12." is not an uptime
  }
  if (integer_digits == 0 || end == 0) {
    return InvalidArgument("field up: want a number like 12.34, got " + Excerpt(text));
  }
  uptime = std::string(text.substr(0, end));
  text.remove_prefix(end);
  return Status::Ok();
}

}  // namespace

std::uint64_t SlotForSeq(std::uint64_t seq, std::uint64_t slots) { return 1 + (seq - 1) % (slots - 1); }

bool LooksLikeRecord(std::string_view sector) { return sector.starts_with(kRecordMagic); }
bool LooksLikeHeader(std::string_view sector) { return sector.starts_with(kHeaderMagic); }

bool IsBootId(std::string_view text) {
  std::string_view boot;
  return scan::ConsumeBootId(text, boot) && text.empty();
}

StatusOr<Record> ParseRecordSector(std::string_view sector) {
  std::string_view text = sector;
  if (!scan::ConsumeLiteral(text, kRecordMagic) || !scan::ConsumeLiteral(text, "v1 ")) {
    return InvalidArgument("expected 'VSREC v1 ', got " + Excerpt(sector));
  }
  Record record;
  VS_RETURN_IF_ERROR(ConsumeNumberField(text, "seq", record.seq));
  if (record.seq == 0) return InvalidArgument("field seq: 0 is not a record number (they start at 1)");
  VS_RETURN_IF_ERROR(ConsumeSpace(text));
  VS_RETURN_IF_ERROR(ConsumeBootField(text, record.boot));
  VS_RETURN_IF_ERROR(ConsumeSpace(text));
  VS_RETURN_IF_ERROR(ConsumeUptimeField(text, record.uptime));
  // The CRC covers everything before " crc=".
  const std::string_view covered = sector.substr(0, sector.size() - text.size());
  VS_RETURN_IF_ERROR(ConsumeSpace(text));
  if (!scan::ConsumeLiteral(text, "crc=")) return InvalidArgument("expected 'crc=', got " + Excerpt(text));
  std::size_t hex_digits = 0;
  while (hex_digits < text.size() && scan::IsLowerHex(text[hex_digits])) ++hex_digits;
  if (hex_digits != 8) {
    return InvalidArgument("field crc: want 8 lowercase hex digits, got " + Excerpt(text));
  }
  const std::string stored_crc(text.substr(0, 8));
  text.remove_prefix(8);
  if (!scan::ConsumeLiteral(text, "\n")) return InvalidArgument("expected newline after crc, got " + Excerpt(text));
  VS_RETURN_IF_ERROR(ExpectOnlyNuls(text, "record line"));
  const std::string computed_crc = Crc32Hex(covered);
  if (stored_crc != computed_crc) {
    return InvalidArgument("crc mismatch: stored " + stored_crc + ", computed " + computed_crc);
  }
  return record;
}

StatusOr<Header> ParseHeaderSector(std::string_view sector) {
  std::string_view text = sector;
  if (!scan::ConsumeLiteral(text, kHeaderMagic) || !scan::ConsumeLiteral(text, "v1 ")) {
    return InvalidArgument("expected 'VSHDR v1 ', got " + Excerpt(sector));
  }
  Header header;
  VS_RETURN_IF_ERROR(ConsumeNumberField(text, "last", header.last));
  VS_RETURN_IF_ERROR(ConsumeSpace(text));
  VS_RETURN_IF_ERROR(ConsumeBootField(text, header.boot));
  if (!scan::ConsumeLiteral(text, "\n")) return InvalidArgument("expected newline after boot, got " + Excerpt(text));
  VS_RETURN_IF_ERROR(ExpectOnlyNuls(text, "header line"));
  return header;
}

}  // namespace vs::oracle
