// ResolveNovaPolicy: precedence flavor > image > server metadata, the values (names, default, none/off), the
// source text, and the errors.
#include "shadowd/nova/nova_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::nova {
namespace {

using ::testing::HasSubstr;

using Map = std::map<std::string, std::string>;

policy::Policy Gold() {
  policy::Policy p;
  p.critical = true;
  p.priority = 500;
  return p;
}
policy::Policy Silver() {
  policy::Policy p;
  p.vcpus = policy::ResourceSpec::Absolute(1);
  return p;
}
const std::map<std::string, policy::Policy> kNamed = {{"gold", Gold()}, {"silver", Silver()}};

NovaServer Server(Map extra_specs, Map metadata, std::string image_id = "img-1") {
  NovaServer server;
  server.id = "srv-1";
  server.flavor.name = "vs.small";
  server.flavor.extra_specs = std::move(extra_specs);
  server.metadata = std::move(metadata);
  server.image_id = std::move(image_id);
  return server;
}

NovaOptions Keys() { return NovaOptions(); }

const std::string kKey = "virt_shadow:policy";
const std::string kImageKey = "virt_shadow_policy";

std::optional<policy::Policy> Resolved(const NovaPolicyResult& result) {
  EXPECT_TRUE(result.policy.ok()) << result.policy.status().ToString();
  return result.policy.ok() ? *result.policy : std::nullopt;
}

TEST(NovaPolicyTest, NothingNamedIsUnprotected) {
  NovaPolicyResult result = ResolveNovaPolicy(Server({{"hw:cpu_policy", "shared"}}, {{"owner", "x"}}),
                                              {{"name", "debian"}}, kNamed, Keys());
  EXPECT_EQ(Resolved(result), std::nullopt);
  EXPECT_EQ(result.source, "");
}

TEST(NovaPolicyTest, EachPlaceAloneNamesThePolicy) {
  NovaPolicyResult flavor = ResolveNovaPolicy(Server({{kKey, "gold"}}, {}), {}, kNamed, Keys());
  EXPECT_EQ(Resolved(flavor), Gold());
  EXPECT_EQ(flavor.source, "flavor vs.small extra spec virt_shadow:policy=gold");

  NovaPolicyResult image = ResolveNovaPolicy(Server({}, {}), {{kImageKey, "silver"}}, kNamed, Keys());
  EXPECT_EQ(Resolved(image), Silver());
  EXPECT_EQ(image.source, "image img-1 property virt_shadow_policy=silver");

  NovaPolicyResult server = ResolveNovaPolicy(Server({}, {{kKey, "default"}}), {}, kNamed, Keys());
  EXPECT_EQ(Resolved(server), policy::Policy{});
  EXPECT_EQ(server.source, "server srv-1 metadata virt_shadow:policy=default");
}

TEST(NovaPolicyTest, FlavorWinsOverImageWhichWinsOverTheServer) {
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{kKey, "gold"}}, {{kKey, "silver"}}), {{kImageKey, "silver"}},
                                       kNamed, Keys())),
            Gold());
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({}, {{kKey, "gold"}}), {{kImageKey, "silver"}}, kNamed, Keys())),
            Silver());
  // The server's metadata is the user's: it counts only when neither the flavor nor the image says anything.
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{"other", "x"}}, {{kKey, "gold"}}), {{"other", "y"}}, kNamed, Keys())),
            Gold());
}

TEST(NovaPolicyTest, NoneOnTheFlavorForbidsProtectionWhateverTheOthersSay) {
  for (const std::string none : {"none", "off", "None", " OFF "}) {
    NovaPolicyResult result =
        ResolveNovaPolicy(Server({{kKey, none}}, {{kKey, "gold"}}), {{kImageKey, "gold"}}, kNamed, Keys());
    EXPECT_EQ(Resolved(result), std::nullopt) << none;
    EXPECT_THAT(result.source, HasSubstr("flavor vs.small extra spec")) << none;
  }
  // none on the image overrides the server; the flavor's offer overrides the image's none.
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({}, {{kKey, "gold"}}), {{kImageKey, "none"}}, kNamed, Keys())),
            std::nullopt);
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{kKey, "silver"}}, {}), {{kImageKey, "none"}}, kNamed, Keys())),
            Silver());
}

TEST(NovaPolicyTest, ValuesAreTrimmedKeywordsAnyCaseNamesExact) {
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{kKey, " gold\t"}}, {}), {}, kNamed, Keys())), Gold());
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{kKey, "Default"}}, {}), {}, kNamed, Keys())), policy::Policy{});
  EXPECT_FALSE(ResolveNovaPolicy(Server({{kKey, "Gold"}}, {}), {}, kNamed, Keys()).policy.ok());
}

TEST(NovaPolicyTest, UnknownOrEmptyNamesAreErrorsNamingSourceNameAndTheConfiguredOnes) {
  NovaPolicyResult result =
      ResolveNovaPolicy(Server({}, {{kKey, "platinum"}}), {{kImageKey, ""}}, kNamed, Keys());  // the image decides
  ASSERT_FALSE(result.policy.ok());
  EXPECT_EQ(result.policy.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(result.policy.status().message(), HasSubstr("image img-1 property virt_shadow_policy=: the value is empty"));
  EXPECT_THAT(result.policy.status().message(), HasSubstr("gold, silver"));

  result = ResolveNovaPolicy(Server({}, {{kKey, "platinum"}}), {}, kNamed, Keys());
  ASSERT_FALSE(result.policy.ok());
  EXPECT_EQ(result.source, "server srv-1 metadata virt_shadow:policy=platinum");
  EXPECT_THAT(result.policy.status().message(),
              HasSubstr("server srv-1 metadata virt_shadow:policy=platinum: no policy 'platinum' in shadowd.conf; "
                        "the policies configured are gold, silver ([policy.NAME] sections), besides default and none"));

  result = ResolveNovaPolicy(Server({{kKey, "gold"}}, {}), {}, {}, Keys());
  ASSERT_FALSE(result.policy.ok());
  EXPECT_THAT(result.policy.status().message(), HasSubstr("the policies configured are none"));

  // A hostile value is quoted bounded and printable.
  result = ResolveNovaPolicy(Server({{kKey, std::string(500, 'x') + "\n"}}, {}), {}, kNamed, Keys());
  ASSERT_FALSE(result.policy.ok());
  EXPECT_LT(result.policy.status().message().size(), 400u);
  EXPECT_EQ(result.policy.status().message().find('\n'), std::string::npos);
}

TEST(NovaPolicyTest, KeysComeFromTheOptions) {
  NovaOptions options;
  options.policy_key = "acme:shadow";
  options.image_property = "acme_shadow";
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{kKey, "gold"}}, {}), {}, kNamed, options)), std::nullopt);
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({{"acme:shadow", "gold"}}, {}), {}, kNamed, options)), Gold());
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({}, {}), {{"acme_shadow", "silver"}}, kNamed, options)), Silver());
  EXPECT_EQ(Resolved(ResolveNovaPolicy(Server({}, {{"acme:shadow", "default"}}), {}, kNamed, options)),
            policy::Policy{});
}

}  // namespace
}  // namespace vs::nova
