#include "shadowd/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <thread>

namespace vs::metrics {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// A connected TCP client socket, closed on destruction.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    EXPECT_GE(fd_, 0) << "socket: " << errno;
    // No test should ever wait this long; it only keeps a broken endpoint from hanging the suite.
    timeval receive_timeout{.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to), 0) << "connect: " << errno;
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { close(fd_); }

  // False when the peer refused the bytes (it closed the connection).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Everything the server sends until it closes the connection (or an error or the 10 s timeout).
  std::string ReadUntilClosed() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

HttpResponse ParseResponse(const std::string& raw) {
  HttpResponse response;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/1.1 ")) {
    ADD_FAILURE() << "not an HTTP/1.1 response: " << raw.substr(0, 200);
    return response;
  }
  response.status = std::stoi(raw.substr(9, 3));
  size_t line_start = raw.find("\r\n") + 2;
  while (line_start < head_end) {
    const size_t line_end = raw.find("\r\n", line_start);
    const std::string line = raw.substr(line_start, line_end - line_start);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    line_start = line_end + 2;
  }
  response.body = raw.substr(head_end + 4);
  return response;
}

HttpResponse Exchange(uint16_t port, std::string_view request) {
  Client client(port);
  EXPECT_TRUE(client.Send(request));
  return ParseResponse(client.ReadUntilClosed());
}

std::unique_ptr<MetricsHttpEndpoint> StartOrDie(MetricsHttpEndpoint::RenderFn render) {
  StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint = MetricsHttpEndpoint::Start("127.0.0.1:0", std::move(render));
  EXPECT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  return endpoint.ok() ? std::move(endpoint).value() : nullptr;
}

constexpr std::string_view kGetMetrics = "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n";

TEST(MetricsHttpEndpointTest, ServesRenderedTextWithPrometheusHeaders) {
  std::atomic<int> renders = 0;
  auto endpoint = StartOrDie([&renders]() -> StatusOr<std::string> {
    ++renders;
    return std::string("# HELP a b\n# TYPE a gauge\na ") + std::to_string(renders.load()) + "\n";
  });
  ASSERT_NE(endpoint, nullptr);
  EXPECT_NE(endpoint->port(), 0);

  for (int i = 1; i <= 3; ++i) {
    HttpResponse r = Exchange(endpoint->port(), kGetMetrics);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
    EXPECT_EQ(r.headers["connection"], "close");
    EXPECT_EQ(r.body, "# HELP a b\n# TYPE a gauge\na " + std::to_string(i) + "\n");
  }
  EXPECT_EQ(renders.load(), 3);
}

TEST(MetricsHttpEndpointTest, IgnoresQueryStringAndAcceptsBareLineFeeds) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  EXPECT_EQ(Exchange(endpoint->port(), "GET /metrics?name[]=x HTTP/1.1\r\n\r\n").body, "x 1\n");
  EXPECT_EQ(Exchange(endpoint->port(), "GET /metrics HTTP/1.0\n\n").body, "x 1\n");
}

TEST(MetricsHttpEndpointTest, OtherPathsAre404AndOtherMethods405WithoutRendering) {
  std::atomic<int> renders = 0;
  auto endpoint = StartOrDie([&renders]() -> StatusOr<std::string> {
    ++renders;
    return std::string("x 1\n");
  });
  ASSERT_NE(endpoint, nullptr);
  for (const char* path : {"/", "/metricsx", "/metrics/", "/other"}) {
    HttpResponse r = Exchange(endpoint->port(), std::string("GET ") + path + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
    EXPECT_NE(r.body.find("/metrics"), std::string::npos) << r.body;
  }
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "get"}) {
    HttpResponse r = Exchange(endpoint->port(), std::string(method) + " /metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(r.headers["allow"], "GET");
  }
  EXPECT_EQ(renders.load(), 0);
}

TEST(MetricsHttpEndpointTest, MalformedRequestLinesAre400) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  for (const char* request : {"GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", " GET /metrics HTTP/1.1\r\n\r\n",
                              "GET /metrics SMTP/1.0\r\n\r\n", "GET /metrics HTTP/1.1 extra\r\n\r\n", "\r\n\r\n"}) {
    EXPECT_EQ(Exchange(endpoint->port(), request).status, 400) << request;
  }
}

