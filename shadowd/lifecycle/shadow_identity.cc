#include "shadowd/lifecycle/shadow_identity.h"

#include <array>
#include <cctype>
#include <cstddef>

#include "common/digest.h"

namespace vs::lifecycle {
namespace {

using UuidBytes = std::array<std::uint8_t, 16>;

constexpr std::string_view kHexDigits = "0123456789abcdef";

bool IsHyphenPosition(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

int HexValue(char c) {
  const auto lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t pos = kHexDigits.find(lower);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

StatusOr<UuidBytes> ParseUuid(std::string_view text) {
  const auto malformed = [&](std::string_view what) {
    return InvalidArgument("UUID '" + std::string(text) + "' is malformed (" + std::string(what) +
                           "); expected 8-4-4-4-12 hex digits like 6f9619ff-8b86-d011-b42d-00c04fc964ff");
  };
  if (text.size() != 36) return malformed("length " + std::to_string(text.size()) + ", not 36");
  UuidBytes bytes{};
  std::size_t nibble = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (IsHyphenPosition(i)) {
      if (text[i] != '-') return malformed("no '-' at position " + std::to_string(i));
      continue;
    }
    const int value = HexValue(text[i]);
    if (value < 0) return malformed("non-hex character at position " + std::to_string(i));
    bytes[nibble / 2] = static_cast<std::uint8_t>(bytes[nibble / 2] | (value << (nibble % 2 ? 0 : 4)));
    ++nibble;
  }
  return bytes;
}

std::string FormatUuid(const UuidBytes& bytes) {
  std::string text;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(kHexDigits[bytes[i] >> 4]);
    text.push_back(kHexDigits[bytes[i] & 0x0F]);
  }
  return text;
}

}  // namespace

StatusOr<std::string> CanonicalUuid(std::string_view text) {
  VS_ASSIGN_OR_RETURN(UuidBytes bytes, ParseUuid(text));
  return FormatUuid(bytes);
}

StatusOr<std::string> ShadowUuid(std::string_view primary_uuid, std::uint32_t index) {
  VS_ASSIGN_OR_RETURN(std::string primary, CanonicalUuid(primary_uuid));
  VS_ASSIGN_OR_RETURN(UuidBytes name_space, ParseUuid(kShadowUuidNamespace));

  // RFC 9562 section 5.5: SHA-1 over namespace bytes then name bytes; the first 16 bytes of the
  // digest with the version (5) and variant (10xx) bits overwritten.
  std::string input(name_space.begin(), name_space.end());
  input += primary + "/" + std::to_string(index);
  const Sha1Digest digest = Sha1(input);
  UuidBytes uuid{};
  for (std::size_t i = 0; i < uuid.size(); ++i) uuid[i] = digest[i];
  uuid[6] = static_cast<std::uint8_t>((uuid[6] & 0x0F) | 0x50);
  uuid[8] = static_cast<std::uint8_t>((uuid[8] & 0x3F) | 0x80);
  return FormatUuid(uuid);
}

std::string ShadowName(std::string_view primary_name, std::uint32_t index) {
  std::string name = std::string(primary_name) + "-shadow";
  if (index > 0) name += std::to_string(index);
  return name;
}

}  // namespace vs::lifecycle
