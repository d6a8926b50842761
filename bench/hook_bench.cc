// hook_bench: what the libvirt hook adds to every VM start, exec to exit, as libvirtd runs it.
//
// Scenarios, interleaved round by round so that background load hits all of them alike:
//   baseline   exec of /bin/true with the same stdin: the cost of any hook at all
//   untagged   a domain without a policy: the fast path (no parse, no connection, no spool)
//   answering  a tagged domain, shadowd's hook socket listener answers (in process, tests/unit/hook)
//   down       a tagged domain, no socket: connect fails, the event is spooled (2 fsyncs)
//   hung       a tagged domain, a socket that accepts and never answers: deadline, then spool
// Prints the p50 (median), p99, min and max of each, the median's ratio to the baseline and the latency added at
// p50 and p99. Usage: hook_bench [rounds]  (default 101)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unit/hook/hook_process_harness.h"
#include "tests/unit/hook/test_support.h"

namespace {

using vs::Duration;
using namespace vs::hook::testing;

struct Scenario {
  std::string name;
  std::vector<std::string> argv;
  std::string xml;
  std::string socket;
};

int Run(int rounds) {
  std::unique_ptr<vs::Clock> clock = vs::NewRealClock();
  TempDir dir;
  const std::string spool_dir = dir.Sub("spool");
  const std::vector<std::string> prepare = {VS_HOOK_BINARY, "web-1", "prepare", "begin", "-"};
  // Each shadowd has its own socket so that the scenarios can be interleaved.
  const std::string answering_socket = dir.Sub("answering.sock");
  const std::string hung_socket = dir.Sub("hung.sock");
  const std::string absent_socket = dir.Sub("absent.sock");

  vs::StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(answering_socket);
  vs::StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(hung_socket);
  if (!shadowd.ok() || !hung.ok()) {
    std::fprintf(stderr, "setup failed: %s %s\n", shadowd.status().ToString().c_str(),
                 hung.status().ToString().c_str());
    return 2;
  }

  const std::vector<Scenario> scenarios = {
      {"baseline /bin/true", {"/bin/true"}, TaggedXml(), absent_socket},
      {"untagged", prepare, UntaggedXml(), answering_socket},
      {"tagged, shadowd answering", prepare, TaggedXml(), answering_socket},
      {"tagged, shadowd down", prepare, TaggedXml(), absent_socket},
      {"tagged, shadowd hung", prepare, TaggedXml(), hung_socket},
  };
  std::vector<std::vector<Duration>> samples(scenarios.size());
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
      const Scenario& scenario = scenarios[i];
      vs::StatusOr<ProcessResult> result =
          RunProcess(scenario.argv, HookEnvironment(scenario.socket, spool_dir), scenario.xml, *clock);
      if (!result.ok() || result->exit_code != 0 || !result->stdout_text.empty()) {
        std::fprintf(stderr, "%s: unexpected result: %s exit=%d stderr=%s\n", scenario.name.c_str(),
                     result.status().ToString().c_str(), result.ok() ? result->exit_code : -1,
                     result.ok() ? result->stderr_text.c_str() : "");
        return 1;
      }
      samples[i].push_back(result->elapsed);
    }
  }
  if ((*shadowd)->events().size() != static_cast<std::size_t>(rounds)) {
    std::fprintf(stderr, "shadowd got %zu events, expected %d\n", (*shadowd)->events().size(), rounds);
    return 1;
  }

  // p99 as the sample at rank ceil(0.99 n): with 31 rounds the slowest, with 101 the second slowest.
  auto p99 = [](std::vector<Duration> values) {
    std::sort(values.begin(), values.end());
    const std::size_t rank = (values.size() * 99 + 99) / 100;
    return Milliseconds(values[std::min(values.size(), std::max<std::size_t>(rank, 1)) - 1]);
  };
  const double baseline = Milliseconds(Median(samples[0]));
  const double baseline_p99 = p99(samples[0]);
  std::printf("hook_bench: %d rounds, exec to exit, milliseconds (budget: 50 ms; aim for a tagged VM with shadowd "
              "answering: p99 5 ms or less)\n",
              rounds);
  std::printf("%-28s %8s %8s %8s %8s %9s %11s %11s\n", "scenario", "p50", "p99", "min", "max", "x true",
              "added p50", "added p99");
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    std::vector<Duration> sorted = samples[i];
    std::sort(sorted.begin(), sorted.end());
    const double median = Milliseconds(Median(samples[i])), tail = p99(samples[i]);
    std::printf("%-28s %8.2f %8.2f %8.2f %8.2f %8.1fx %+10.2f %+10.2f\n", scenarios[i].name.c_str(), median, tail,
                Milliseconds(sorted.front()), Milliseconds(sorted.back()), median / baseline, median - baseline,
                tail - baseline_p99);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 101;
  if (rounds <= 0) {
    std::fprintf(stderr, "usage: hook_bench [rounds > 0]\n");
    return 2;
  }
  return Run(rounds);
}
