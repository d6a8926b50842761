// Deterministic shadow identity: SHA-1 against published vectors, shadow UUIDs against values
// computed once with Python's uuid.uuid5 (an independent implementation), names, and bad input.
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/digest.h"
#include "shadowd/lifecycle/shadow_identity.h"

namespace vs::lifecycle {
namespace {

using ::testing::HasSubstr;

std::string Hex(const Sha1Digest& digest) {
  std::string hex;
  for (std::uint8_t byte : digest) {
    char pair[3];
    std::snprintf(pair, sizeof pair, "%02x", byte);
    hex += pair;
  }
  return hex;
}

std::string MustShadowUuid(const std::string& primary, std::uint32_t index) {
  StatusOr<std::string> uuid = ShadowUuid(primary, index);
  EXPECT_TRUE(uuid.ok()) << uuid.status().ToString();
  return uuid.ok() ? uuid.value() : "";
}

TEST(LifecycleSha1, MatchesPublishedVectors) {
  EXPECT_EQ(Hex(Sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Hex(Sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Hex(Sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(Hex(Sha1(std::string(1'000'000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(LifecycleSha1, PaddingBoundariesAreHandled) {
  // 55 bytes fit one block with the length; 56 need a second block; 64 fill a block exactly.
  EXPECT_EQ(Hex(Sha1(std::string(55, 'x'))), "cef734ba81a024479e09eb5a75b6ddae62e6abf1");
  EXPECT_EQ(Hex(Sha1(std::string(56, 'x'))), "901305367c259952f4e7af8323f480d59f81335b");
  EXPECT_EQ(Hex(Sha1(std::string(64, 'x'))), "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163");
}

TEST(LifecycleShadowIdentity, ShadowUuidsAreStableAcrossRunsAndPlatforms) {
  // Persisted values: if one of these changes, existing shadows would be duplicated.
  EXPECT_EQ(MustShadowUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff", 0), "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e");
  EXPECT_EQ(MustShadowUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff", 1), "2107119a-d2d0-5af3-af7b-0aa1e9b414dc");
  EXPECT_EQ(MustShadowUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff", 2), "f2fe4b2f-267d-51c3-8d6e-ed7cd0d0a54e");
  EXPECT_EQ(MustShadowUuid("00000000-0000-0000-0000-000000000000", 0), "23379788-45e8-5700-b610-36c311a370ec");
  EXPECT_EQ(MustShadowUuid("00000000-0000-0000-0000-000000000000", 1), "fe2aba97-d68f-504a-8896-2d46534a4441");
}

TEST(LifecycleShadowIdentity, ThePrimaryUuidsCaseDoesNotMatter) {
  EXPECT_EQ(MustShadowUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF", 0), "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e");
  StatusOr<std::string> canonical = CanonicalUuid("6F9619FF-8B86-D011-B42D-00C04FC964fF");
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(canonical.value(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
}

TEST(LifecycleShadowIdentity, DistinctPrimariesAndIndicesGiveDistinctVersion5Uuids) {
  std::set<std::string> seen;
  for (int vm = 0; vm < 1000; ++vm) {
    char primary[37];
    std::snprintf(primary, sizeof primary, "%08x-0000-4000-8000-%012x", vm * 7919, vm);
    for (std::uint32_t index = 0; index < 3; ++index) {
      const std::string uuid = MustShadowUuid(primary, index);
      ASSERT_EQ(uuid.size(), 36u);
      EXPECT_EQ(uuid[14], '5') << uuid;                                 // version
      EXPECT_NE(std::string("89ab").find(uuid[19]), std::string::npos) << uuid;  // RFC variant
      EXPECT_NE(uuid, std::string(primary));
      seen.insert(uuid);
    }
  }
  EXPECT_EQ(seen.size(), 3000u);
}

TEST(LifecycleShadowIdentity, MalformedPrimaryUuidsAreRejectedQuotingThem) {
  const std::vector<std::string> malformed = {
      "",
      "not-a-uuid",
      "6f9619ff-8b86-d011-b42d-00c04fc964f",     // one digit short
      "6f9619ff-8b86-d011-b42d-00c04fc964fff",   // one digit long
      "6f9619ffx8b86-d011-b42d-00c04fc964ff",    // separator not a hyphen
      "6f9619ff8-b86-d011-b42d-00c04fc964ff",    // hyphen misplaced
      "6f9619ff-8b86-d011-b42d-00c04fc964fg",    // not hex
      "{6f9619ff-8b86-d011-b42d-00c04fc964f}",   // braces
      std::string("6f9619ff-8b86-d011-b42d-00c04fc9\0\0ff", 36),  // embedded NULs
  };
  for (const std::string& bad : malformed) {
    StatusOr<std::string> uuid = ShadowUuid(bad, 0);
    ASSERT_FALSE(uuid.ok()) << bad;
    EXPECT_EQ(uuid.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(uuid.status().message(), HasSubstr("UUID '" + bad + "' is malformed"));
  }
}

TEST(LifecycleShadowIdentity, ShadowNamesCarryTheIndexAfterTheFirst) {
  EXPECT_EQ(ShadowName("web", 0), "web-shadow");
  EXPECT_EQ(ShadowName("web", 1), "web-shadow1");
  EXPECT_EQ(ShadowName("db-01", 2), "db-01-shadow2");
}

}  // namespace
}  // namespace vs::lifecycle
