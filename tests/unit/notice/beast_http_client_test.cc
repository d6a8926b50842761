#include "shadowd/notice/beast_http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/unit/notice/local_http_server.h"

namespace vs::notice {
namespace {

using std::chrono::milliseconds;
using test_support::LocalHttpServer;
using test_support::RawResponse;
using test_support::ReceivedRequest;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(BeastHttpClientTest, SendsMethodTargetHostAndHeadersAndReturnsTheResponse) {
  LocalHttpServer server([](const ReceivedRequest&) -> std::optional<std::string> {
    return RawResponse(200, "FALSE", "Metadata-Flavor: Google\r\nX-Twice: a\r\n");
  });
  BeastHttpClient client;
  StatusOr<HttpResponse> response =
      client.Send({.url = server.base_url() + "/computeMetadata/v1/instance/preempted?alt=text",
                   .headers = {{"Metadata-Flavor", "Google"}}});
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "FALSE");
  EXPECT_EQ(response->Header("metadata-flavor"), "Google");  // names compare case-insensitively
  EXPECT_EQ(response->Header("X-TWICE"), "a");
  EXPECT_EQ(response->Header("X-Absent"), std::nullopt);

  ASSERT_EQ(server.requests().size(), 1u);
  const ReceivedRequest seen = server.requests()[0];
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.target, "/computeMetadata/v1/instance/preempted?alt=text");
  EXPECT_EQ(seen.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen.headers.at("metadata-flavor"), "Google");
  EXPECT_EQ(seen.headers.at("connection"), "close");
}

TEST(BeastHttpClientTest, SendsBodiesWithTheirLength) {
  LocalHttpServer server([](const ReceivedRequest& r) -> std::optional<std::string> {
    return RawResponse(200, "got " + std::to_string(r.body.size()));
  });
  BeastHttpClient client;
  const std::string body = R"({"StartRequests":[{"EventId":"A"}]})";
  StatusOr<HttpResponse> post = client.Send({.method = "POST", .url = server.base_url() + "/x", .body = body});
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  EXPECT_EQ(post->body, "got " + std::to_string(body.size()));
  StatusOr<HttpResponse> put = client.Send({.method = "PUT", .url = server.base_url() + "/latest/api/token"});
  ASSERT_TRUE(put.ok()) << put.status().ToString();

  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[0].method, "POST");
  EXPECT_EQ(server.requests()[0].body, body);
  EXPECT_EQ(server.requests()[0].headers.at("content-length"), std::to_string(body.size()));
  EXPECT_EQ(server.requests()[1].method, "PUT");
  EXPECT_EQ(server.requests()[1].headers.at("content-length"), "0");  // IMDS wants a length on a PUT
}

TEST(BeastHttpClientTest, ErrorStatusesAreResponsesNotErrors) {
  for (int status : {401, 404, 500, 503}) {
    LocalHttpServer server([status](const ReceivedRequest&) -> std::optional<std::string> {
      return RawResponse(status, "why " + std::to_string(status));
    });
    StatusOr<HttpResponse> response = BeastHttpClient().Send({.url = server.base_url() + "/"});
    ASSERT_TRUE(response.ok()) << status << ": " << response.status().ToString();
    EXPECT_EQ(response->status, status);
    EXPECT_EQ(response->body, "why " + std::to_string(status));
  }
}

TEST(BeastHttpClientTest, ReadsChunkedBodiesAndBodiesEndedByClose) {
  LocalHttpServer chunked([](const ReceivedRequest&) -> std::optional<std::string> {
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nTRUE\r\n3\r\n-ok\r\n0\r\n\r\n");
  });
  StatusOr<HttpResponse> a = BeastHttpClient().Send({.url = chunked.base_url() + "/"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->body, "TRUE-ok");

  LocalHttpServer until_close([](const ReceivedRequest&) -> std::optional<std::string> {
    return std::string("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
  });
  StatusOr<HttpResponse> b = BeastHttpClient().Send({.url = until_close.base_url() + "/"});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->body, "until the end");
}

TEST(BeastHttpClientTest, AServerThatNeverAnswersIsADeadlineExceededAfterTheTimeout) {
  LocalHttpServer server([](const ReceivedRequest&) -> std::optional<std::string> { return std::nullopt; });
  const auto start = std::chrono::steady_clock::now();
  StatusOr<HttpResponse> response =
      BeastHttpClient().Send({.url = server.base_url() + "/hang", .timeout = milliseconds(200)});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), Code::kDeadlineExceeded) << response.status().ToString();
  EXPECT_TRUE(Contains(response.status().message(), server.base_url() + "/hang")) << response.status().ToString();
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(2000));
}

