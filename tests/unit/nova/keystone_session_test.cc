// KeystoneSession: the token request, the catalog's endpoints, renewal before expiry and after a 401, errors.
#include "shadowd/nova/keystone_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/nova/fake_openstack.h"

namespace vs::nova {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the fakes

const std::string kTokens = std::string("POST ") + kAuthUrl + "/auth/tokens";

TEST(KeystoneSessionTest, FetchesAProjectScopedTokenWithThePassword) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, TokenResponse("tok-1"));
  KeystoneSession session(Options(), http, clock);
  StatusOr<Token> token = session.Current();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->id, "tok-1");
  EXPECT_EQ(token->compute_url, kCompute);
  EXPECT_EQ(token->image_url, kImage);
  EXPECT_EQ(token->placement_url, kPlacement);

  ASSERT_EQ(http.requests.size(), 1u);
  const notice::HttpRequest& request = http.requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "http://10.77.0.1:5000/v3/auth/tokens");
  EXPECT_EQ(HeaderOf(request, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(request, "X-Auth-Token"), "");
  EXPECT_EQ(request.timeout, std::chrono::seconds(7));
  const nlohmann::json expected = nlohmann::json::parse(R"({"auth": {
      "identity": {"methods": ["password"], "password": {"user": {"name": "virt-shadow",
                   "domain": {"name": "Default"}, "password": "pw-never-printed"}}},
      "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}})");
  EXPECT_EQ(nlohmann::json::parse(request.body), expected);
}

TEST(KeystoneSessionTest, EndpointsFollowInterfaceAndRegion) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, TokenResponse("tok"));
  NovaOptions internal = Options();
  internal.interface = "internal";
  StatusOr<Token> token = KeystoneSession(internal, http, clock).Current();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->compute_url, "http://10.0.0.1:8774/v2.1");
  EXPECT_EQ(token->placement_url, "http://10.0.0.1:8778");

  NovaOptions two = Options();
  two.region_name = "RegionTwo";
  token = KeystoneSession(two, http, clock).Current();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->compute_url, "http://10.88.0.1:8774/v2.1");  // the trailing '/' dropped
  EXPECT_EQ(token->image_url, "");                             // RegionTwo has no image service
  StatusOr<std::string> image = token->Endpoint(Service::kImage, two);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(image.status().message(), HasSubstr("no image endpoint with interface public in region RegionTwo"));
}

TEST(KeystoneSessionTest, TokenIsReusedThenRenewedBeforeItExpires) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, TokenResponse("tok-1", 60));
  http.Queue(kTokens, TokenResponse("tok-2", 60));
  KeystoneSession session(Options(), http, clock);
  ASSERT_EQ(session.Current()->id, "tok-1");
  clock.Advance(std::chrono::minutes(54));  // 6 minutes left: more than the 5-minute margin
  EXPECT_EQ(session.Current()->id, "tok-1");
  EXPECT_EQ(http.requests.size(), 1u);
  clock.Advance(std::chrono::minutes(1) + std::chrono::seconds(1));  // under 5 minutes left
  EXPECT_EQ(session.Current()->id, "tok-2");
  EXPECT_EQ(http.requests.size(), 2u);
}

TEST(KeystoneSessionTest, ShortLivedTokensAreRenewedAtFourFifthsOfTheirLife) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, TokenResponse("tok-1", 10));
  http.Queue(kTokens, TokenResponse("tok-2", 10));
  KeystoneSession session(Options(), http, clock);
  ASSERT_EQ(session.Current()->id, "tok-1");
  clock.Advance(std::chrono::minutes(7));
  EXPECT_EQ(session.Current()->id, "tok-1");
  clock.Advance(std::chrono::minutes(1));  // 8 of 10 minutes: renewed
  EXPECT_EQ(session.Current()->id, "tok-2");
}

TEST(KeystoneSessionTest, InvalidateDropsOnlyThatToken) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, TokenResponse("tok-1"));
  http.Queue(kTokens, TokenResponse("tok-2"));
  KeystoneSession session(Options(), http, clock);
  ASSERT_EQ(session.Current()->id, "tok-1");
  session.Invalidate("tok-0");  // an older one: nothing happens
  EXPECT_EQ(session.Current()->id, "tok-1");
  session.Invalidate("tok-1");
  EXPECT_EQ(session.Current()->id, "tok-2");
  EXPECT_EQ(http.requests.size(), 2u);
}

