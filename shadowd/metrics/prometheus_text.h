// A model of the metrics shadowd exports, and its conversion to prometheus-cpp's families, which the
// metrics server (metrics_server.h) serves in the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Callers build a vector of MetricFamily from their current state on each scrape; nothing here
// keeps state between scrapes, so there is no registry to register with or to forget about.
//
// Failure modes: a family or label whose name the format cannot carry, a family name used twice
// or a label name repeated within one sample is a programming error in the caller; the functions
// return InvalidArgument naming it rather than emitting text that Prometheus would reject as a whole.
// Label values and help texts may hold any bytes: they are escaped (the help here, since prometheus-cpp
// escapes only label values). An empty help text is left out ("# HELP" is optional).
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "common/status.h"

namespace vs::metrics {

struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;  // (name, value), rendered in this order
  double value = 0;    // a summary's sum of observations
  uint64_t count = 0;  // a summary's number of observations; unused by gauges and counters
};

struct MetricFamily {
  // A summary carries no quantiles: only <name>_sum (the samples' value) and <name>_count.
  enum class Type { kGauge, kCounter, kSummary };
  std::string name;  // must match [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;  // may be empty: the family is then announced with no series
};

// The families as prometheus-cpp's, in order, after checking every name (see above).
StatusOr<std::vector<prometheus::MetricFamily>> ToPrometheusFamilies(const std::vector<MetricFamily>& families);

// The exposition text of the families: "# HELP", "# TYPE" and the sample lines of every family, in
// order, exactly as the metrics server serves them (prometheus-cpp's TextSerializer).
StatusOr<std::string> RenderPrometheusText(const std::vector<MetricFamily>& families);

}  // namespace vs::metrics
