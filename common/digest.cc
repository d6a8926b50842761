#include "common/digest.h"

#include <openssl/sha.h>
#include <xxhash.h>

namespace vs {

Sha1Digest Sha1(std::span<const std::byte> bytes) {
  Sha1Digest digest{};
  // The one-shot SHA1() (not deprecated in OpenSSL 3, unlike SHA1_Init and friends): no context to allocate.
  ::SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

std::uint64_t Xxh3_64(std::span<const std::byte> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

}  // namespace vs