TEST(KeystoneSessionTest, RefusedCredentialsNameUrlStatusAndKeystonesMessageButNotThePassword) {
  FakeHttpClient http;
  FakeClock clock;
  http.Queue(kTokens, Response(401, R"({"error": {"code": 401, "title": "Unauthorized",
      "message": "The request you have made requires authentication."}})"));
  StatusOr<Token> token = KeystoneSession(Options(), http, clock).Current();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kPermissionDenied);
  EXPECT_THAT(token.status().message(), HasSubstr("POST http://10.77.0.1:5000/v3/auth/tokens answered HTTP 401"));
  EXPECT_THAT(token.status().message(), HasSubstr("The request you have made requires authentication."));
  EXPECT_THAT(token.status().message(), HasSubstr("user virt-shadow in project service"));
  EXPECT_THAT(token.status().message(), Not(HasSubstr(kPassword)));
}

TEST(KeystoneSessionTest, BrokenAnswersAreInternalAndTransportErrorsKeepTheirCode) {
  FakeClock clock;
  {
    FakeHttpClient http;
    http.Queue(kTokens, Response(201, TokenResponse("x").body));  // no X-Subject-Token
    StatusOr<Token> token = KeystoneSession(Options(), http, clock).Current();
    EXPECT_EQ(token.status().code(), Code::kInternal);
    EXPECT_THAT(token.status().message(), HasSubstr("X-Subject-Token"));
  }
  {
    FakeHttpClient http;
    http.Queue(kTokens, Response(201, R"({"token": {"expires_at": "soon"}})", {{"X-Subject-Token", "t"}}));
    StatusOr<Token> token = KeystoneSession(Options(), http, clock).Current();
    EXPECT_EQ(token.status().code(), Code::kInternal);
    EXPECT_THAT(token.status().message(), HasSubstr("soon"));
  }
  {
    FakeHttpClient http;
    http.Fail(kTokens, Unavailable("connect to 10.77.0.1:5000: Connection refused"));
    StatusOr<Token> token = KeystoneSession(Options(), http, clock).Current();
    EXPECT_EQ(token.status().code(), Code::kUnavailable);
    EXPECT_THAT(token.status().message(), HasSubstr("Connection refused"));
  }
  {
    FakeHttpClient http;
    http.Queue(kTokens, Response(503, "<html>Service Unavailable</html>"));
    StatusOr<Token> token = KeystoneSession(Options(), http, clock).Current();
    EXPECT_EQ(token.status().code(), Code::kUnavailable);
    EXPECT_THAT(token.status().message(), HasSubstr("HTTP 503: <html>Service Unavailable</html>"));
  }
}

TEST(HttpStatusErrorTest, TranslatesStatusesInOnePlace) {
  notice::HttpRequest request{.method = "GET", .url = "http://10.77.0.1:8774/v2.1/servers/x"};
  struct Case {
    int status;
    std::string body;
    Code code;
    std::string message;
  };
  const Case cases[] = {
      {400, R"({"badRequest": {"message": "Invalid input for field/attribute host.", "code": 400}})",
       Code::kInvalidArgument, "Invalid input for field/attribute host."},
      {403, R"({"forbidden": {"message": "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live", "code": 403}})",
       Code::kPermissionDenied, "Policy doesn't allow"},
      {404, R"({"itemNotFound": {"message": "Instance x could not be found.", "code": 404}})", Code::kNotFound,
       "Instance x could not be found."},
      {409, R"({"conflictingRequest": {"message": "Cannot 'os-migrateLive' instance x while it is in task_state migrating", "code": 409}})",
       Code::kFailedPrecondition, "task_state migrating"},
      {409, R"({"errors": [{"status": 409, "title": "Conflict", "detail": "consumer generation conflict - expected 3 but got 2", "code": "placement.concurrent_update"}]})",
       Code::kAborted, "consumer generation conflict"},
      {429, "", Code::kUnavailable, "HTTP 429"},
      {500, R"({"computeFault": {"message": "Unexpected API Error.", "code": 500}})", Code::kUnavailable,
       "Unexpected API Error."},
      {302, "", Code::kInternal, "HTTP 302"},
  };
  for (const Case& c : cases) {
    Status status = HttpStatusError("GetServer(x)", request, Response(c.status, c.body));
    EXPECT_EQ(status.code(), c.code) << c.status;
    EXPECT_THAT(status.message(), HasSubstr("GetServer(x): GET http://10.77.0.1:8774/v2.1/servers/x answered HTTP " +
                                            std::to_string(c.status)));
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << c.status;
  }
}

TEST(HttpStatusErrorTest, ServiceMessagesAreBoundedAndPrintable) {
  EXPECT_EQ(ServiceErrorMessage("404 Not Found\n\nNo image found with ID abc\n\n"),
            "404 Not Found  No image found with ID abc  ");
  EXPECT_EQ(ServiceErrorMessage(std::string(1000, 'x')).size(), 303u);
  EXPECT_EQ(ServiceErrorMessage("a\x01z"), "a?z");
  EXPECT_EQ(ServiceErrorMessage(""), "");
}

}  // namespace
}  // namespace vs::nova
