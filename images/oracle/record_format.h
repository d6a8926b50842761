// Parsers for the on-disk part of the test guest's record format (docs/record-format.md):
// the header sector in slot 0 and the record sector in slots 1..slots-1.
//
// Pure functions over one 512-byte sector; thread-safe. A sector that does not follow the
// format yields InvalidArgument whose message is the human-readable reason (it ends up in the
// oracle's report as the "corrupt" reason, so it names the field and the value found).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::oracle {

inline constexpr std::uint64_t kSlotBytes = 64 * 1024;  // the dirty-bitmap granularity
inline constexpr std::uint64_t kSectorBytes = 512;      // one record or header per slot
inline constexpr std::string_view kRecordMagic = "VSREC ";
inline constexpr std::string_view kHeaderMagic = "VSHDR ";

struct Record {
  std::uint64_t seq = 0;  // >= 1
  std::string boot;       // 8 lowercase hex digits
  std::string uptime;     // as written, e.g. "12.34"
};

struct Header {
  std::uint64_t last = 0;  // last record written
  std::string boot;
};

// The slot (1..slots-1) that record `seq` (>= 1) lives in on a disk of `slots` slots (>= 2).
std::uint64_t SlotForSeq(std::uint64_t seq, std::uint64_t slots);

// True when the sector starts with "VSREC ": the format says anything else is an empty slot.
bool LooksLikeRecord(std::string_view sector);

// Parses a record sector: `VSREC v1 seq=<N> boot=<BOOT> up=<UPTIME> crc=<CRC>` "\n", then only
// NUL bytes, and checks the CRC. Does not check the slot (see SlotForSeq).
StatusOr<Record> ParseRecordSector(std::string_view sector);

// True when the sector starts with "VSHDR ".
bool LooksLikeHeader(std::string_view sector);

// Parses a header sector: `VSHDR v1 last=<N> boot=<BOOT>`, then only NUL bytes.
StatusOr<Header> ParseHeaderSector(std::string_view sector);

// True for exactly 8 lowercase hex digits, the form of BOOT everywhere in the format.
bool IsBootId(std::string_view text);

}  // namespace vs::oracle
