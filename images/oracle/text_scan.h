// Tiny left-to-right scanner for the record and serial formats (internal to vs_oracle).
//
// Each Consume* call advances the view past what it matched and returns true, or leaves it
// unchanged and returns false. Pure; no allocation; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace vs::oracle::scan {

inline bool ConsumeLiteral(std::string_view& text, std::string_view literal) {
  if (!text.starts_with(literal)) return false;
  text.remove_prefix(literal.size());
  return true;
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

// One or more decimal digits that fit in 64 bits.
inline bool ConsumeUint64(std::string_view& text, std::uint64_t& value) {
  std::uint64_t result = 0;
  std::size_t i = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    const std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
    if (result > (UINT64_MAX - digit) / 10) return false;  // overflow
    result = result * 10 + digit;
  }
  if (i == 0) return false;
  text.remove_prefix(i);
  value = result;
  return true;
}

// Exactly 8 lowercase hex digits (BOOT), not followed by another hex digit.
inline bool ConsumeBootId(std::string_view& text, std::string_view& boot) {
  constexpr std::size_t kBootChars = 8;
  if (text.size() < kBootChars) return false;
  for (std::size_t i = 0; i < kBootChars; ++i) {
    if (!IsLowerHex(text[i])) return false;
  }
  if (text.size() > kBootChars && IsLowerHex(text[kBootChars])) return false;
  boot = text.substr(0, kBootChars);
  text.remove_prefix(kBootChars);
  return true;
}

}  // namespace vs::oracle::scan
