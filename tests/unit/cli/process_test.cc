// The real virt-shadow binary, run as a user runs it: against a fake shadowd on a temporary unix
// socket (list, status, explain, hosts, NOT_FOUND, and the switchover commands: switchover, drain,
// undrain, failback, switchovers), no shadowd, a hung one and one only root may reach (exit 3), libvirt's
// test:///default driver for tag/untag (in-process in virt-shadow: no libvirtd), and the bash
// completion sourced into bash.
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/unit/cli/fake_shadowd.h"

extern char** environ;

namespace vs::cli {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using nlohmann::json;

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  Duration elapsed{};
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int LineCount(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

class CliProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vs-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr) << std::strerror(errno);
    dir_ = pattern;
    socket_ = dir_ + "/shadowd.sock";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Runs `argv` with exactly `env`, stdin from /dev/null, both outputs captured.
  ProcessResult Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    const std::string out_path = dir_ + "/stdout", err_path = dir_ + "/stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv_c, env_c;
    for (const std::string& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
    for (const std::string& e : env) env_c.push_back(const_cast<char*>(e.c_str()));
    argv_c.push_back(nullptr);
    env_c.push_back(nullptr);
    ProcessResult result;
    const MonoTime start = clock_->Now();
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, argv_c[0], &actions, nullptr, argv_c.data(), env_c.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(error, 0) << "posix_spawn " << argv[0] << ": " << std::strerror(error);
    if (error != 0) return result;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.elapsed = clock_->Now() - start;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = ReadFile(out_path);
    result.err = ReadFile(err_path);
    return result;
  }

  std::vector<std::string> BaseEnvironment() const {
    const char* path = std::getenv("PATH");
    return {"LC_ALL=C", std::string("PATH=") + (path ? path : "/usr/bin:/bin")};
  }

  ProcessResult RunCli(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
    args.insert(args.begin(), VS_CLI_BINARY);
    std::vector<std::string> env = BaseEnvironment();
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return Spawn(args, env);
  }

  // What bash completes for `line` (the cursor at its end), one candidate per element.
  std::vector<std::string> Complete(const std::string& line) {
    ProcessResult result = Spawn(
        {"/bin/bash", "-c",
         R"(source "$1" && COMP_LINE=$2 && COMP_POINT=${#COMP_LINE} && _virt_shadow &&)"
         R"( printf '%s\n' "${COMPREPLY[@]}")",
         "bash", VS_CLI_SOURCE_DIR "/virt-shadow.bash-completion", line},
        BaseEnvironment());
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::vector<std::string> words;
    std::istringstream lines(result.out);
    for (std::string word; std::getline(lines, word);) {
      if (!word.empty()) words.push_back(word);
    }
    return words;
  }

