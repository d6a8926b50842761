// A model of the metrics shadowd exports and its rendering in the Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Callers build a vector of MetricFamily from their current state on each scrape; nothing here
// keeps state between scrapes, so there is no registry to register with or to forget about.
//
// Failure modes: a family or label whose name the format cannot carry, a family name used twice
// or a label name repeated within one sample is a programming error in the caller; Render returns
// InvalidArgument naming it rather than emitting text that Prometheus would reject as a whole.
// Label values and help texts may hold any bytes: they are escaped.
// Thread-safety: pure functions over values.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace vs::metrics {

struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;  // (name, value), rendered in this order
  double value = 0;
};

struct MetricFamily {
  enum class Type { kGauge, kCounter };
  std::string name;  // must match [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;  // may be empty: the family is then announced with no series
};

// "# HELP", "# TYPE" and one line per sample for every family, in order. Integral values up to
// 2^53 in magnitude print without exponent; other finite values print in the shortest form that
// reads back to the same double; NaN, +Inf and -Inf print as Prometheus spells them.
StatusOr<std::string> RenderPrometheusText(const std::vector<MetricFamily>& families);

}  // namespace vs::metrics
