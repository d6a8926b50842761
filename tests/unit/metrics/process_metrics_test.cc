// ProcessMetrics: the standard process_* families, from a directory laid out like procfs and from the real one.
#include "shadowd/metrics/process_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace vs::metrics {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::map<std::string, double> ByName(const std::vector<MetricFamily>& families) {
  std::map<std::string, double> out;
  for (const MetricFamily& family : families) {
    EXPECT_EQ(family.samples.size(), 1u) << family.name;
    if (!family.samples.empty()) out[family.name] = family.samples.front().value;
  }
  return out;
}

class FakeProcTest : public ::testing::Test {
 protected:
  FakeProcTest() {
    char pattern[] = "/tmp/vs-fake-proc-XXXXXX";
    root_ = mkdtemp(pattern);
    fs::create_directories(root_ / "self" / "fd");
    for (const char* fd : {"0", "1", "2", "7"}) Write("self/fd/" + std::string(fd), "");
    // comm holds a space and a ')' to show the fields are counted from the last one.
    // Fields 14 (utime) 250, 15 (stime) 150, 22 (starttime) 1000 ticks.
    Write("self/stat", "4242 (shadow d) R) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 1000 "
                       "123456789 777 18446744073709551615\n");
    Write("self/statm", "5000 1234 300 10 0 900 0\n");
    Write("stat", "cpu  1 2 3 4\nintr 5\nbtime 1764900000\nprocesses 99\n");
  }
  ~FakeProcTest() override { fs::remove_all(root_); }

  void Write(const std::string& relative, const std::string& text) { std::ofstream(root_ / relative) << text; }

  fs::path root_;
};

TEST_F(FakeProcTest, ReadsCpuResidentMemoryOpenFdsAndStartTime) {
  StatusOr<std::vector<MetricFamily>> families = ProcessMetrics(root_);
  ASSERT_TRUE(families.ok()) << families.status().ToString();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const std::map<std::string, double> values = ByName(*families);
  EXPECT_EQ(values.size(), 4u);
  EXPECT_DOUBLE_EQ(values.at("process_cpu_seconds_total"), 400 / ticks);
  EXPECT_DOUBLE_EQ(values.at("process_resident_memory_bytes"), 1234.0 * sysconf(_SC_PAGESIZE));
  EXPECT_EQ(values.at("process_open_fds"), 4);
  EXPECT_DOUBLE_EQ(values.at("process_start_time_seconds"), 1764900000 + 1000 / ticks);
  EXPECT_EQ(families->front().type, MetricFamily::Type::kCounter);
  EXPECT_TRUE(RenderPrometheusText(*families).ok());
}

TEST_F(FakeProcTest, AMissingOrMalformedFileIsAnErrorNamingIt) {
  Write("self/stat", "4242 (x) S 1 2 3\n");
  StatusOr<std::vector<MetricFamily>> short_stat = ProcessMetrics(root_);
  ASSERT_FALSE(short_stat.ok());
  EXPECT_THAT(short_stat.status().message(), HasSubstr("self/stat has fewer than 22 fields"));

  fs::remove(root_ / "stat");
  Write("self/stat", "1 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 1000\n");
  StatusOr<std::vector<MetricFamily>> no_btime = ProcessMetrics(root_);
  ASSERT_FALSE(no_btime.ok());
  EXPECT_EQ(no_btime.status().code(), Code::kUnavailable);
  EXPECT_THAT(no_btime.status().message(), HasSubstr((root_ / "stat").string()));
}

TEST(ProcessMetricsTest, TheRealProcessLooksLikeThisTestProcess) {
  StatusOr<std::vector<MetricFamily>> families = ProcessMetrics();
  ASSERT_TRUE(families.ok()) << families.status().ToString();
  const std::map<std::string, double> values = ByName(*families);
  EXPECT_GT(values.at("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(values.at("process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GE(values.at("process_cpu_seconds_total"), 0);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(values.at("process_start_time_seconds"), now + 1);
  EXPECT_GT(values.at("process_start_time_seconds"), now - 3600) << "this test started within the hour";
}

}  // namespace
}  // namespace vs::metrics
