// The real virt-shadow-hook binary, run as libvirtd runs it (argv, XML on stdin, a 3-variable
// environment), against no shadowd, a hung one and shadowd's hook socket listener: exit codes, delivery, the
// spool, an always-empty stdout, and that the hook never waits on shadowd beyond its deadline (median of 5 runs,
// printed). The 50 ms target itself is bench/hook_bench's (side by side with a baseline exec): as a test on this
// 2-core machine it failed whenever builds ran beside it (52-83 ms medians at load 7-8), a timing question that
// says nothing about the hook.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "shadowd/policy/domain_xml.h"
#include "shadowd/spool/spool.h"
#include "tests/unit/common/scoped_umask.h"
#include "tests/unit/hook/hook_process_harness.h"
#include "tests/unit/hook/test_support.h"

namespace vs::hook::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

// Far above the 20 ms production deadline plus exec and the spool's fsyncs, far below what waiting on a hung shadowd
// (no deadline) would take: a hook that waits for an answer fails it whatever the load.
constexpr Duration kBudget = std::chrono::milliseconds(1500);
constexpr int kTimedRuns = 5;  // the median of 5 absorbs a stray slow run on this 2-core machine
// For the tests of what a live shadowd receives and answers: on a CPU-starved machine the 20 ms
// production deadline may pass before a healthy shadowd answers, which is a timing question, the
// subject of the timed tests (they keep the production deadline).
constexpr int kPatientAnswerWithinMs = 5000;
enum class Deadline { kProduction, kPatient };
enum class Rss { kIgnore, kMeasure };

class HookProcessTest : public ::testing::Test {
 protected:
  ProcessResult Hook(const std::vector<std::string>& args, const std::string& xml,
                     Deadline deadline = Deadline::kProduction, Rss rss = Rss::kIgnore) {
    std::vector<std::string> argv = {VS_HOOK_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    const int answer_within_ms = deadline == Deadline::kPatient ? kPatientAnswerWithinMs : 0;
    const std::vector<std::string> env = HookEnvironment(socket_, spool_dir_, answer_within_ms);
    StatusOr<ProcessResult> result = rss == Rss::kMeasure
                                         ? RunMeasuringPeakRss(argv, env, xml, *clock_, dir_.Sub("rss"))
                                         : RunProcess(argv, env, xml, *clock_);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return {};
    // At migrate and restore libvirt would take stdout as the new domain XML: never a byte.
    EXPECT_EQ(result->stdout_text, "") << "args: " << ::testing::PrintToString(args);
    if (!result->stderr_text.empty()) {
      EXPECT_EQ(result->stderr_text.find('\n'), result->stderr_text.size() - 1) << result->stderr_text;
    }
    return *result;
  }

  // Runs the hook kTimedRuns times, checks each run, prints the times and returns their median.
  Duration TimedRuns(const std::string& label, const std::vector<std::string>& args, const std::string& xml,
                     int expected_exit) {
    std::vector<Duration> times;
    std::string runs;
    for (int i = 0; i < kTimedRuns; ++i) {
      ProcessResult result = Hook(args, xml);
      EXPECT_EQ(result.exit_code, expected_exit) << result.stderr_text;
      times.push_back(result.elapsed);
      char ms[32];
      std::snprintf(ms, sizeof(ms), " %.1f", Milliseconds(result.elapsed));
      runs += ms;
    }
    const Duration median = Median(times);
    std::printf("[hook timing] %-32s median %.1f ms (runs:%s ms)\n", label.c_str(), Milliseconds(median),
                runs.c_str());
    return median;
  }

  std::vector<spool::SpoolEntry> Spooled() {
    spool::Spool spool(spool_dir_, *clock_);
    StatusOr<spool::SpoolListing> listing = spool.List();
    EXPECT_TRUE(listing.ok()) << listing.status().ToString();
    return listing.ok() ? listing->entries : std::vector<spool::SpoolEntry>{};
  }

  std::unique_ptr<Clock> clock_ = NewRealClock();
  TempDir dir_;
  std::string socket_ = dir_.Sub("shadowd.sock");
  std::string spool_dir_ = dir_.Sub("spool");
};

const std::vector<std::string> kPrepare = {"web-1", "prepare", "begin", "-"};

TEST_F(HookProcessTest, ShadowdDownSpoolsAndExitsZeroWithoutWaiting) {
  const Duration median = TimedRuns("shadowd down (no socket)", kPrepare, TaggedXml(), 0);
  EXPECT_LT(median, kBudget);
  EXPECT_THAT(Spooled(), SizeIs(kTimedRuns));
  EXPECT_THAT(Hook(kPrepare, TaggedXml()).stderr_text, HasSubstr("UNAVAILABLE: cannot reach shadowd"));
}

TEST_F(HookProcessTest, ShadowdHungSpoolsAndExitsZeroAtItsDeadline) {
  StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket_);
  ASSERT_TRUE(hung.ok()) << hung.status().ToString();
  const Duration median = TimedRuns("shadowd hung (accepts, silent)", kPrepare, TaggedXml(), 0);
  EXPECT_LT(median, kBudget);
  EXPECT_GE((*hung)->accepted(), kTimedRuns);  // the hook did connect: it waited for an answer
  EXPECT_THAT(Spooled(), SizeIs(kTimedRuns));
  EXPECT_THAT(Hook(kPrepare, TaggedXml()).stderr_text, HasSubstr("did not answer within"));
}

