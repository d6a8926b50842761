// A real scrape of every family shadowd serves (each producer fed with sample records, the sources as
// Daemon::MetricsSources composes them), checked by Prometheus' own `promtool check metrics`: its parser and
// its lint (naming, units, counters ending in _total). Skipped where promtool is not installed (Debian's
// `prometheus` package, in scripts/setup.sh).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "shadowd/cluster/membership_metrics.h"
#include "shadowd/failover/fence_records.h"
#include "shadowd/metrics/metrics_server.h"
#include "shadowd/metrics/process_metrics.h"
#include "shadowd/replication/replication_metrics.h"
#include "shadowd/switchover/switchover_metrics.h"

namespace vs::metrics {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::HasSubstr;
using Families = StatusOr<std::vector<MetricFamily>>;

std::string Scrape(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval receive_timeout{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string raw;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = raw.find("\r\n\r\n");
  EXPECT_NE(body, std::string::npos) << raw;
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 200")) << raw.substr(0, 200);
  return body == std::string::npos ? "" : raw.substr(body + 4);
}

// The sources of Daemon::MetricsSources, over sample records instead of the daemon's parts.
std::vector<MetricsSource> SampleSources(const switchover::SwitchoverTally& tally) {
  return {
      {"replication",
       []() -> Families {
         v1::ReplicationRecord replicated;
         replicated.set_vm_uuid("uuid-1");
         replicated.set_vm_name("web \"1\"");
         replicated.set_shadow_host("h2");
         replicated.mutable_applied()->set_taken_unix_ms(1'764'900'000'000);
         replicated.mutable_applied()->set_bytes_sent(1'048'576);
         replicated.set_rounds_applied(7);
         v1::ReplicaRecord held;
         held.set_vm_uuid("uuid-9");
         held.set_primary_host("h3");
         held.mutable_applied()->set_taken_unix_ms(1'764'900'010'000);
         return replication::ReplicationMetrics({replicated}, {held},
                                                FromUnixMillis(1'764'900'042'500));
       }},
      {"switchover",
       [&tally]() -> Families {
         v1::SwitchoverRecord last;
         last.set_vm_uuid("uuid-1");
         last.set_vm_name("web");
         last.set_target_host("h2");
         last.set_phase(v1::SWITCHOVER_PHASE_DONE);
         last.set_downtime_ms(180);
         last.set_requested_unix_ms(1'000);
         last.set_finished_unix_ms(31'000);
         v1::GuestFailedRecord failed;
         failed.set_vm_uuid("uuid-2");
         failed.set_vm_name("db");
         failed.set_origin_host("h3");
         auto families = tally.Families();
         for (auto& family : switchover::SwitchoverMetrics({last})) families.push_back(std::move(family));
         families.push_back(replication::GuestFailedMetric({failed}));
         return families;
       }},
      {"drain",
       []() -> Families {
         v1::DrainRecord drain;
         drain.set_deadline_unix_ms(1'764'900'030'000);
         return switchover::DrainMetrics(drain, 3);
       }},
      {"fencing",
       []() -> Families {
         v1::FenceRecord fenced;
         fenced.set_vm_uuid("uuid-3");
         fenced.set_vm_name("app");
         fenced.set_state(v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
         return failover::FenceMetrics({fenced});
       }},
      {"process", [] { return ProcessMetrics(); }},
      {"membership",
       []() -> Families {
         cluster::MembershipView view{.known = true, .quorate = true};
         view.hosts = {{.host = "h1", .state = cluster::HostMembership::kMember,
                        .last_seen = FromUnixMillis(1'764'900'000'000)},
                       {.host = "h2", .state = cluster::HostMembership::kAbsent},
                       {.host = "h3"}};
         return cluster::MembershipMetrics(view);
       }},
  };
}

// promtool's exit status and what it printed, checking `text` given on its standard input.
std::pair<int, std::string> PromtoolCheck(const std::string& text) {
  const std::filesystem::path input = std::filesystem::temp_directory_path() /
                                      ("vs-metrics-scrape-" + std::to_string(getpid()) + ".txt");
  std::ofstream(input) << text;
  const std::string command = "promtool check metrics < " + input.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buf[4096];
  for (size_t n; pipe && (n = fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
  const int status = pipe ? pclose(pipe) : -1;
  std::filesystem::remove(input);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(MetricsPromtoolTest, ARealScrapeOfEveryFamilyPassesPromtoolCheckMetrics) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package 'prometheus'); the scrape is not checked";
  }
  switchover::SwitchoverTally tally;
  v1::SwitchoverRecord ended;
  ended.set_phase(v1::SWITCHOVER_PHASE_DONE);
  ended.set_downtime_ms(180);
  tally.Count(ended);
  StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1:0", SampleSources(tally), nullptr);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string text = Scrape((*server)->port());
  // Every source was served (none left out), and the families of each are there.
  for (const char* source : {"replication", "switchover", "drain", "fencing", "process", "membership"}) {
    EXPECT_THAT(text, HasSubstr(std::string("virt_shadow_metrics_source_up{source=\"") + source + "\"} 1\n"));
  }
  for (const char* family :
       {"virt_shadow_replication_lag_seconds", "virt_shadow_switchovers_total", "virt_shadow_drain_vms_left",
        "virt_shadow_vm_fenced", "process_cpu_seconds_total", "virt_shadow_host_state", "exposer_scrapes_total"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + " "));
  }

  const auto [exit_code, output] = PromtoolCheck(text);
  std::printf("promtool check metrics (exit %d):%s%s\n", exit_code, output.empty() ? " no complaints" : "\n",
              output.c_str());
  EXPECT_EQ(exit_code, 0) << output;
  EXPECT_EQ(output, "") << "promtool's lint complained";
}

// The check above must be able to fail: promtool does reject what Prometheus would not take.
TEST(MetricsPromtoolTest, PromtoolRejectsABrokenExposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package 'prometheus')";
  }
  const auto [exit_code, output] = PromtoolCheck("# TYPE vs_bytes counter\nvs_bytes 1\nvs_bytes{a=\"1\" 2\n");
  EXPECT_NE(exit_code, 0) << output;
}

}  // namespace
}  // namespace vs::metrics
