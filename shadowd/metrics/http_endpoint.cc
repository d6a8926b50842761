#include "shadowd/metrics/http_endpoint.h"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/asio_endpoint.h"
#include "common/host_port.h"

namespace vs::metrics {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

StatusOr<tcp::endpoint> ParseListenAddress(const std::string& address) {
  auto bad = [&address](std::string_view why) {
    return InvalidArgument("metrics listen address '" + address + "' is not valid (" + std::string(why) +
                           "); expected IPv4:port or [IPv6]:port, e.g. 10.77.0.11:9177 or [::1]:9177 "
                           "(port 0 picks a free port)");
  };
  StatusOr<HostPort> split = SplitHostPort(address);
  if (!split.ok()) return bad(split.status().message());
  if (!split->port) return bad("no ':port'");
  StatusOr<tcp::endpoint> endpoint = IpEndpoint(*split, *split->port);
  if (!endpoint.ok()) return bad(endpoint.status().message());
  return endpoint;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Internal Server Error";
  }
}

std::string BuildResponse(int status, std::string_view content_type, std::string_view body,
                          std::string_view extra_headers = "") {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += "Connection: close\r\n\r\n";
  out += body;
  return out;
}

std::string ErrorResponse(int status, std::string_view message, std::string_view extra_headers = "") {
  return BuildResponse(status, "text/plain; charset=utf-8", std::string(message) + "\n", extra_headers);
}

// The request head (request line and headers), once it has fully arrived. Bare LF line ends are
// accepted as well as CRLF, so that a person typing at the port is served too.
std::optional<std::string_view> CompleteHead(std::string_view received) {
  for (std::string_view end : {"\n\r\n", "\n\n"}) {
    if (size_t at = received.find(end); at != std::string_view::npos) return received.substr(0, at + 1);
  }
  return std::nullopt;
}

std::string HandleRequest(std::string_view head, const MetricsHttpEndpoint::RenderFn& render) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  // METHOD SP request-target SP HTTP-version
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    return ErrorResponse(400, "malformed request line; expected e.g. 'GET /metrics HTTP/1.1'");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.substr(0, target.find('?')) != "/metrics") {
    return ErrorResponse(404, "not found; metrics are served at /metrics");
  }
  if (method != "GET") return ErrorResponse(405, "method not allowed; use GET", "Allow: GET\r\n");
  StatusOr<std::string> text = render();
  if (!text.ok()) return ErrorResponse(500, "cannot render metrics: " + text.status().ToString());
  return BuildResponse(200, MetricsHttpEndpoint::kContentType, *text);
}

}  // namespace

// Every member is touched only by the io thread once Run() has started, except io_ itself
// (Interrupt is thread-safe), so there are no locks. A connection goes accept -> ReadRequest ->
// Respond -> Drain -> EndConnection -> accept; exactly one socket operation is pending at a time,
// and the deadline ends a stuck phase by closing the socket, which fails that operation.
class MetricsHttpEndpoint::Server {
 public:
  explicit Server(RenderFn render) : render_(std::move(render)) {}