TEST(BeastHttpClientTest, TheTimeoutBoundsTheWholeExchangeNotEachRead) {
  // The head arrives at once, then the body never completes: the deadline set before connecting
  // still ends the exchange.
  std::atomic<bool> stop = false;
  // A raw server that drips one body byte every 50 ms, forever.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof at;
  getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len);
  std::thread dripper([&] {
    const int conn = accept(listener, nullptr, nullptr);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    [[maybe_unused]] ssize_t n = send(conn, head.data(), head.size(), MSG_NOSIGNAL);
    while (!stop && send(conn, "x", 1, MSG_NOSIGNAL) == 1) std::this_thread::sleep_for(milliseconds(50));
    close(conn);
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(at.sin_port)) + "/drip";
  const auto start = std::chrono::steady_clock::now();
  StatusOr<HttpResponse> response = BeastHttpClient().Send({.url = url, .timeout = milliseconds(300)});
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  dripper.join();
  close(listener);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), Code::kDeadlineExceeded) << response.status().ToString();
  EXPECT_LT(took, milliseconds(2000));
}

TEST(BeastHttpClientTest, ARefusedConnectionIsUnavailableNamingTheUrl) {
  // A port that was free a moment ago and has no listener now.
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
  socklen_t len = sizeof at;
  getsockname(s, reinterpret_cast<sockaddr*>(&at), &len);
  close(s);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(at.sin_port)) + "/latest/api/token";
  StatusOr<HttpResponse> response = BeastHttpClient().Send({.method = "PUT", .url = url});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), Code::kUnavailable) << response.status().ToString();
  EXPECT_TRUE(Contains(response.status().message(), "PUT " + url)) << response.status().ToString();
  EXPECT_TRUE(Contains(response.status().message(), "connect")) << response.status().ToString();
}

TEST(BeastHttpClientTest, BodiesOverOneMebibyteAreRefused) {
  const size_t cap = BeastHttpClient::kMaxResponseBodyBytes;
  LocalHttpServer at_cap(
      [cap](const ReceivedRequest&) -> std::optional<std::string> { return RawResponse(200, std::string(cap, 'a')); });
  StatusOr<HttpResponse> ok = BeastHttpClient().Send({.url = at_cap.base_url() + "/"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body.size(), cap);

  LocalHttpServer over_cap([cap](const ReceivedRequest&) -> std::optional<std::string> {
    return RawResponse(200, std::string(cap + 1, 'a'));
  });
  StatusOr<HttpResponse> too_big = BeastHttpClient().Send({.url = over_cap.base_url() + "/big"});
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), Code::kResourceExhausted) << too_big.status().ToString();
  EXPECT_TRUE(Contains(too_big.status().message(), over_cap.base_url() + "/big"));

  // A hostile length is refused from the head alone, before anything is allocated for it.
  LocalHttpServer huge_length([](const ReceivedRequest&) -> std::optional<std::string> {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100000000000000\r\n\r\nabc");
  });
  StatusOr<HttpResponse> lying = BeastHttpClient().Send({.url = huge_length.base_url() + "/"});
  ASSERT_FALSE(lying.ok());
  EXPECT_EQ(lying.status().code(), Code::kResourceExhausted) << lying.status().ToString();

  // Chunked, the cap applies to the sum of the chunks.
  LocalHttpServer chunked([cap](const ReceivedRequest&) -> std::optional<std::string> {
    char size[32];
    snprintf(size, sizeof size, "%zx", cap / 2 + 1);
    const std::string chunk = std::string(size) + "\r\n" + std::string(cap / 2 + 1, 'c') + "\r\n";
    return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + "0\r\n\r\n";
  });
  StatusOr<HttpResponse> chunks = BeastHttpClient().Send({.url = chunked.base_url() + "/"});
  ASSERT_FALSE(chunks.ok());
  EXPECT_EQ(chunks.status().code(), Code::kResourceExhausted) << chunks.status().ToString();

  // Without a Content-Length the cap applies while reading.
  LocalHttpServer endless([cap](const ReceivedRequest&) -> std::optional<std::string> {
    return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(2 * cap, 'a');
  });
  StatusOr<HttpResponse> streamed = BeastHttpClient().Send({.url = endless.base_url() + "/"});
  ASSERT_FALSE(streamed.ok());
  EXPECT_EQ(streamed.status().code(), Code::kResourceExhausted) << streamed.status().ToString();

  LocalHttpServer huge_head([](const ReceivedRequest&) -> std::optional<std::string> {
    return RawResponse(200, "x", "X-Filler: " + std::string(BeastHttpClient::kMaxResponseHeadBytes, 'h') + "\r\n");
  });
  StatusOr<HttpResponse> head = BeastHttpClient().Send({.url = huge_head.base_url() + "/"});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), Code::kResourceExhausted) << head.status().ToString();
}