TEST_F(HookProcessTest, FailClosedVmIsRefusedWhenShadowdIsDownOrHung) {
  ProcessResult down = Hook(kPrepare, TaggedXml("critical=\"yes\""));
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.stderr_text, StartsWith("virt-shadow: shadowd is unreachable and VM web-1's policy is "
                                           "fail-closed (hook-failure=closed or critical=yes): refusing to "
                                           "start it; start shadowd or set hook-failure=\"open\""));
  StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket_);
  ASSERT_TRUE(hung.ok()) << hung.status().ToString();
  const Duration median = TimedRuns("fail-closed refused, hung", kPrepare, TaggedXml("hook-failure=\"closed\""), 1);
  EXPECT_LT(median, kBudget);
  EXPECT_THAT(Spooled(), SizeIs(1 + kTimedRuns));
}

TEST_F(HookProcessTest, RealShadowdReceivesEveryOperationAndNothingIsSpooled) {
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"prepare", "begin"}, {"start", "begin"},   {"started", "begin"}, {"stopped", "end"},
      {"release", "end"},   {"migrate", "begin"}, {"restore", "begin"}, {"reconnect", "begin"},
  };
  const std::string xml = TaggedXml("critical=\"yes\"");
  for (const auto& [operation, sub_operation] : calls) {
    ProcessResult result = Hook({"web-1", operation, sub_operation, "-"}, xml, Deadline::kPatient);
    EXPECT_EQ(result.exit_code, 0) << operation;
    EXPECT_EQ(result.stderr_text, "") << operation;
  }
  std::vector<virtshadow::v1::HookEvent> events = (*shadowd)->events();
  ASSERT_THAT(events, SizeIs(calls.size()));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(events[i].operation(), calls[i].first);
    EXPECT_EQ(events[i].sub_operation(), calls[i].second);
    EXPECT_EQ(events[i].domain_name(), "web-1");
    EXPECT_EQ(events[i].domain_xml(), xml);
    EXPECT_GT(events[i].hook_wall_time_unix_ms(), 0);
  }
  EXPECT_THAT(Spooled(), IsEmpty());
  EXPECT_THAT((*shadowd)->log(), IsEmpty());  // every frame whole and a HookEvent
  // Timed with the production deadline and an open policy: a starved run spools instead of failing.
  const Duration median = TimedRuns("shadowd answering", kPrepare, TaggedXml(), 0);
  EXPECT_LT(median, kBudget);
}

