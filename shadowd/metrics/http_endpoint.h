// MetricsHttpEndpoint: serves GET /metrics over HTTP/1.1 so Prometheus can scrape shadowd.
//
// Deliberately minimal: one request per connection (responses carry "Connection: close") and one
// connection at a time, on one background thread. Scrapes come every 15-60 s, so serialising
// them costs nothing, and it bounds what a slow or hostile client can take: a connection gets
// kRequestTimeout to deliver a request of at most kMaxRequestBytes, and kRequestTimeout again to
// take the response, then it is closed and the next connection (waiting in the kernel's listen
// backlog) is served. A silent client therefore delays other scrapers by at most kRequestTimeout.
//
// Responses: 200 with render()'s text; 404 for any path but /metrics (a query string is
// ignored); 405 for any method but GET; 400 for a malformed request line; 431 for a request
// over kMaxRequestBytes; 500 carrying the Status when render() fails.
//
// Ownership: owns the listening socket, the connection being served and the thread; keeps
// `render` (and whatever it captures, which must outlive the endpoint) until Stop().
// Thread-safety: render() runs on the endpoint's thread, one call at a time, concurrently with
// the rest of the process: it must lock (or hop to its owner's loop) to read shared state.
// port() may be called from any thread. Stop() and the destructor must be called by the owner,
// never from inside render() (they join the thread that runs it); they wait for a render in
// progress, but not for a client.
// Failure modes: Start returns InvalidArgument naming a malformed listen address (and the form
// expected), Unavailable naming an address that cannot be bound (in use, not on this host).
// Once started, a failure ends only the connection it happened on.
// Time: deadlines are Asio timers on the steady clock; the endpoint reads no timestamps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"

namespace vs::metrics {

class MetricsHttpEndpoint {
 public:
  using RenderFn = std::function<StatusOr<std::string>()>;

  static constexpr Duration kRequestTimeout = std::chrono::seconds(2);
  static constexpr size_t kMaxRequestBytes = 8 * 1024;
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Binds `listen_address` ("10.77.0.11:9177", "127.0.0.1:0" for a free port, "[::1]:9177")
  // and starts serving. `render` produces the body of each GET /metrics.
  static StatusOr<std::unique_ptr<MetricsHttpEndpoint>> Start(const std::string& listen_address, RenderFn render);

  MetricsHttpEndpoint(const MetricsHttpEndpoint&) = delete;
  MetricsHttpEndpoint& operator=(const MetricsHttpEndpoint&) = delete;
  ~MetricsHttpEndpoint();  // Stop()

  // The bound port: the one asked for, or the one the kernel picked for port 0.
  uint16_t port() const { return port_; }

  // Closes the listening socket and any connection being served and joins the thread.
  // Idempotent.
  void Stop();

 private:
  class Server;  // the Asio part, kept out of this header
  explicit MetricsHttpEndpoint(std::unique_ptr<Server> server);

  std::unique_ptr<Server> server_;  // null after Stop()
  const uint16_t port_;
  std::thread thread_;
};

}  // namespace vs::metrics
