#include "shadowd/store/envelope.h"

#include <gtest/gtest.h>

#include <string>

namespace vs::store {
namespace {

TEST(StoreEnvelopeTest, Crc32cMatchesPublishedCheckValues) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);              // the CRC catalogue's check value
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720 B.4
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720 B.4
}

TEST(StoreEnvelopeTest, RoundTripsAnyPayload) {
  for (const std::string& payload :
       {std::string(), std::string("x"), std::string("\0VSE1\0", 6), std::string(70000, 'q')}) {
    const std::string stored = EncodeEnvelope(payload);
    EXPECT_EQ(stored.size(), kEnvelopeHeaderBytes + payload.size());
    EXPECT_EQ(stored.substr(0, 5), std::string("VSE1\x01"));
    StatusOr<std::string> decoded = DecodeEnvelope("vm/k", stored);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, payload);
  }
}

TEST(StoreEnvelopeTest, EveryTruncationOrExtensionIsDataLoss) {
  const std::string stored = EncodeEnvelope("a protobuf payload");
  for (size_t len = 0; len < stored.size(); ++len) {
    StatusOr<std::string> decoded = DecodeEnvelope("vm/k", stored.substr(0, len));
    EXPECT_EQ(decoded.status().code(), Code::kDataLoss) << "length " << len;
    EXPECT_NE(decoded.status().message().find("'vm/k'"), std::string::npos);
  }
  EXPECT_EQ(DecodeEnvelope("vm/k", stored + "z").status().code(), Code::kDataLoss);
}

TEST(StoreEnvelopeTest, EveryFlippedBitIsDataLoss) {
  const std::string stored = EncodeEnvelope("state");
  for (size_t byte = 0; byte < stored.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = stored;
      damaged[byte] = static_cast<char>(damaged[byte] ^ (1 << bit));
      EXPECT_EQ(DecodeEnvelope("vm/k", damaged).status().code(), Code::kDataLoss) << byte << ":" << bit;
    }
  }
}

TEST(StoreEnvelopeTest, MessagesSayWhatIsWrong) {
  std::string stored = EncodeEnvelope("state");
  EXPECT_NE(DecodeEnvelope("vm/k", "abc").status().message().find("truncated: 3 bytes"), std::string::npos);
  EXPECT_NE(DecodeEnvelope("vm/k", "XXXX" + stored.substr(4)).status().message().find("magic"), std::string::npos);
  std::string future = stored;
  future[4] = 2;
  EXPECT_NE(DecodeEnvelope("vm/k", future).status().message().find("envelope format 2; this shadowd reads format 1"),
            std::string::npos);
  std::string flipped = stored;
  flipped.back() ^= 0x20;
  EXPECT_NE(DecodeEnvelope("vm/k", flipped).status().message().find("fails its checksum"), std::string::npos);
  EXPECT_NE(DecodeEnvelope("vm/k", stored.substr(0, stored.size() - 1))
                .status()
                .message()
                .find("4 payload bytes but its header says 5"),
            std::string::npos);
}

}  // namespace
}  // namespace vs::store