TEST_F(HookProcessTest, ShadowdRefusalAtPrepareExitsOneWithItsReason) {
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  virtshadow::v1::HookVerdict deny;
  deny.set_allow(false);
  deny.set_reason("no shadow host has 1 GiB free");
  (*shadowd)->SetVerdict(deny);
  ProcessResult result = Hook(kPrepare, TaggedXml(), Deadline::kPatient);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.stderr_text, "virt-shadow: shadowd refused to start VM 'web-1': no shadow host has 1 GiB free\n");
  // A refusal means nothing outside prepare (and an incoming migration's begin).
  EXPECT_EQ(Hook({"web-1", "started", "begin", "-"}, TaggedXml(), Deadline::kPatient).exit_code, 0);
  EXPECT_THAT((*shadowd)->events(), SizeIs(2));
}

TEST_F(HookProcessTest, UntaggedDomainNeverReachesShadowd) {
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  const Duration median = TimedRuns("untagged domain", kPrepare, UntaggedXml(), 0);
  EXPECT_LT(median, kBudget);
  EXPECT_THAT((*shadowd)->events(), IsEmpty());
  EXPECT_EQ(Hook(kPrepare, UntaggedXml()).stderr_text, "");
  EXPECT_FALSE(std::filesystem::exists(spool_dir_));  // not even created
}

TEST_F(HookProcessTest, StdoutStaysEmptyAtMigrateAndRestoreWhateverHappens) {
  // Hook() asserts the empty stdout; here every path the hook can take at those two operations.
  const std::vector<std::string> xmls = {TaggedXml(), TaggedXml("critical=\"yes\""), UntaggedXml(),
                                         "<domain>&#broken", ""};
  for (const char* operation : {"migrate", "restore"}) {
    for (const std::string& xml : xmls) EXPECT_EQ(Hook({"web-1", operation, "begin", "-"}, xml).exit_code, 0);
    {
      StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket_);
      ASSERT_TRUE(hung.ok()) << hung.status().ToString();
      for (const std::string& xml : xmls) EXPECT_EQ(Hook({"web-1", operation, "begin", "-"}, xml).exit_code, 0);
    }
    StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
    ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
    for (const std::string& xml : xmls) {
      EXPECT_EQ(Hook({"web-1", operation, "begin", "-"}, xml, Deadline::kPatient).exit_code, 0);
    }
  }
}

