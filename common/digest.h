// Digests, from Debian's libraries rather than written by hand:
//   - SHA-1 from OpenSSL's libcrypto, for name-based (version 5) UUIDs, which RFC 9562 defines with SHA-1. Shadow
//     identities are persisted, so they must stay bit-for-bit the same: SHA-1 is a fixed function, whoever computes
//     it. Nothing here relies on SHA-1's collision resistance, which is broken.
//   - XXH3 (64-bit) from libxxhash, for replication's block digests. They guard against bugs and torn copies, not
//     against attackers (TLS does that on the wire), so a fast non-cryptographic hash is the right tool: on this
//     machine XXH3 hashes ~16 GB/s on one core, OpenSSL's SHA-1 ~1.6 GB/s, and the hand-written SHA-1 this replaced
//     150 MB/s, slower than a 1 Gbit/s link. XXH3's output is specified and stable since xxHash 0.8.0.
//
// Thread-safety: pure functions. Failure modes: none (any input length is accepted).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vs {

using Sha1Digest = std::array<std::uint8_t, 20>;

Sha1Digest Sha1(std::span<const std::byte> bytes);
inline Sha1Digest Sha1(std::string_view bytes) { return Sha1(std::as_bytes(std::span(bytes))); }

std::uint64_t Xxh3_64(std::span<const std::byte> bytes);

}  // namespace vs
