#include "shadowd/notice/beast_http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "common/asio_endpoint.h"
#include "common/host_port.h"
#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct ParsedUrl {
  tcp::endpoint endpoint;
  std::string host_header;  // "host[:port]" as written in the URL
  std::string target;       // "/path?query"
};

bool IsVisibleAscii(char c) { return c > 0x20 && c < 0x7f; }

// RFC 9110 token characters, for methods and header names.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

StatusOr<ParsedUrl> ParseUrl(const std::string& url) {
  auto bad = [&url](std::string_view why) {
    return InvalidArgument("URL '" + Printable(url) + "' is not valid (" + std::string(why) +
                           "); expected http://IP[:port]/path, e.g. http://169.254.169.254/latest/api/token");
  };
  constexpr std::string_view kScheme = "http://";
  std::string_view rest = url;
  if (!rest.starts_with(kScheme)) return bad("only plain http:// is supported");
  rest.remove_prefix(kScheme.size());
  for (char c : rest) {
    if (!IsVisibleAscii(c)) return bad("it contains a space or control character");
  }
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (target.find('#') != std::string::npos) return bad("a fragment ('#') has no meaning in a request");
  if (authority.find('@') != std::string_view::npos) return bad("user information ('@') is not supported");

  StatusOr<HostPort> split = SplitHostPort(authority);
  if (!split.ok()) return bad(split.status().message());
  if (split->port && *split->port == 0) return bad("the port must be a number from 1 to 65535");
  StatusOr<tcp::endpoint> endpoint = IpEndpoint(*split, split->port.value_or(80));
  if (!endpoint.ok()) return bad(endpoint.status().message());
  return ParsedUrl{
      .endpoint = *endpoint, .host_header = std::string(authority), .target = std::move(target)};
}

Status CheckHeader(const std::string& name, const std::string& value) {
  constexpr size_t kMaxHeaderBytes = 8 * 1024;  // Beast throws beyond 64 KiB; no metadata header is near either
  if (name.size() + value.size() > kMaxHeaderBytes) {
    return InvalidArgument("HTTP header '" + Printable(name, 64) + "' is longer than " +
                           std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (!IsToken(name)) {
    return InvalidArgument("HTTP header name '" + Printable(name, 64) +
                           "' is not valid; it must be a non-empty token (letters, digits, '-')");
  }
  for (char c : value) {
    if ((c >= 0 && c < 0x20 && c != '\t') || c == 0x7f) {
      return InvalidArgument("HTTP header '" + Printable(name, 64) +
                             "' has a control character in its value; headers must be one line");
    }
  }
  return Status::Ok();
}

// Turns the error that ended the exchange into a Status naming what failed.
Status Translate(const error_code& ec, std::string_view phase, const HttpRequest& request) {
  const std::string what = request.method + " " + request.url;
  if (ec == beast::error::timeout) {
    return DeadlineExceeded(
        what + ": no complete response within " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(request.timeout).count()) +
        " ms (while trying to " + std::string(phase) + ")");
  }
  if (ec == http::error::body_limit) {
    return ResourceExhausted(what + ": response body larger than " +
                             std::to_string(BeastHttpClient::kMaxResponseBodyBytes) +
                             " bytes; a metadata service never sends that much, check the endpoint");
  }
  if (ec == http::error::header_limit) {
    return ResourceExhausted(what + ": response head larger than " +
                             std::to_string(BeastHttpClient::kMaxResponseHeadBytes) + " bytes; check the endpoint");
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category() && ec != http::error::end_of_stream &&
      ec != http::error::partial_message) {
    return Unavailable(what + ": malformed HTTP response (" + ec.message() + ")");
  }
  return Unavailable(what + ": cannot " + std::string(phase) + ": " + ec.message());
}

}  // namespace

StatusOr<HttpResponse> BeastHttpClient::Send(const HttpRequest& request) {
  VS_ASSIGN_OR_RETURN(const ParsedUrl url, ParseUrl(request.url));
  if (!IsToken(request.method)) {
    return InvalidArgument("HTTP method '" + Printable(request.method, 32) + "' for " + request.url +
                           " is not valid; use e.g. GET, PUT or POST");
  }
  if (request.timeout <= Duration::zero()) {
    return InvalidArgument("HTTP timeout for " + request.url + " must be positive");
  }

  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(url.target);
  req.version(11);
  req.set(http::field::host, url.host_header);
  for (const auto& [name, value] : request.headers) {
    VS_RETURN_IF_ERROR(CheckHeader(name, value).Annotate(request.method + " " + request.url));
    req.set(name, value);
  }
  req.keep_alive(false);
  req.body() = request.body;
  // What prepare_payload() would do, without its exception for a TRACE with a body: IMDS wants a
  // Content-Length on a PUT even when it is 0.
  if (!request.body.empty() || (request.method != "GET" && request.method != "HEAD")) {
    req.content_length(request.body.size());
  }

  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(kMaxResponseHeadBytes));
  parser.body_limit(kMaxResponseBodyBytes);

  // One deadline for the whole exchange: the stream's expiry is absolute and stays armed for
  // every operation started after it is set.
  stream.expires_after(request.timeout);
  error_code failure;
  std::string_view phase = "connect";
  stream.async_connect(url.endpoint, [&](error_code ec) {
    if (ec) {
      failure = ec;
      return;
    }
    phase = "send the request";
    http::async_write(stream, req, [&](error_code write_error, size_t) {
      if (write_error) {
        failure = write_error;
        return;
      }
      phase = "read the response";
      // The head first, on its own: Boost 1.74's eager parsing (what async_read does) loses the
      // body_limit error for a Content-Length over the cap, and then reserves that length.
      http::async_read_header(stream, buffer, parser, [&](error_code head_error, size_t) {
        if (head_error) {
          failure = head_error;
          return;
        }
        http::async_read(stream, buffer, parser, [&](error_code read_error, size_t) { failure = read_error; });
      });
    });
  });
  io.run();
  if (failure) return Translate(failure, phase, request);

  const http::response<http::string_body>& res = parser.get();
  HttpResponse response{.status = static_cast<int>(res.result_int())};
  for (const auto& field : res) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = res.body();
  return response;
}

}  // namespace vs::notice