TEST_F(HookProcessTest, MalformedTaggedInputIsRefusedAtPrepareMissingArgumentsFailOpen) {
  ProcessResult malformed = Hook(kPrepare, "<domain xmlns:s='http://virt-shadow.org/xmlns/policy/1.0'>");
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_THAT(malformed.stderr_text,
              StartsWith("virt-shadow: refusing to start VM 'web-1': cannot read its domain XML"));
  ProcessResult no_args = Hook({}, TaggedXml("critical=\"yes\""));
  EXPECT_EQ(no_args.exit_code, 0);
  EXPECT_THAT(no_args.stderr_text, HasSubstr("expected libvirt's 4 arguments"));
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookProcessTest, SpooledFilesAreOwnerOnlyUnderAWideUmask) {
  test_support::ScopedUmask wide(0);  // inherited by the hook, as libvirtd's would be
  EXPECT_EQ(Hook(kPrepare, TaggedXml()).exit_code, 0);
  ASSERT_THAT(Spooled(), SizeIs(1));
  EXPECT_EQ(std::filesystem::status(spool_dir_).permissions(), std::filesystem::perms::owner_all);
  for (const auto& file : std::filesystem::directory_iterator(spool_dir_)) {
    EXPECT_EQ(file.status().permissions(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << file.path();
  }
}

// Stdin far over the limit: the hook keeps at most the limit plus one byte (it once read all of it: 50 MB in,
// 70 MB of RSS). Critical VMs among such domains are refused with the reason, shadowd up or not; untagged
// ones go on.
TEST_F(HookProcessTest, FiftyMegabyteStdinIsRefusedWithBoundedMemory) {
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  constexpr std::size_t kHuge = 50'000'000;
  const ProcessResult small = Hook(kPrepare, TaggedXml("critical=\"yes\""), Deadline::kPatient, Rss::kMeasure);
  EXPECT_EQ(small.exit_code, 0) << small.stderr_text;
  // As libvirt writes it, <description> first: the policy comes after 50 MB, found by scanning, not keeping.
  const ProcessResult late =
      Hook(kPrepare, WithDescription(TaggedXml("critical=\"yes\""), kHuge), Deadline::kProduction, Rss::kMeasure);
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_THAT(late.stderr_text, StartsWith("virt-shadow: refusing to start VM 'web-1': cannot read its domain XML "
                                           "(it is larger than the 10000000 bytes virt-shadow reads: "));
  EXPECT_THAT(late.stderr_text, HasSubstr("keep the XML within 10000000 bytes"));
  // The policy before the text: reading stops at the limit plus one byte.
  std::string early = TaggedXml("critical=\"yes\"");
  early.insert(early.find("  <memory"), "  <title>" + std::string(kHuge, 't') + "</title>\n");
  const ProcessResult stopped = Hook(kPrepare, early, Deadline::kProduction, Rss::kMeasure);
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_THAT(stopped.stderr_text, HasSubstr("10000001 bytes read before it stopped"));
  const ProcessResult untagged =
      Hook(kPrepare, WithDescription(UntaggedXml(), kHuge), Deadline::kProduction, Rss::kMeasure);
  EXPECT_EQ(untagged.exit_code, 0);
  EXPECT_EQ(untagged.stderr_text, "");
  EXPECT_THAT((*shadowd)->events(), SizeIs(1));  // only the small one
  for (const auto& [label, run] : {std::pair{"small tagged XML", &small}, {"50 MB, policy late", &late},
                                   {"50 MB, policy early", &stopped}, {"50 MB, untagged", &untagged}}) {
    std::printf("[hook memory] %-20s max RSS %6.1f MiB, %6.1f ms\n", label, run->max_rss_kib / 1024.0,
                Milliseconds(run->elapsed));
    // What it keeps (at most the limit plus one byte) and no more beside its usual footprint.
    EXPECT_LT(run->max_rss_kib * 1024, small.max_rss_kib * 1024 + static_cast<long>(policy::kMaxDomainXmlBytes) +
                                           (4 << 20))
        << label;
  }
}

// The largest XML the hook reads, all one text node, parses (libxml2's text limit is the hook's) and reaches
// shadowd through the hook socket's size limit (gRPC's 4 MiB default had once turned it away).
// With the patient deadline: sending 10 MB within the production 20 ms fails on this loaded 2-core machine
// (libvirt-hook/README.md), a timing question apart from the limits tested here.
TEST_F(HookProcessTest, XmlJustUnderTheLimitReachesShadowd) {
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket_);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  const std::string xml = WithDescription(TaggedXml("critical=\"yes\""), policy::kMaxDomainXmlBytes);
  const ProcessResult result = Hook(kPrepare, xml, Deadline::kPatient, Rss::kMeasure);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stderr_text, "");
  std::vector<virtshadow::v1::HookEvent> events = (*shadowd)->events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_TRUE(events[0].domain_xml() == xml);  // not EXPECT_EQ: a failure would print 10 MB
  EXPECT_THAT(Spooled(), IsEmpty());
  std::printf("[hook memory] %-20s max RSS %6.1f MiB, %6.1f ms\n", "10 MB tagged XML", result.max_rss_kib / 1024.0,
              Milliseconds(result.elapsed));
}

}  // namespace
}  // namespace vs::hook::testing
