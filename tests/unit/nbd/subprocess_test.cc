#include "common/subprocess.h"

#include <sys/wait.h>

#include <cerrno>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

constexpr Duration kGenerous = std::chrono::seconds(10);

// True when this process has no child left, reaped or not (a zombie still counts as a child).
bool NoChildrenLeft() { return waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

class SubprocessTest : public ::testing::Test {
 protected:
  std::unique_ptr<Clock> clock_ = NewRealClock();
};

TEST_F(SubprocessTest, CapturesStdoutAndStderrAndExitCode) {
  auto result = RunProcess({"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_THAT(result->output, HasSubstr("to-stdout\n"));
  EXPECT_THAT(result->output, HasSubstr("to-stderr\n"));
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(SubprocessTest, ArgumentsReachTheProgramVerbatimWithoutAShell) {
  auto result = RunProcess({"printf", "%s|", "a b", "$HOME", "'q'", "*"}, kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->output, "a b|$HOME|'q'|*|");
}

TEST_F(SubprocessTest, StdinIsEmpty) {
  // cat would wait forever on an inherited terminal or pipe; /dev/null ends it at once.
  auto result = RunProcess({"cat"}, kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->output, "");
}

TEST_F(SubprocessTest, KeepsOnlyTheTailOfLongOutput) {
  auto result = RunProcess({"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i-padding-padding-padding; "
                                        "i=$((i+1)); done; echo THE-END"},
                           kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->output.size(), kMaxCapturedOutput);
  EXPECT_THAT(result->output, EndsWith("line-2999-padding-padding-padding\nTHE-END\n"));
  EXPECT_THAT(result->output, ::testing::Not(HasSubstr("line-0-")));
}

TEST_F(SubprocessTest, DeathBySignalReportsTheShellConvention) {
  auto result = RunProcess({"sh", "-c", "kill -9 $$"}, kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 128 + SIGKILL);
}

TEST_F(SubprocessTest, TimeoutKillsTheProgramPromptlyAndReapsIt) {
  const MonoTime start = clock_->Now();
  auto result = RunProcess({"sleep", "10"}, std::chrono::milliseconds(200), *clock_);
  const Duration took = clock_->Now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("sleep 10"));
  EXPECT_THAT(result.status().message(), HasSubstr("200 ms"));
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(SubprocessTest, TimeIsTheInjectedClocks) {
  // With simulated time standing still, a deadline of zero has passed and nothing else has.
  FakeClock fake;
  auto expired = RunProcess({"true"}, Duration::zero(), fake);
  EXPECT_EQ(expired.status().code(), Code::kDeadlineExceeded);
  auto result = RunProcess({"sleep", "0.3"}, std::chrono::milliseconds(1), fake);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(SubprocessTest, ReturnsWhenTheProgramExitsEvenIfABackgroundChildHoldsTheOutput) {
  const MonoTime start = clock_->Now();
  auto result = RunProcess({"sh", "-c", "sleep 3 & echo started"}, kGenerous, *clock_);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->output, "started\n");
  EXPECT_LT(clock_->Now() - start, std::chrono::seconds(2));
}

TEST_F(SubprocessTest, MissingProgramIsNotFoundNamingIt) {
  auto result = RunProcess({"vs-no-such-program", "--flag"}, kGenerous, *clock_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kNotFound);
  EXPECT_THAT(result.status().message(), HasSubstr("vs-no-such-program"));
}

TEST_F(SubprocessTest, EmptyCommandIsInvalid) {
  EXPECT_EQ(RunProcess({}, kGenerous, *clock_).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RunProcess({""}, kGenerous, *clock_).status().code(), Code::kInvalidArgument);
}

TEST_F(SubprocessTest, ConcurrentCallsKeepTheirOutputsApart) {
  constexpr int kThreads = 4;
  constexpr int kRunsPerThread = 8;
  std::vector<std::string> failures[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int run = 0; run < kRunsPerThread; ++run) {
        const std::string word = "thread" + std::to_string(t) + "-run" + std::to_string(run);
        auto result = RunProcess({"echo", word}, kGenerous, *clock_);
        if (!result.ok() || result->output != word + "\n") failures[t].push_back(word);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_THAT(failures[t], ::testing::IsEmpty()) << "thread " << t;
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(SubprocessTest, RunCheckedTurnsAFailureIntoAMessageWithCommandAndOutput) {
  EXPECT_TRUE(RunChecked({"true"}, kGenerous, *clock_).ok());
  Status failed = RunChecked({"sh", "-c", "echo '  disk is on fire  '; exit 4"}, kGenerous, *clock_);
  EXPECT_EQ(failed.code(), Code::kInternal);
  EXPECT_THAT(failed.message(), HasSubstr("sh -c 'echo '\\''  disk is on fire  '\\''; exit 4'"));
  EXPECT_THAT(failed.message(), HasSubstr("status 4"));
  EXPECT_THAT(failed.message(), EndsWith(": disk is on fire"));
  Status silent = RunChecked({"false"}, kGenerous, *clock_);
  EXPECT_THAT(silent.message(), HasSubstr("printed nothing"));
}

}  // namespace
}  // namespace vs
