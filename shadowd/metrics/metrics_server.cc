#include "shadowd/metrics/metrics_server.h"

#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <exception>
#include <set>
#include <string_view>
#include <utility>

#include "common/asio_endpoint.h"
#include "common/host_port.h"
#include "common/thread_annotations.h"

namespace vs::metrics {
namespace {

// The listen address as civetweb's listening_ports wants it: IPv4:port or [IPv6]:port, numeric.
StatusOr<std::string> CivetListenAddress(const std::string& address) {
  auto bad = [&address](std::string_view why) {
    return InvalidArgument("metrics listen address '" + address + "' is not valid (" + std::string(why) +
                           "); expected IPv4:port or [IPv6]:port, e.g. 10.77.0.11:9177 or [::1]:9177 "
                           "(port 0 picks a free port)");
  };
  StatusOr<HostPort> split = SplitHostPort(address);
  if (!split.ok()) return bad(split.status().message());
  if (!split->port) return bad("no ':port'");
  StatusOr<boost::asio::ip::tcp::endpoint> endpoint = IpEndpoint(*split, *split->port);
  if (!endpoint.ok()) return bad(endpoint.status().message());
  // Feature 8 is IPv6; Debian 12's civetweb is built without it, and would only say it cannot bind.
  constexpr unsigned kCivetIpv6 = 8;
  if (endpoint->address().is_v6() && mg_check_feature(kCivetIpv6) == 0) {
    return InvalidArgument("metrics listen address '" + address +
                           "' is IPv6, which this build's civetweb (under prometheus-cpp's Exposer) cannot "
                           "listen on; give an IPv4 address of this host");
  }
  return JoinHostPort(endpoint->address().to_string(), *split->port);
}

}  // namespace

class MetricsServer::Sources : public prometheus::Collectable {
 public:
  Sources(std::vector<MetricsSource> sources, std::function<void(const std::string&)> log)
      : sources_(std::move(sources)), log_(std::move(log)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    MutexLock lock(mutex_);
    std::vector<prometheus::MetricFamily> served;
    MetricFamily up{"virt_shadow_metrics_source_up",
                    "1 when the source's metrics are in this scrape; 0 when they could not be read (shadowd's log "
                    "says why).",
                    MetricFamily::Type::kGauge, {}};
    std::set<std::string> names = {up.name};
    for (const MetricsSource& source : sources_) {
      Status collected = Add(source, names, served);
      if (!collected.ok() && log_) {
        log_("metrics of " + source.name + " left out of this scrape: " + collected.ToString());
      }
      up.samples.push_back({{{"source", source.name}}, collected.ok() ? 1.0 : 0.0});
    }
    // The names are checked above; this family cannot fail.
    if (auto converted = ToPrometheusFamilies({up}); converted.ok()) served.push_back(std::move(converted->front()));
    return served;
  }

 private:
  // Appends the source's families to `served` unless one of them fails or clashes with `names`.
  static Status Add(const MetricsSource& source, std::set<std::string>& names,
                    std::vector<prometheus::MetricFamily>& served) {
    VS_ASSIGN_OR_RETURN(const std::vector<MetricFamily> families, source.collect());
    VS_ASSIGN_OR_RETURN(std::vector<prometheus::MetricFamily> converted, ToPrometheusFamilies(families));
    for (const prometheus::MetricFamily& family : converted) {
      if (names.contains(family.name)) {
        return InvalidArgument("metric family '" + family.name + "' is already served by another source");
      }
    }
    for (prometheus::MetricFamily& family : converted) {
      names.insert(family.name);
      served.push_back(std::move(family));
    }
    return Status::Ok();
  }

  // Serialises collections: scrapes may arrive on several workers at once, but sources are written to be
  // called one at a time.
  mutable Mutex mutex_;
  const std::vector<MetricsSource> sources_;
  const std::function<void(const std::string&)> log_;
};

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen_address,
                                                              std::vector<MetricsSource> sources,
                                                              std::function<void(const std::string&)> log) {
  for (const MetricsSource& source : sources) {
    if (!source.collect) return InvalidArgument("metrics source '" + source.name + "' has no collect function");
  }
  VS_ASSIGN_OR_RETURN(const std::string civet_address, CivetListenAddress(listen_address));
  std::vector<std::string> options = {
      "listening_ports", civet_address,
      "num_threads", std::to_string(kWorkerThreads),
      "request_timeout_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(kRequestTimeout).count()),
      "enable_keep_alive", "no",
  };
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(std::move(options));
  } catch (const std::exception& e) {
    // civetweb says no more than that it could not start; binding is what fails in practice.
    return Unavailable("cannot listen on metrics address '" + listen_address + "' (" + e.what() +
                       "); is the address one of this host's, and is the port free?");
  }
  auto collectable = std::make_shared<Sources>(std::move(sources), std::move(log));
  exposer->RegisterCollectable(collectable);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(collectable), std::move(exposer)));
}

MetricsServer::MetricsServer(std::shared_ptr<Sources> sources, std::unique_ptr<prometheus::Exposer> exposer)
    : sources_(std::move(sources)), exposer_(std::move(exposer)) {
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (!ports.empty()) port_ = static_cast<uint16_t>(ports.front());
}

MetricsServer::~MetricsServer() = default;

}  // namespace vs::metrics