  Status Listen(const tcp::endpoint& at, const std::string& listen_address) {
    error_code ec;
    acceptor_.open(at.protocol(), ec);
    // SO_REUSEADDR lets a restarted shadowd bind while connections of the old one sit in
    // TIME_WAIT; Linux still refuses while another socket listens there.
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec == asio::error::address_in_use) {
      return Unavailable("metrics listen address '" + listen_address +
                         "' is already in use; stop what listens there or choose another port");
    }
    if (ec) return Unavailable("cannot listen on metrics address '" + listen_address + "': " + ec.message());
    return Status::Ok();
  }

  uint16_t port() const {
    error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  void Run() {
    AcceptNext();
    io_.run();  // returns after Interrupt(), even if it came before run() started
  }

  void Interrupt() { io_.stop(); }

 private:
  void AcceptNext() {
    acceptor_.async_accept(socket_, [this](error_code ec) {
      if (ec) {
        // E.g. out of file descriptors: retry later instead of spinning on a queue we cannot drain.
        accept_backoff_.expires_after(std::chrono::milliseconds(100));
        accept_backoff_.async_wait([this](error_code wait_error) {
          if (!wait_error) AcceptNext();
        });
        return;
      }
      request_.clear();
      ArmDeadline();
      ReadRequest();
    });
  }

  void ArmDeadline() {
    // The generation tells a wait that was superseded but had already fired (so cancel() could
    // not stop it) from the current one; otherwise it could close the next phase or connection.
    const uint64_t armed = ++deadline_generation_;
    deadline_.expires_after(kRequestTimeout);
    deadline_.async_wait([this, armed](error_code ec) {
      if (ec || armed != deadline_generation_) return;
      error_code ignored;
      socket_.close(ignored);
    });
  }

  void ReadRequest() {
    const size_t room = std::min(kMaxRequestBytes - request_.size(), buffer_.size());
    socket_.async_read_some(asio::buffer(buffer_.data(), room), [this](error_code ec, size_t n) {
      if (ec) return EndConnection();  // the client went away or the deadline closed the socket
      request_.append(buffer_.data(), n);
      if (std::optional<std::string_view> head = CompleteHead(request_)) {
        return Respond(HandleRequest(*head, render_));
      }
      if (request_.size() >= kMaxRequestBytes) {
        return Respond(ErrorResponse(431, "request larger than " + std::to_string(kMaxRequestBytes) + " bytes"));
      }
      ReadRequest();
    });
  }

  void Respond(std::string response) {
    response_ = std::move(response);
    ArmDeadline();
    asio::async_write(socket_, asio::buffer(response_), [this](error_code ec, size_t) {
      if (ec) return EndConnection();
      error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      Drain();
    });
  }

  // Closing a socket with unread input makes Linux reset the connection, which can destroy the
  // response before the client reads it (the 431 to a client still sending, for one). So wait
  // for the client to close, discarding what it sends, until the deadline.
  void Drain() {
    socket_.async_read_some(asio::buffer(buffer_), [this](error_code ec, size_t) {
      if (ec) return EndConnection();
      Drain();
    });
  }

  void EndConnection() {
    ++deadline_generation_;
    deadline_.cancel();
    error_code ignored;
    socket_.close(ignored);
    response_.clear();
    AcceptNext();
  }

  // Declared first so that it is destroyed last, after the objects that use it.
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  tcp::socket socket_{io_};  // the connection being served, if any
  asio::steady_timer deadline_{io_};
  asio::steady_timer accept_backoff_{io_};
  uint64_t deadline_generation_ = 0;
  std::array<char, 4096> buffer_{};
  std::string request_;   // what the current connection sent so far, at most kMaxRequestBytes
  std::string response_;  // kept alive until async_write completes
  const RenderFn render_;
};

StatusOr<std::unique_ptr<MetricsHttpEndpoint>> MetricsHttpEndpoint::Start(const std::string& listen_address,
                                                                           RenderFn render) {
  if (!render) return InvalidArgument("MetricsHttpEndpoint::Start needs a render function, got an empty one");
  VS_ASSIGN_OR_RETURN(const tcp::endpoint at, ParseListenAddress(listen_address));
  auto server = std::make_unique<Server>(std::move(render));
  VS_RETURN_IF_ERROR(server->Listen(at, listen_address));
  return std::unique_ptr<MetricsHttpEndpoint>(new MetricsHttpEndpoint(std::move(server)));
}

MetricsHttpEndpoint::MetricsHttpEndpoint(std::unique_ptr<Server> server)
    : server_(std::move(server)), port_(server_->port()), thread_([s = server_.get()] { s->Run(); }) {}

MetricsHttpEndpoint::~MetricsHttpEndpoint() { Stop(); }

void MetricsHttpEndpoint::Stop() {
  if (!thread_.joinable()) return;
  server_->Interrupt();
  thread_.join();
  server_.reset();  // closes the listening socket and the connection being served, if any
}

}  // namespace vs::metrics
