// Parser for the test guest's serial console log (docs/record-format.md, "On the serial console").
//
// Finds `VS-ACK seq=<N> boot=<BOOT>` and `VS-BOOT boot=<BOOT> resume=<N>` tokens anywhere in a
// line (kernel messages interleave with the workload's output) and kernel-trouble lines.
// Pure function over the whole log text; thread-safe. It never fails: a token that does not
// parse (e.g. torn by an interleaved kernel message) is kept verbatim in malformed_lines so the
// report can show it instead of silently counting fewer acknowledgements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vs::oracle {

struct SerialAck {
  std::uint64_t seq = 0;
  std::string boot;
};

struct SerialLog {
  std::vector<SerialAck> acks;                // in log order
  std::vector<std::string> boot_ids;          // from VS-BOOT and VS-ACK tokens, first appearance order
  std::vector<std::string> oops_lines;        // verbatim (without the line ending)
  std::vector<std::string> malformed_lines;   // lines holding a VS-ACK/VS-BOOT token that does not parse
};

SerialLog ParseSerialLog(std::string_view text);

}  // namespace vs::oracle
