#include "shadowd/metrics/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace vs::metrics {
namespace {

using Type = MetricFamily::Type;

std::string RenderOrDie(const std::vector<MetricFamily>& families) {
  StatusOr<std::string> text = RenderPrometheusText(families);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

// The text of the single sample line of a one-sample family rendered with `value`.
std::string RenderedValue(double value) {
  std::string text = RenderOrDie({{.name = "m", .help = "h", .samples = {{.value = value}}}});
  const std::string prefix = "# HELP m h\n# TYPE m gauge\nm ";
  EXPECT_TRUE(text.starts_with(prefix)) << text;
  EXPECT_TRUE(text.ends_with("\n")) << text;
  return text.substr(prefix.size(), text.size() - prefix.size() - 1);
}

TEST(PrometheusTextTest, RendersHelpTypeAndOneLinePerSample) {
  std::vector<MetricFamily> families = {
      {.name = "vs_replication_lag_seconds",
       .help = "Seconds the shadow is behind.",
       .type = Type::kGauge,
       .samples = {{.labels = {{"vm", "web-1"}, {"disk", "vda"}}, .value = 1.5}, {.labels = {{"vm", "db"}}, .value = 0}}},
      {.name = "vs_switchovers_total", .help = "Switchovers started.", .type = Type::kCounter, .samples = {{.value = 7}}},
  };
  EXPECT_EQ(RenderOrDie(families),
            "# HELP vs_replication_lag_seconds Seconds the shadow is behind.\n"
            "# TYPE vs_replication_lag_seconds gauge\n"
            "vs_replication_lag_seconds{vm=\"web-1\",disk=\"vda\"} 1.5\n"
            "vs_replication_lag_seconds{vm=\"db\"} 0\n"
            "# HELP vs_switchovers_total Switchovers started.\n"
            "# TYPE vs_switchovers_total counter\n"
            "vs_switchovers_total 7\n");
}

TEST(PrometheusTextTest, EmptyInputRendersNothingAndAFamilyWithoutSamplesOnlyItsType) {
  EXPECT_EQ(RenderOrDie({}), "");
  EXPECT_EQ(RenderOrDie({{.name = "vs_vms", .help = "", .type = Type::kCounter}}), "# TYPE vs_vms counter\n");
}

TEST(PrometheusTextTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  std::string text = RenderOrDie(
      {{.name = "m", .help = "h", .samples = {{.labels = {{"path", "C:\\dir \"x\"\nnext"}}, .value = 1}}}});
  EXPECT_NE(text.find("m{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n"), std::string::npos) << text;
}

TEST(PrometheusTextTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  std::string text = RenderOrDie({{.name = "m", .help = "a\\b\nc \"q\""}});
  EXPECT_EQ(text, "# HELP m a\\\\b\\nc \"q\"\n# TYPE m gauge\n");
}

TEST(PrometheusTextTest, ValuesReadBackAndSpecialValuesAreSpelledSoPrometheusParsesThem) {
  EXPECT_EQ(RenderedValue(0), "0");
  EXPECT_EQ(RenderedValue(-3), "-3");
  EXPECT_EQ(RenderedValue(0.5), "0.5");
  EXPECT_EQ(RenderedValue(1048576), "1048576");
  for (double v : {0.1, -2.5, 1.5e-7, 1764966682.123, 1e300}) {
    std::string text = RenderedValue(v);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
  EXPECT_EQ(RenderedValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(RenderedValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_TRUE(std::isnan(std::strtod(RenderedValue(std::numeric_limits<double>::quiet_NaN()).c_str(), nullptr)));
}

TEST(PrometheusTextTest, ASummaryRendersItsSumAndCount) {
  EXPECT_EQ(RenderOrDie({{.name = "vs_downtime_seconds",
                          .help = "h",
                          .type = Type::kSummary,
                          .samples = {{.value = 1.25, .count = 3}}}}),
            "# HELP vs_downtime_seconds h\n# TYPE vs_downtime_seconds summary\n"
            "vs_downtime_seconds_count 3\nvs_downtime_seconds_sum 1.25\n");
}

TEST(PrometheusTextTest, ConversionKeepsOrderTypesAndLabels) {
  StatusOr<std::vector<prometheus::MetricFamily>> converted = ToPrometheusFamilies(
      {{.name = "b", .type = Type::kCounter, .samples = {{.labels = {{"z", "1"}, {"a", "2"}}, .value = 4}}},
       {.name = "a"}});
  ASSERT_TRUE(converted.ok()) << converted.status().ToString();
  ASSERT_EQ(converted->size(), 2u);
  EXPECT_EQ((*converted)[0].name, "b");
  EXPECT_EQ((*converted)[0].type, prometheus::MetricType::Counter);
  ASSERT_EQ((*converted)[0].metric.size(), 1u);
  EXPECT_EQ((*converted)[0].metric[0].counter.value, 4);
  ASSERT_EQ((*converted)[0].metric[0].label.size(), 2u);
  EXPECT_EQ((*converted)[0].metric[0].label[0].name, "z");
  EXPECT_EQ((*converted)[1].name, "a");
  EXPECT_EQ((*converted)[1].type, prometheus::MetricType::Gauge);
}

TEST(PrometheusTextTest, AcceptsEveryCharacterClassOfValidNames) {
  EXPECT_TRUE(RenderPrometheusText({{.name = "_a:b_C9", .samples = {{.labels = {{"_x9", "v"}, {"Y", ""}}}}},
                                    {.name = ":rule"}})
                  .ok());
}

TEST(PrometheusTextTest, BadMetricNamesAreRefusedByName) {
  for (const char* bad : {"", "1abc", "a-b", "a b", "a.b", "ä"}) {
    StatusOr<std::string> text = RenderPrometheusText({{.name = "good"}, {.name = bad}});
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_EQ(text.status().code(), Code::kInvalidArgument);
    EXPECT_NE(text.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << text.status().message();
    EXPECT_NE(text.status().message().find("[a-zA-Z_:][a-zA-Z0-9_:]*"), std::string::npos);
  }
}

TEST(PrometheusTextTest, BadLabelNamesAreRefusedNamingLabelAndFamily) {
  for (const char* bad : {"", "1a", "a:b", "a-b", "a b"}) {
    StatusOr<std::string> text =
        RenderPrometheusText({{.name = "vs_fam", .samples = {{.labels = {{"ok", "1"}, {bad, "v"}}}}}});
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_EQ(text.status().code(), Code::kInvalidArgument);
    EXPECT_NE(text.status().message().find(std::string("label name '") + bad + "'"), std::string::npos)
        << text.status().message();
    EXPECT_NE(text.status().message().find("'vs_fam'"), std::string::npos) << text.status().message();
  }
}

TEST(PrometheusTextTest, DuplicateFamiliesAndDuplicateLabelsAreRefused) {
  StatusOr<std::string> twice = RenderPrometheusText({{.name = "m"}, {.name = "n"}, {.name = "m"}});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), Code::kInvalidArgument);
  EXPECT_NE(twice.status().message().find("'m' appears twice"), std::string::npos) << twice.status().message();

  StatusOr<std::string> label_twice =
      RenderPrometheusText({{.name = "m", .samples = {{.labels = {{"vm", "a"}, {"vm", "b"}}}}}});
  ASSERT_FALSE(label_twice.ok());
  EXPECT_EQ(label_twice.status().code(), Code::kInvalidArgument);
  EXPECT_NE(label_twice.status().message().find("'vm' appears twice"), std::string::npos);

  // The same label name in different samples is the normal case.
  EXPECT_TRUE(
      RenderPrometheusText({{.name = "m", .samples = {{.labels = {{"vm", "a"}}}, {.labels = {{"vm", "b"}}}}}}).ok());
}

}  // namespace
}  // namespace vs::metrics
