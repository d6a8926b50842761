// LocalHttpServer: a scripted HTTP/1.1 server on 127.0.0.1:<free port> for the HttpClient and
// poller tests. One connection at a time on a background thread: it reads a request (head plus a
// Content-Length body), records it, and writes whatever raw bytes the handler returns, then closes.
// A handler returning nullopt makes the server hold the connection open without answering until
// the client goes away or the server stops (a metadata service that hangs).
// Thread-safety: requests() may be called from any thread. The destructor stops and joins.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vs::notice::test_support {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// "HTTP/1.1 <status> X\r\n<headers>Content-Length: n\r\nConnection: close\r\n\r\n<body>".
inline std::string RawResponse(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

class LocalHttpServer {
 public:
  using Handler = std::function<std::optional<std::string>(const ReceivedRequest&)>;

  explicit LocalHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&at), sizeof at);
    listen(listen_fd_, 16);
    socklen_t len = sizeof at;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&at), &len);
    port_ = ntohs(at.sin_port);
    int pipe_fds[2];
    if (pipe(pipe_fds) == 0) {
      stop_read_ = pipe_fds[0];
      stop_write_ = pipe_fds[1];
    }
    thread_ = std::thread([this] { Serve(); });
  }
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;
  ~LocalHttpServer() {
    [[maybe_unused]] ssize_t n = write(stop_write_, "x", 1);
    thread_.join();
    close(listen_fd_);
    close(stop_read_);
    close(stop_write_);
  }

  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  // Waits for `fd` or the stop pipe; false when stopping.
  bool WaitFor(int fd) {
    pollfd fds[2] = {{.fd = stop_read_, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    while (poll(fds, 2, -1) < 0) {
    }
    return fds[0].revents == 0;
  }

  void Serve() {
    while (WaitFor(listen_fd_)) {
      const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      HandleConnection(conn);
      close(conn);
    }
  }

  void HandleConnection(int conn) {
    std::string received;
    char buf[65536];
    size_t head_end = std::string::npos;
    size_t body_length = 0;
    for (;;) {
      if (head_end != std::string::npos && received.size() >= head_end + 4 + body_length) break;
      if (!WaitFor(conn)) return;
      const ssize_t n = recv(conn, buf, sizeof buf, 0);
      if (n <= 0) return;
      received.append(buf, static_cast<size_t>(n));
      if (head_end == std::string::npos && (head_end = received.find("\r\n\r\n")) != std::string::npos) {
        ReceivedRequest parsed = ParseHead(received.substr(0, head_end));
        if (auto it = parsed.headers.find("content-length"); it != parsed.headers.end()) {
          body_length = std::stoul(it->second);
        }
      }
    }
    ReceivedRequest request = ParseHead(received.substr(0, head_end));
    request.body = received.substr(head_end + 4, body_length);
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
    }
    const std::optional<std::string> response = handler_(request);
    if (!response) {
      // Hang: hold the connection until the client gives up or the server stops.
      while (WaitFor(conn) && recv(conn, buf, sizeof buf, 0) > 0) {
      }
      return;
    }
    size_t sent = 0;
    while (sent < response->size()) {
      const ssize_t n = send(conn, response->data() + sent, response->size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
    shutdown(conn, SHUT_WR);
    // Let the client read everything before the close (unread input would reset the connection).
    while (WaitFor(conn) && recv(conn, buf, sizeof buf, 0) > 0) {
    }
  }

  static ReceivedRequest ParseHead(const std::string& head) {
    ReceivedRequest request;
    const size_t line_end = head.find("\r\n");
    const std::string line = head.substr(0, line_end);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.find(' ', sp1 + 1);
    request.method = line.substr(0, sp1);
    request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      const std::string field = head.substr(pos, end - pos);
      const size_t colon = field.find(':');
      std::string name = field.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t value_start = field.find_first_not_of(' ', colon + 1);
      request.headers[name] = value_start == std::string::npos ? "" : field.substr(value_start);
      pos = end + 2;
    }
    return request;
  }

  Handler handler_;
  int listen_fd_ = -1;
  int stop_read_ = -1;
  int stop_write_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;
};

}  // namespace vs::notice::test_support