TEST(BeastHttpClientTest, GarbageOrNoResponseIsUnavailable) {
  LocalHttpServer garbage(
      [](const ReceivedRequest&) -> std::optional<std::string> { return std::string("SSH-2.0-OpenSSH_9.2\r\n\r\n"); });
  StatusOr<HttpResponse> a = BeastHttpClient().Send({.url = garbage.base_url() + "/"});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Code::kUnavailable) << a.status().ToString();
  EXPECT_TRUE(Contains(a.status().message(), "malformed HTTP response")) << a.status().ToString();

  LocalHttpServer silent_close([](const ReceivedRequest&) -> std::optional<std::string> { return std::string(); });
  StatusOr<HttpResponse> b = BeastHttpClient().Send({.url = silent_close.base_url() + "/"});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kUnavailable) << b.status().ToString();

  LocalHttpServer cut_short([](const ReceivedRequest&) -> std::optional<std::string> {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  });
  StatusOr<HttpResponse> c = BeastHttpClient().Send({.url = cut_short.base_url() + "/"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();
}

TEST(BeastHttpClientTest, MalformedUrlsAreInvalidArgumentsNamingTheUrlAndWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://169.254.169.254/", "only plain http"},
      {"169.254.169.254/x", "only plain http"},
      {"http://metadata.google.internal/x", "IP address"},
      {"http:///x", "no host"},
      {"http://169.254.169.254:99999/", "port"},
      {"http://169.254.169.254:0/", "port"},
      {"http://169.254.169.254:/", "port"},
      {"http://169.254.169.254:80x/", "port"},
      {"http://169.254.169.254/a b", "space or control"},
      {"http://169.254.169.254/a\r\nX-Evil: 1", "space or control"},
      {"http://169.254.169.254/x#frag", "fragment"},
      {"http://user@169.254.169.254/", "user information"},
      {"http://[::1/", "without ']'"},
      {"http://[::1]x/", "after ']'"},
      {"http://::1/", "in brackets"},
  };
  for (const auto& [url, why] : cases) {
    StatusOr<HttpResponse> response = BeastHttpClient().Send({.url = url});
    ASSERT_FALSE(response.ok()) << url;
    EXPECT_EQ(response.status().code(), Code::kInvalidArgument) << url << ": " << response.status().ToString();
    EXPECT_TRUE(Contains(response.status().message(), why)) << url << ": " << response.status().ToString();
  }
}

TEST(BeastHttpClientTest, HeadersAndMethodsThatCouldSmuggleARequestAreRefused) {
  LocalHttpServer server([](const ReceivedRequest&) -> std::optional<std::string> { return RawResponse(200, ""); });
  const std::string url = server.base_url() + "/";
  for (const HttpRequest& request : {
           HttpRequest{.url = url, .headers = {{"X-aws-ec2-metadata-token", "abc\r\nX-Evil: 1"}}},
           HttpRequest{.url = url, .headers = {{"Bad Name", "v"}}},
           HttpRequest{.url = url, .headers = {{"", "v"}}},
           HttpRequest{.url = url, .headers = {{"X-Big", std::string(70000, 'v')}}},
           HttpRequest{.method = "GET /other HTTP/1.1\r\n", .url = url},
           HttpRequest{.method = "", .url = url},
           HttpRequest{.url = url, .timeout = milliseconds(0)},
       }) {
    StatusOr<HttpResponse> response = BeastHttpClient().Send(request);
    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), Code::kInvalidArgument) << response.status().ToString();
  }
  EXPECT_TRUE(server.requests().empty());
  // Any method that is a token goes out as written, a body with it.
  StatusOr<HttpResponse> trace = BeastHttpClient().Send({.method = "TRACE", .url = url, .body = "x"});
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "TRACE");
  EXPECT_EQ(server.requests()[0].body, "x");
}

}  // namespace
}  // namespace vs::notice
