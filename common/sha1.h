// SHA-1 (FIPS 180-4) of a byte string, for name-based (version 5) UUIDs and replication block digests.
//
// Why a local implementation: shadow identities must be bit-for-bit stable across runs, builds and
// platforms because they are persisted, and SHA-1 is what RFC 9562 prescribes for version-5 UUIDs.
// It is NOT used for anything security-relevant (SHA-1 is broken for collision resistance), so a
// small portable implementation is enough and avoids a crypto-library dependency.
//
// Thread-safety: a pure function. Failure modes: none (any input length is accepted).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace vs {

using Sha1Digest = std::array<std::uint8_t, 20>;

Sha1Digest Sha1(std::string_view bytes);

}  // namespace vs
