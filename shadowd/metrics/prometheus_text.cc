#include "shadowd/metrics/prometheus_text.h"

#include <prometheus/text_serializer.h>

#include <set>
#include <string_view>

namespace vs::metrics {
namespace {

bool IsLetterOrUnderscore(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*; colons are reserved for recording rules but legal in exposition.
bool IsValidMetricName(std::string_view name) {
  if (name.empty() || IsDigit(name[0])) return false;
  for (char c : name) {
    if (!IsLetterOrUnderscore(c) && !IsDigit(c) && c != ':') return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*
bool IsValidLabelName(std::string_view name) {
  if (name.empty() || IsDigit(name[0])) return false;
  for (char c : name) {
    if (!IsLetterOrUnderscore(c) && !IsDigit(c)) return false;
  }
  return true;
}

Status ValidateFamily(const MetricFamily& family) {
  if (!IsValidMetricName(family.name)) {
    return InvalidArgument("metric family name '" + family.name +
                           "' is not a valid Prometheus metric name: it must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  for (const Sample& sample : family.samples) {
    std::set<std::string_view> seen;
    for (const auto& [label, value] : sample.labels) {
      if (!IsValidLabelName(label)) {
        return InvalidArgument("label name '" + label + "' of metric family '" + family.name +
                               "' is not a valid Prometheus label name: it must match [a-zA-Z_][a-zA-Z0-9_]*");
      }
      if (!seen.insert(label).second) {
        return InvalidArgument("label name '" + label + "' appears twice in one sample of metric family '" +
                               family.name + "'");
      }
    }
  }
  return Status::Ok();
}

// prometheus-cpp 1.0.1 writes the help text as it is (label values it escapes), so a backslash or a newline
// in it would break the exposition; the format wants them as \\ and \n.
std::string EscapedHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

prometheus::MetricType TypeOf(MetricFamily::Type type) {
  switch (type) {
    case MetricFamily::Type::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricFamily::Type::kCounter:
      return prometheus::MetricType::Counter;
    case MetricFamily::Type::kSummary:
      return prometheus::MetricType::Summary;
  }
  return prometheus::MetricType::Untyped;
}

prometheus::ClientMetric ToClientMetric(MetricFamily::Type type, const Sample& sample) {
  prometheus::ClientMetric metric;
  for (const auto& [name, value] : sample.labels) metric.label.push_back({name, value});
  switch (type) {
    case MetricFamily::Type::kGauge:
      metric.gauge.value = sample.value;
      break;
    case MetricFamily::Type::kCounter:
      metric.counter.value = sample.value;
      break;
    case MetricFamily::Type::kSummary:
      metric.summary.sample_sum = sample.value;
      metric.summary.sample_count = sample.count;
      break;
  }
  return metric;
}

}  // namespace

StatusOr<std::vector<prometheus::MetricFamily>> ToPrometheusFamilies(const std::vector<MetricFamily>& families) {
  std::set<std::string_view> names;
  for (const MetricFamily& family : families) {
    VS_RETURN_IF_ERROR(ValidateFamily(family));
    // Prometheus rejects the whole scrape when a family appears twice.
    if (!names.insert(family.name).second) {
      return InvalidArgument("metric family '" + family.name + "' appears twice; merge its samples into one family");
    }
  }
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  for (const MetricFamily& family : families) {
    prometheus::MetricFamily& converted = out.emplace_back();
    converted.name = family.name;
    converted.help = EscapedHelp(family.help);
    converted.type = TypeOf(family.type);
    for (const Sample& sample : family.samples) converted.metric.push_back(ToClientMetric(family.type, sample));
  }
  return out;
}

StatusOr<std::string> RenderPrometheusText(const std::vector<MetricFamily>& families) {
  VS_ASSIGN_OR_RETURN(const std::vector<prometheus::MetricFamily> converted, ToPrometheusFamilies(families));
  return prometheus::TextSerializer().Serialize(converted);
}

}  // namespace vs::metrics