TEST(MetricsHttpEndpointTest, RenderErrorIs500CarryingTheStatus) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> {
    return InvalidArgument("metric family name '1bad' is not a valid Prometheus metric name");
  });
  ASSERT_NE(endpoint, nullptr);
  HttpResponse r = Exchange(endpoint->port(), kGetMetrics);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_NE(r.body.find("INVALID_ARGUMENT"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("'1bad'"), std::string::npos) << r.body;
}

TEST(MetricsHttpEndpointTest, OversizedRequestIs431AndTheNextRequestIsServed) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  {
    Client client(endpoint->port());
    // A head that never ends, twice the cap: the endpoint answers once it has read the cap.
    std::string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(2 * MetricsHttpEndpoint::kMaxRequestBytes, 'a');
    client.Send(huge);  // may fail part-way once the endpoint has closed: that is fine
    HttpResponse r = ParseResponse(client.ReadUntilClosed());
    EXPECT_EQ(r.status, 431);
  }
  // Exactly at the cap with the head complete is still served.
  std::string at_cap = "GET /metrics HTTP/1.1\r\nX-Filler: ";
  at_cap += std::string(MetricsHttpEndpoint::kMaxRequestBytes - at_cap.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(at_cap.size(), MetricsHttpEndpoint::kMaxRequestBytes);
  EXPECT_EQ(Exchange(endpoint->port(), at_cap).status, 200);
}

TEST(MetricsHttpEndpointTest, BytesSentAfterTheRequestDoNotCutALargeResponseShort) {
  // Closing a socket with unread input resets the connection and discards the unsent part of the
  // response; the endpoint must read such bytes away instead.
  const std::string big(16 << 20, 'x');
  auto endpoint = StartOrDie([&big]() -> StatusOr<std::string> { return big; });
  ASSERT_NE(endpoint, nullptr);
  Client client(endpoint->port());
  ASSERT_TRUE(client.Send(kGetMetrics));
  std::this_thread::sleep_for(milliseconds(50));  // the endpoint has read the request and is writing
  ASSERT_TRUE(client.Send("unexpected trailing bytes"));
  std::this_thread::sleep_for(milliseconds(50));
  HttpResponse r = ParseResponse(client.ReadUntilClosed());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), big.size());
}

TEST(MetricsHttpEndpointTest, SilentClientIsDroppedAfterTheTimeoutAndDelaysTheNextOneAtMostThatLong) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  const auto start = steady_clock::now();
  Client silent(endpoint->port());
  std::this_thread::sleep_for(milliseconds(100));  // let the endpoint pick the silent one first

  HttpResponse r = Exchange(endpoint->port(), kGetMetrics);
  const auto served_after = steady_clock::now() - start;
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(served_after, MetricsHttpEndpoint::kRequestTimeout + milliseconds(1000));

  // The silent client was closed without a response.
  EXPECT_EQ(silent.ReadUntilClosed(), "");
  const auto closed_after = steady_clock::now() - start;
  EXPECT_GE(closed_after, MetricsHttpEndpoint::kRequestTimeout - milliseconds(100));
  EXPECT_LT(closed_after, MetricsHttpEndpoint::kRequestTimeout + milliseconds(1000));
}

TEST(MetricsHttpEndpointTest, TheTimeoutBoundsTheWholeRequestNotEachRead) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  Client trickler(endpoint->port());
  const auto start = steady_clock::now();
  // One byte every 200 ms keeps each read short of the timeout; the endpoint must still give up.
  bool accepted = true;
  while (accepted && steady_clock::now() - start < MetricsHttpEndpoint::kRequestTimeout * 2) {
    accepted = trickler.Send("G");
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(trickler.ReadUntilClosed(), "");
  EXPECT_LT(steady_clock::now() - start, MetricsHttpEndpoint::kRequestTimeout + milliseconds(1000));
}

TEST(MetricsHttpEndpointTest, ClientThatDoesNotReadTheResponseIsDroppedAfterTheTimeout) {
  std::atomic<int> renders = 0;
  auto endpoint = StartOrDie([&renders]() -> StatusOr<std::string> {
    // Far more than the loopback socket buffers hold, so the first write blocks on the client.
    if (renders++ == 0) return std::string(64 << 20, 'x');
    return std::string("x 1\n");
  });
  ASSERT_NE(endpoint, nullptr);
  const auto start = steady_clock::now();
  Client not_reading(endpoint->port());
  ASSERT_TRUE(not_reading.Send(kGetMetrics));
  std::this_thread::sleep_for(milliseconds(100));

  HttpResponse r = Exchange(endpoint->port(), kGetMetrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "x 1\n");
  // Without the timeout the second request would wait for as long as the first client lives (the whole test);
  // the slack beyond the timeout is for rendering and writing 64 MiB on a loaded 2-core machine (4.4 s seen).
  EXPECT_LT(steady_clock::now() - start, MetricsHttpEndpoint::kRequestTimeout + seconds(6));
  EXPECT_EQ(renders.load(), 2);
}