  // A shadowd on h1 that knows web-1 (moved to h2 by a switchover that worked, and back by a failback)
  // and db-1 (whose switchover to h3 failed); `adjust` changes the answers before it starts.
  void StartShadowd(const std::function<void(testing::ShadowdAnswers&)>& adjust = {}) {
    testing::ShadowdAnswers answers;
    v1::VmStatus web;
    web.set_name("web-1");
    web.set_uuid("11111111-2222-3333-4444-555555555555");
    web.set_state("Protected");
    web.set_running(true);
    web.set_primary_host("h1");
    v1::ShadowInfo* shadow = web.add_shadows();
    shadow->set_host("h2");
    shadow->set_name("web-1.shadow");
    web.set_shadow_vcpus(1);
    web.set_shadow_memory_kib(256 * 1024);
    web.set_policy(R"(<policy enabled="yes" vcpus="50%" memory="256MiB"/>)");
    answers.vms.push_back(web);
    v1::VmStatus db;
    db.set_name("db-1");
    db.set_state("PolicyInvalid");
    db.set_last_error("policy attribute 'vcpus': 'lots' is not a vCPU count");
    answers.vms.push_back(db);
    v1::ExplainReply explanation;
    explanation.set_vm("web-1");
    explanation.set_summary("placed in another zone");
    explanation.add_chosen_hosts("h2");
    v1::HostVerdict* verdict = explanation.add_hosts();
    verdict->set_host("h2");
    verdict->set_zone("zone-b");
    verdict->set_verdict("chosen");
    verdict->set_rank(1);
    verdict->set_reason("cheapest in another zone");
    verdict = explanation.add_hosts();
    verdict->set_host("h1");
    verdict->set_zone("zone-a");
    verdict->set_verdict("rejected");
    verdict->set_reason("the primary's host");
    answers.explanations["web-1"] = explanation;
    answers.hosts.set_this_host("h1");
    for (const char* name : {"h1", "h2"}) {
      v1::HostInfo* host = answers.hosts.add_hosts();
      host->set_name(name);
      host->set_zone(name == std::string("h1") ? "zone-a" : "zone-b");
      host->set_up(true);
      host->set_cpus(4);
      host->set_memory_kib(8 * 1024 * 1024);
    }
    answers.hosts.mutable_hosts(1)->set_draining(true);
    v1::SwitchoverRecord done;
    done.set_vm_name("web-1");
    done.set_source_host("h1");
    done.set_target_host("h2");
    done.set_phase(v1::SWITCHOVER_PHASE_DONE);
    done.set_reason("cli");
    done.set_requested_unix_ms(1714564984000);
    done.set_running_on_target_unix_ms(1714564984000 + 4'200);
    done.set_finished_unix_ms(1714564984000 + 5'000);
    done.set_downtime_ms(38);
    answers.switchovers["web-1"] = done;
    v1::SwitchoverRecord failed;
    failed.set_vm_name("db-1");
    failed.set_source_host("h1");
    failed.set_target_host("h3");
    failed.set_phase(v1::SWITCHOVER_PHASE_FAILED);
    failed.set_fallback(true);
    failed.set_check_result("no shadow domain of db-1 on h3");
    failed.set_error("migrating: unable to connect to h3");
    answers.switchovers["db-1"] = failed;
    *answers.drain.add_records() = done;
    *answers.drain.add_records() = failed;
    answers.drain.add_skipped("batch-7: unprotected, no shadow to go to");
    answers.draining = true;
    v1::FailbackReply failback;
    failback.set_origin_host("h1");
    *failback.mutable_record() = done;
    failback.mutable_record()->set_reason("failback");
    answers.failbacks["web-1"] = failback;
    *answers.switchover_list.add_records() = done;
    *answers.switchover_list.add_records() = failed;
    answers.switchover_list.mutable_host()->set_draining(true);
    answers.switchover_list.mutable_host()->set_drain_reason("kernel upgrade");
    if (adjust) adjust(answers);
    StatusOr<std::unique_ptr<testing::FakeShadowd>> started = testing::FakeShadowd::Start(socket_, answers);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    shadowd_ = std::move(started).value();
  }

  std::unique_ptr<Clock> clock_ = NewRealClock();
  std::string dir_;
  std::string socket_;
  std::unique_ptr<testing::FakeShadowd> shadowd_;
};

TEST_F(CliProcessTest, ListShowsEveryVmAsTableAndJson) {
  StartShadowd();
  ProcessResult table = RunCli({"list", "--socket", socket_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.err, "");
  EXPECT_EQ(LineCount(table.out), 4);
  EXPECT_THAT(table.out, HasSubstr("Shadow host(s)"));
  EXPECT_THAT(table.out, HasSubstr("web-1"));
  EXPECT_THAT(table.out, HasSubstr("1 vCPU, 256 MiB"));
  EXPECT_THAT(table.out, HasSubstr("policy attribute 'vcpus'"));

  ProcessResult as_json = RunCli({"--json", "list"}, {"VS_SHADOWD_SOCKET=" + socket_});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  json parsed = json::parse(as_json.out);
  ASSERT_EQ(parsed["vms"].size(), 2u);
  EXPECT_EQ(parsed["vms"][0]["shadows"][0]["host"], "h2");
  EXPECT_EQ(parsed["vms"][1]["state"], "PolicyInvalid");
}

TEST_F(CliProcessTest, StatusAsksForTheDomainAndShowsIt) {
  StartShadowd();
  ProcessResult result = RunCli({"status", "web-1", "--socket=" + socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("Primary host:"));
  EXPECT_THAT(result.out, HasSubstr("h2: web-1.shadow"));
  EXPECT_THAT(result.out, HasSubstr(R"(<policy enabled="yes" vcpus="50%" memory="256MiB"/>)"));
  ProcessResult by_uuid = RunCli({"--json", "status", "11111111-2222-3333-4444-555555555555", "--socket", socket_});
  ASSERT_EQ(by_uuid.exit_code, 0) << by_uuid.err;
  EXPECT_EQ(json::parse(by_uuid.out)["name"], "web-1");
  EXPECT_THAT(shadowd_->requested_vms(), ElementsAre("web-1", "11111111-2222-3333-4444-555555555555"));
}

TEST_F(CliProcessTest, ExplainShowsEachHostsVerdict) {
  StartShadowd();
  ProcessResult result = RunCli({"explain", "web-1", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("placed in another zone"));
  EXPECT_THAT(result.out, HasSubstr("cheapest in another zone"));
  EXPECT_THAT(result.out, HasSubstr("rejected"));
  ProcessResult as_json = RunCli({"explain", "web-1", "--socket", socket_, "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out)["hosts"][1]["verdict"], "rejected");
}

TEST_F(CliProcessTest, HostsMarksThisHost) {
  StartShadowd();
  ProcessResult result = RunCli({"hosts", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("h1 (this host)"));
  EXPECT_THAT(result.out, HasSubstr("zone-b"));
  EXPECT_THAT(result.out, HasSubstr("8 GiB"));
  ProcessResult as_json = RunCli({"hosts", "--socket", socket_, "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out)["this_host"], "h1");
}

TEST_F(CliProcessTest, HostsShowsADrainingHost) {
  StartShadowd();
  ProcessResult result = RunCli({"hosts", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("draining"));
  ProcessResult as_json = RunCli({"hosts", "--socket", socket_, "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out)["hosts"][1]["draining"], true);
}

TEST_F(CliProcessTest, SwitchoverPassesTheDeadlineAndPrintsTheOutcome) {
  StartShadowd();
  ProcessResult result = RunCli({"switchover", "web-1", "--deadline", "60", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_THAT(result.out, HasSubstr("Phase:              Done\n"));
  EXPECT_THAT(result.out, HasSubstr("Target host:        h2\n"));
  EXPECT_THAT(result.out, HasSubstr("Running on target:  4.2 s after the request\n"));
  ProcessResult as_json = RunCli({"--json", "switchover", "web-1", "--socket", socket_});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out)["record"]["phase"], "SWITCHOVER_PHASE_DONE");
  EXPECT_THAT(shadowd_->calls(),
              ElementsAre("Switchover vm: \"web-1\" deadline_seconds: 60", "Switchover vm: \"web-1\""));
}

TEST_F(CliProcessTest, FailedSwitchoverIsExit1WithTheErrorOnOneLine) {
  StartShadowd();
  for (const bool as_json : {false, true}) {
    std::vector<std::string> args = {"switchover", "db-1", "--socket", socket_};
    if (as_json) args.push_back("--json");
    ProcessResult result = RunCli(args);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_THAT(result.err, StartsWith("virt-shadow: the switchover of VM 'db-1' to host 'h3' failed: migrating: "
                                       "unable to connect to h3; "));
    EXPECT_EQ(LineCount(result.err), 1) << result.err;
    if (as_json) {
      EXPECT_EQ(json::parse(result.out)["record"]["check_result"], "no shadow domain of db-1 on h3");
    } else {
      EXPECT_THAT(result.out, HasSubstr("Fallback:           yes (--copy-storage-all)\n"));
      EXPECT_THAT(result.out, HasSubstr("no shadow domain of db-1 on h3"));
    }
  }
  ProcessResult unknown = RunCli({"switchover", "nosuch", "--socket", socket_});
  EXPECT_EQ(unknown.exit_code, 4);
  EXPECT_THAT(unknown.err, StartsWith("virt-shadow: shadowd has no record of a switchover of VM 'nosuch'"));
}

TEST_F(CliProcessTest, DrainAndUndrainRefuseAnotherHostBeforeAskingShadowd) {
  StartShadowd();
  for (const char* command : {"drain", "undrain"}) {
    ProcessResult result = RunCli({command, "h2", "--socket", socket_});
    EXPECT_EQ(result.exit_code, 2) << command;
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(result.err, "virt-shadow: cannot " + std::string(command) + " host 'h2': this shadowd runs on 'h1' and "
                              "each shadowd " + command + "s only its own host; run 'virt-shadow " + command +
                              " h2' on h2\n");
  }
  EXPECT_THAT(shadowd_->calls(), ElementsAre("ListHosts", "ListHosts"));  // neither Drain nor Undrain
}

TEST_F(CliProcessTest, DrainOfThisHostIsExit1WhenAVmFailedOrWasSkipped) {
  StartShadowd();
  ProcessResult result =
      RunCli({"drain", "h1", "--deadline", "30", "--reason", "kernel upgrade", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(result.out, HasSubstr("1 moved, 1 failed, 1 skipped"));
  EXPECT_THAT(result.out, HasSubstr("  batch-7: unprotected, no shadow to go to\n"));
  EXPECT_THAT(result.err, StartsWith("virt-shadow: the drain of host 'h1' is incomplete: 1 switchover(s) failed and "
                                     "1 VM(s) were skipped (see above); "));
  EXPECT_EQ(LineCount(result.err), 1) << result.err;
  EXPECT_THAT(shadowd_->calls(),
              ElementsAre("ListHosts", "Drain deadline_seconds: 30 reason: \"kernel upgrade\""));
}

TEST_F(CliProcessTest, CompleteDrainIsExit0AndUndrainSaysWhatItEnded) {
  StartShadowd([](testing::ShadowdAnswers& answers) {
    answers.drain.mutable_records()->RemoveLast();
    answers.drain.clear_skipped();
  });
  ProcessResult drained = RunCli({"--json", "drain", "h1", "--socket", socket_});
  EXPECT_EQ(drained.exit_code, 0) << drained.err;
  json parsed = json::parse(drained.out);
  EXPECT_EQ(parsed["records"].size(), 1u);
  EXPECT_EQ(parsed["skipped"], json::array());
  ProcessResult undrained = RunCli({"undrain", "h1", "--socket", socket_});
  EXPECT_EQ(undrained.exit_code, 0) << undrained.err;
  EXPECT_EQ(undrained.out, "Host 'h1' was draining: new shadows may be placed on it again\n");
  EXPECT_THAT(shadowd_->calls(), ElementsAre("ListHosts", "Drain", "ListHosts", "Undrain"));
}

TEST_F(CliProcessTest, FailbackGivesShadowdAsLongAsItWaits) {
  StartShadowd();
  ProcessResult result = RunCli({"failback", "web-1", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("Origin host:        h1\n"));
  EXPECT_THAT(result.out, HasSubstr("Reason:             failback\n"));
  ProcessResult shorter = RunCli({"failback", "web-1", "--timeout", "120", "--socket", socket_, "--json"});
  EXPECT_EQ(shorter.exit_code, 0) << shorter.err;
  EXPECT_EQ(json::parse(shorter.out)["origin_host"], "h1");
  EXPECT_THAT(shadowd_->calls(), ElementsAre("Failback vm: \"web-1\" timeout_seconds: 900",
                                             "Failback vm: \"web-1\" timeout_seconds: 120"));
}

TEST_F(CliProcessTest, SwitchoversListsTheRecordsAndTheDrainState) {
  StartShadowd();
  ProcessResult result = RunCli({"switchovers", "--socket", socket_});
  EXPECT_EQ(result.exit_code, 0) << result.err;  // a failed record in the list is history, not an error
  EXPECT_THAT(result.out, StartsWith("Draining:           yes: kernel upgrade, deadline none\n"));
  EXPECT_THAT(result.out, HasSubstr("2024-05-01 12:03:04 UTC"));
  EXPECT_THAT(result.out, HasSubstr("migrating: unable to connect to h3"));
  ProcessResult as_json = RunCli({"switchovers", "--socket", socket_, "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  json parsed = json::parse(as_json.out);
  EXPECT_EQ(parsed["host"]["draining"], true);
  EXPECT_EQ(parsed["records"][1]["phase"], "SWITCHOVER_PHASE_FAILED");
}

TEST_F(CliProcessTest, NoRecordIsExit4WithOneLine) {
  StartShadowd();
  for (const char* command : {"status", "explain"}) {
    ProcessResult result = RunCli({command, "nosuch", "--socket", socket_});
    EXPECT_EQ(result.exit_code, 4) << command;
    EXPECT_EQ(result.out, "");
    EXPECT_THAT(result.err, StartsWith("virt-shadow: shadowd has no record of "));
    EXPECT_THAT(result.err, HasSubstr("'nosuch'"));
    EXPECT_THAT(result.err, HasSubstr("no VM 'nosuch' on this host"));
    EXPECT_EQ(LineCount(result.err), 1) << result.err;
  }
}

TEST_F(CliProcessTest, NoShadowdIsExit3AtOnce) {
  for (const char* command : {"list", "hosts"}) {
    ProcessResult result = RunCli({command, "--socket", socket_, "--timeout", "5"});
    EXPECT_EQ(result.exit_code, 3) << command;
    EXPECT_EQ(result.err, "virt-shadow: cannot reach shadowd at " + socket_ +
                              ": no such file or directory; is shadowd running on this host? (--socket or "
                              "VS_SHADOWD_SOCKET choose another socket)\n");
    EXPECT_LT(result.elapsed, std::chrono::seconds(5));
  }
  ProcessResult by_env = RunCli({"status", "web-1"}, {"VS_SHADOWD_SOCKET=" + socket_});
  EXPECT_EQ(by_env.exit_code, 3);
  EXPECT_THAT(by_env.err, HasSubstr(socket_));
}

TEST_F(CliProcessTest, ANonRootUserIsToldTheSocketIsRootOnly) {
  StartShadowd();
  ASSERT_EQ(::chmod(socket_.c_str(), 0600), 0);  // as shadowd leaves it
  std::vector<std::string> args = {"list", "--socket", socket_};
  ProcessResult result;
  if (::geteuid() == 0) {
    // Root may open anything: the CLI runs as nobody, who may enter the directory but not open the socket.
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
    args.insert(args.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", VS_CLI_BINARY});
    result = Spawn(args, BaseEnvironment());
  } else {
    ASSERT_EQ(::chmod(socket_.c_str(), 0), 0);  // the owner too needs write permission to connect
    result = RunCli(args);
  }
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_EQ(result.err, "virt-shadow: cannot reach shadowd at " + socket_ + ": permission denied; the control socket " +
                            socket_ + " is root-only: run virt-shadow as root (sudo virt-shadow ...)\n");
  EXPECT_EQ(result.out, "");
}

TEST_F(CliProcessTest, HungShadowdIsExit3AtTheTimeout) {
  // Listens but never accepts: the kernel completes the connection, nobody ever answers.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 8), 0);
  ProcessResult result = RunCli({"list", "--socket", socket_, "--timeout", "1"});
  ::close(fd);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.err, StartsWith("virt-shadow: no answer from shadowd at " + socket_ + " within 1 s"));
  EXPECT_EQ(LineCount(result.err), 1) << result.err;
  EXPECT_GE(result.elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(result.elapsed, std::chrono::seconds(5));
}

TEST_F(CliProcessTest, UsageErrorsAreExit2WithOneLine) {
  ProcessResult unknown = RunCli({"lsit"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, StartsWith("virt-shadow: unknown command 'lsit'"));
  EXPECT_EQ(LineCount(unknown.err), 1);
  ProcessResult missing = RunCli({"status"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, StartsWith("virt-shadow: missing DOMAIN for 'status'"));
  ProcessResult no_host = RunCli({"drain", "--deadline", "30"});
  EXPECT_EQ(no_host.exit_code, 2);
  EXPECT_THAT(no_host.err, StartsWith("virt-shadow: missing HOST for 'drain'"));
  ProcessResult bad_deadline = RunCli({"switchover", "web", "--deadline", "0"});
  EXPECT_EQ(bad_deadline.exit_code, 2);
  EXPECT_THAT(bad_deadline.err, StartsWith("virt-shadow: invalid value for --deadline: '0'"));
  ProcessResult bad = RunCli({"tag", "web", "--vcpus", "many"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, StartsWith("virt-shadow: invalid value for --vcpus: policy attribute 'vcpus': 'many'"));
  ProcessResult help = RunCli({"hosts", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, StartsWith("Usage: virt-shadow hosts"));
}

// libvirt's test driver lives inside the virt-shadow process and starts afresh each run: every
// invocation sees its one running, persistent domain "test", untagged.
TEST_F(CliProcessTest, TagAndUntagThroughLibvirtsTestDriver) {
  ProcessResult tagged = RunCli({"-c", "test:///default", "tag", "test", "--vcpus", "1", "--zone", "any"});
  EXPECT_EQ(tagged.exit_code, 0) << tagged.err;
  EXPECT_THAT(tagged.out, StartsWith("Domain 'test' tagged: <policy enabled=\"yes\" vcpus=\"1\" memory=\"50%\""));
  EXPECT_THAT(tagged.out, HasSubstr(R"(zone="any")"));

  ProcessResult by_env = RunCli({"--json", "untag", "test"}, {"LIBVIRT_DEFAULT_URI=test:///default"});
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_EQ(json::parse(by_env.out)["had_policy"], false);

  ProcessResult missing = RunCli({"-c", "test:///default", "tag", "nosuch"});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_THAT(missing.err, StartsWith("virt-shadow: cannot tag domain 'nosuch': "));
  EXPECT_EQ(LineCount(missing.err), 1) << missing.err;

  ProcessResult live_only = RunCli({"-c", "test:///default", "tag", "test", "--config"});
  EXPECT_EQ(live_only.exit_code, 1);
  EXPECT_EQ(LineCount(live_only.err), 1) << live_only.err;
}

TEST_F(CliProcessTest, NoLibvirtIsExit1) {
  ProcessResult result = RunCli({"-c", "qemu+unix:///system?socket=" + dir_ + "/none.sock", "untag", "web"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, StartsWith("virt-shadow: cannot connect to libvirt at qemu+unix:///system?socket="));
  EXPECT_EQ(LineCount(result.err), 1) << result.err;
}

TEST_F(CliProcessTest, BashCompletesCommandsOptionsValuesAndDomains) {
  EXPECT_THAT(Complete("virt-shadow "), ElementsAre("list", "status", "hosts", "explain", "tag", "untag", "sync",
                                                    "verify", "switchover", "drain", "undrain", "failback",
                                                    "promote", "switchovers"));
  EXPECT_THAT(Complete("virt-shadow promote web --f"), ElementsAre("--force"));
  EXPECT_THAT(Complete("virt-shadow promote web --re"), ElementsAre("--reason"));
  EXPECT_THAT(Complete("virt-shadow switchover"), ElementsAre("switchover", "switchovers"));
  EXPECT_THAT(Complete("virt-shadow switchover web --d"), ElementsAre("--deadline"));
  EXPECT_THAT(Complete("virt-shadow drain h1 --re"), ElementsAre("--reason"));
  EXPECT_THAT(Complete("virt-shadow undrain h1 --re"), ElementsAre());  // drain's options only after drain
  EXPECT_THAT(Complete("virt-shadow drain h1 --reason "), ElementsAre());
  EXPECT_THAT(Complete("virt-shadow -c test:///default drain "), ElementsAre());  // HOST is not completed
  EXPECT_THAT(Complete("virt-shadow -c test:///default switchover --deadline 60 "), ElementsAre("test"));
  EXPECT_THAT(Complete("virt-shadow -c test:///default failback t"), ElementsAre("test"));
  EXPECT_THAT(Complete("virt-shadow --json st"), ElementsAre("status"));
  EXPECT_THAT(Complete("virt-shadow tag web --cr"), ElementsAre("--critical"));
  EXPECT_THAT(Complete("virt-shadow list --c"), ElementsAre("--connect"));  // tag's --config only after tag
  EXPECT_THAT(Complete("virt-shadow tag web --critical "), ElementsAre("yes", "no"));
  EXPECT_THAT(Complete("virt-shadow tag web --zone=req"), ElementsAre("require-other"));
  EXPECT_THAT(Complete("virt-shadow tag web --hook-failure c"), ElementsAre("closed"));
  EXPECT_THAT(Complete("virt-shadow tag web --vcpus "), ElementsAre());
  EXPECT_THAT(Complete("virt-shadow -c test:///default status "), ElementsAre("test"));
  EXPECT_THAT(Complete("virt-shadow --connect=test:///default tag t"), ElementsAre("test"));
  EXPECT_THAT(Complete("virt-shadow -c test:///default untag test "), ElementsAre());  // DOMAIN already given
  EXPECT_THAT(Complete("virt-shadow -c test:///default hosts "), ElementsAre());
}

}  // namespace
}  // namespace vs::cli
