#include "shadowd/metrics/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
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

// Backslash and newline always; the double quote only inside label values (help is unquoted).
void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  // Counts (bytes, seconds since epoch, ...) stay readable and exact up to 2^53, the largest range
  // in which every integer is a double; std::to_chars would print 1e+15 for 10^15.
  constexpr double kMaxExactInteger = 9007199254740992.0;
  char buf[32];
  std::to_chars_result r;
  if (std::trunc(value) == value && std::fabs(value) <= kMaxExactInteger) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(value));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, value);  // shortest form that round-trips
  }
  out.append(buf, r.ptr);
}

std::string_view TypeName(MetricFamily::Type type) {
  switch (type) {
    case MetricFamily::Type::kGauge:
      return "gauge";
    case MetricFamily::Type::kCounter:
      return "counter";
  }
  return "untyped";
}

}  // namespace

StatusOr<std::string> RenderPrometheusText(const std::vector<MetricFamily>& families) {
  std::set<std::string_view> names;
  for (const MetricFamily& family : families) {
    VS_RETURN_IF_ERROR(ValidateFamily(family));
    // Prometheus rejects the whole scrape when a family appears twice.
    if (!names.insert(family.name).second) {
      return InvalidArgument("metric family '" + family.name + "' appears twice; merge its samples into one family");
    }
  }

  std::string out;
  for (const MetricFamily& family : families) {
    out += "# HELP ";
    out += family.name;
    out += ' ';
    AppendEscaped(out, family.help, /*escape_quote=*/false);
    out += "\n# TYPE ";
    out += family.name;
    out += ' ';
    out += TypeName(family.type);
    out += '\n';
    for (const Sample& sample : family.samples) {
      out += family.name;
      if (!sample.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < sample.labels.size(); ++i) {
          if (i > 0) out += ',';
          out += sample.labels[i].first;
          out += "=\"";
          AppendEscaped(out, sample.labels[i].second, /*escape_quote=*/true);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      AppendValue(out, sample.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace vs::metrics
