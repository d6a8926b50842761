// MetricsServer: serves GET /metrics over HTTP so Prometheus can scrape shadowd, through prometheus-cpp's
// pull Exposer (civetweb). What it serves is collected from named sources at each scrape.
//
// Why these settings: civetweb gives a connection to one of kWorkerThreads workers, which waits up to
// kRequestTimeout for the request and again for the response to be taken; a connection that sends
// nothing holds its worker that long. So k idle connections delay a scrape by nothing while
// k < kWorkerThreads, and by about (k / kWorkerThreads) * kRequestTimeout beyond (100 idle: ~2 s, still
// inside Prometheus' default 10 s scrape timeout). Responses carry "Connection: close" (no keep-alive),
// so a scraper never holds a worker between scrapes. Only /metrics exists; any other path is 404.
//
// Sources: each returns families (prometheus_text.h) or an error. One that fails, returns an invalid
// family or a family another source already returned is left out of that scrape, logged, and reported
// as virt_shadow_metrics_source_up{source="NAME"} 0 (1 when it was served), so that one broken part
// neither hides the others nor goes unnoticed. prometheus-cpp adds its own exposer_* families.
//
// Ownership: owns the listening socket, civetweb's threads and the sources (and whatever they capture,
// which must outlive the server) until destroyed.
// Thread-safety: the sources are called on civetweb's workers, one collection at a time (a mutex), so a
// source runs concurrently with the rest of the process but never with itself: it must lock (or hop to
// its owner's loop) to read shared state. port() may be called from any thread. The destructor must not
// run inside a source (it joins the workers); it waits for a scrape in progress, and takes up to about 2 s
// (civetweb's listener notices the stop between 2-second polls).
// Failure modes: Start returns InvalidArgument naming a malformed listen address (and the form expected) or an
// IPv6 one when civetweb is built without IPv6 (Debian 12's is),
// Unavailable naming an address that cannot be bound (in use, not on this host). Once started, a failure
// ends only the connection it happened on, or leaves out only the source it happened in.
// Time: the deadlines are civetweb's; the server reads no timestamps.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/metrics/prometheus_text.h"

namespace prometheus {
class Exposer;
}

namespace vs::metrics {

struct MetricsSource {
  std::string name;  // the value of the source label of virt_shadow_metrics_source_up
  std::function<StatusOr<std::vector<MetricFamily>>()> collect;
};

class MetricsServer {
 public:
  static constexpr int kWorkerThreads = 64;
  static constexpr Duration kRequestTimeout = std::chrono::seconds(2);

  // Binds `listen_address` ("10.77.0.11:9177", "127.0.0.1:0" for a free port, "[::1]:9177") and starts
  // serving the families of `sources`, in order. `log` gets a line for each source left out of a scrape.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen_address,
                                                        std::vector<MetricsSource> sources,
                                                        std::function<void(const std::string&)> log);

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  ~MetricsServer();  // closes the listening socket and every connection, joins the workers (up to ~2 s)

  // The bound port: the one asked for, or the one the kernel picked for port 0.
  uint16_t port() const { return port_; }

 private:
  class Sources;  // the prometheus::Collectable
  MetricsServer(std::shared_ptr<Sources> sources, std::unique_ptr<prometheus::Exposer> exposer);

  std::shared_ptr<Sources> sources_;  // shared: the Exposer holds a weak_ptr
  std::unique_ptr<prometheus::Exposer> exposer_;
  uint16_t port_ = 0;
};

}  // namespace vs::metrics