TEST(MetricsHttpEndpointTest, StopWhileAClientIsConnectedReturnsPromptlyAndClosesIt) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  const uint16_t port = endpoint->port();
  Client connected(port);
  ASSERT_TRUE(connected.Send("GET /metr"));  // a request in progress
  std::this_thread::sleep_for(milliseconds(100));

  const auto start = steady_clock::now();
  endpoint->Stop();
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
  EXPECT_EQ(connected.ReadUntilClosed(), "");
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
  endpoint->Stop();  // idempotent
  EXPECT_EQ(endpoint->port(), port);

  // The port is free again: a new endpoint can listen there.
  StatusOr<std::unique_ptr<MetricsHttpEndpoint>> again = MetricsHttpEndpoint::Start(
      "127.0.0.1:" + std::to_string(port), []() -> StatusOr<std::string> { return std::string("y 2\n"); });
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Exchange(port, kGetMetrics).body, "y 2\n");
}

TEST(MetricsHttpEndpointTest, DestructorStopsPromptlyWhileAClientIsConnected) {
  auto endpoint = StartOrDie([]() -> StatusOr<std::string> { return std::string("x 1\n"); });
  ASSERT_NE(endpoint, nullptr);
  Client connected(endpoint->port());
  std::this_thread::sleep_for(milliseconds(100));
  const auto start = steady_clock::now();
  endpoint.reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
}

TEST(MetricsHttpEndpointTest, BadListenAddressesAreRefusedNamingTheAddressAndTheForm) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80a",
                          "127.0.0.1: 80", "localhost:9177", "::1:9177", "[::1]", "[::1]9177", "[127.0.0.1]:80",
                          "300.1.1.1:80", "1.2.3:80", ":9177", "[]:9177"}) {
    StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint =
        MetricsHttpEndpoint::Start(bad, []() -> StatusOr<std::string> { return std::string(); });
    ASSERT_FALSE(endpoint.ok()) << bad;
    EXPECT_EQ(endpoint.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(endpoint.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << endpoint.status().message();
    EXPECT_NE(endpoint.status().message().find("expected IPv4:port or [IPv6]:port"), std::string::npos);
  }
}

TEST(MetricsHttpEndpointTest, EmptyRenderFunctionIsRefused) {
  StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint = MetricsHttpEndpoint::Start("127.0.0.1:0", nullptr);
  ASSERT_FALSE(endpoint.ok());
  EXPECT_EQ(endpoint.status().code(), Code::kInvalidArgument);
}

TEST(MetricsHttpEndpointTest, AddressInUseIsUnavailableNamingIt) {
  auto first = StartOrDie([]() -> StatusOr<std::string> { return std::string(); });
  ASSERT_NE(first, nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(first->port());
  StatusOr<std::unique_ptr<MetricsHttpEndpoint>> second =
      MetricsHttpEndpoint::Start(address, []() -> StatusOr<std::string> { return std::string(); });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("'" + address + "'"), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().message();
}

TEST(MetricsHttpEndpointTest, ListensOnIpv6Loopback) {
  StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint =
      MetricsHttpEndpoint::Start("[::1]:0", []() -> StatusOr<std::string> { return std::string("v6 1\n"); });
  if (!endpoint.ok() && endpoint.status().code() == Code::kUnavailable) {
    GTEST_SKIP() << "no IPv6 loopback here: " << endpoint.status().ToString();
  }
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  EXPECT_NE((*endpoint)->port(), 0);

  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons((*endpoint)->port());
  to.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  ASSERT_EQ(send(fd, kGetMetrics.data(), kGetMetrics.size(), MSG_NOSIGNAL), static_cast<ssize_t>(kGetMetrics.size()));
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_EQ(ParseResponse(raw).body, "v6 1\n");
}

}  // namespace
}  // namespace vs::metrics
