// Builders for oracle tests: disk images and serial logs that follow docs/record-format.md,
// plus deliberate deviations from it. Test-only; values, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "images/oracle/crc32.h"
#include "images/oracle/record_format.h"

namespace vs::oracle::testing {

inline constexpr std::string_view kBootA = "abcd1234";
inline constexpr std::string_view kBootB = "0f0e0d0c";

// The record line without its " crc=" part, as the guest checksums it.
inline std::string RecordBody(std::uint64_t seq, std::string_view boot, std::string_view uptime = "1.00") {
  return "VSREC v1 seq=" + std::to_string(seq) + " boot=" + std::string(boot) + " up=" + std::string(uptime);
}

// Pads to one sector with NULs, like `dd conv=sync`.
inline std::string Sector(std::string text) {
  text.resize(kSectorBytes, '\0');
  return text;
}

inline std::string RecordSector(std::uint64_t seq, std::string_view boot, std::string_view uptime = "1.00") {
  const std::string body = RecordBody(seq, boot, uptime);
  return Sector(body + " crc=" + Crc32Hex(body) + "\n");
}

class TestImage {
 public:
  explicit TestImage(std::uint64_t slots) : bytes_(slots * kSlotBytes, '\0') {}

  std::uint64_t slots() const { return bytes_.size() / kSlotBytes; }
  const std::string& bytes() const { return bytes_; }

  void PutSector(std::uint64_t slot, const std::string& sector) { bytes_.replace(slot * kSlotBytes, sector.size(), sector); }

  // Record `seq` in its home slot, then the header naming it, as the guest writes them.
  void Write(std::uint64_t seq, std::string_view boot) {
    PutSector(SlotForSeq(seq, slots()), RecordSector(seq, boot));
    PutSector(0, Sector("VSHDR v1 last=" + std::to_string(seq) + " boot=" + std::string(boot) + "\n"));
  }
  void WriteRange(std::uint64_t first, std::uint64_t last, std::string_view boot) {
    for (std::uint64_t seq = first; seq <= last; ++seq) Write(seq, boot);
  }

 private:
  std::string bytes_;
};

inline std::string AckLine(std::uint64_t seq, std::string_view boot) {
  return "VS-ACK seq=" + std::to_string(seq) + " boot=" + std::string(boot) + "\n";
}

inline std::string BootLine(std::string_view boot, std::uint64_t resume) {
  return "VS-BOOT boot=" + std::string(boot) + " resume=" + std::to_string(resume) + "\n";
}

// A serial log of a run that booted as `boot` after record `resume` and ACKed first..last.
inline std::string RunLog(std::string_view boot, std::uint64_t resume, std::uint64_t first, std::uint64_t last) {
  std::string log = BootLine(boot, resume);
  for (std::uint64_t seq = first; seq <= last; ++seq) log += AckLine(seq, boot);
  return log;
}

}  // namespace vs::oracle::testing
