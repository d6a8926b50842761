// The hook's decisions with a fake shadowd: every operation, the untagged fast path, shadowd down,
// hung or refusing, fail-open and fail-closed policies, malformed and oversized input, a full spool;
// and how it reads stdin.
#include "libvirt-hook/hook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "proto/failover.pb.h"
#include "shadowd/failover/fence_marker.h"
#include "shadowd/policy/domain_xml.h"
#include "tests/unit/hook/test_support.h"

namespace vs::hook {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using testing::TaggedXml;
using testing::TempDir;
using testing::UntaggedXml;
using testing::WithDescription;
using virtshadow::v1::HookEvent;
using virtshadow::v1::HookVerdict;

constexpr std::string_view kRefusalMessage =
    "virt-shadow: shadowd is unreachable and VM web-1's policy is fail-closed (hook-failure=closed or "
    "critical=yes): refusing to start it; start shadowd or set hook-failure=\"open\"";

HookVerdict Verdict(bool allow, std::string reason = "") {
  HookVerdict verdict;
  verdict.set_allow(allow);
  verdict.set_reason(std::move(reason));
  return verdict;
}

// Records what it is given and answers what the test set.
class FakeDeliverer final : public EventDeliverer {
 public:
  StatusOr<HookVerdict> Deliver(const HookEvent& event) override {
    events.push_back(event);
    return answer;
  }
  std::vector<HookEvent> events;
  StatusOr<HookVerdict> answer = Verdict(true);
};

std::vector<std::string> Args(std::string operation, std::string sub_operation = "begin") {
  return {"web-1", std::move(operation), std::move(sub_operation), "-"};
}

class HookTest : public ::testing::Test {
 protected:
  HookOutcome Run(const std::vector<std::string>& args, const DomainXmlInput& xml) {
    HookOutcome outcome = RunHook(args, xml, deliverer_, spool_, clock_);
    // The stderr contract, checked on every run: nothing, or exactly one line.
    if (!outcome.stderr_line.empty()) {
      EXPECT_EQ(outcome.stderr_line.find('\n'), outcome.stderr_line.size() - 1) << outcome.stderr_line;
    }
    return outcome;
  }
  void ShadowdIsDown() { deliverer_.answer = Unavailable("cannot reach shadowd: connect: No such file"); }
  std::vector<spool::SpoolEntry> Spooled() {
    StatusOr<spool::SpoolListing> listing = spool_.List();
    EXPECT_TRUE(listing.ok()) << listing.status().ToString();
    return listing.ok() ? listing->entries : std::vector<spool::SpoolEntry>{};
  }

  TempDir dir_;
  FakeClock clock_{WallTime(std::chrono::milliseconds(1'700'000'000'123))};
  spool::Spool spool_{dir_.Sub("spool"), clock_};
  FakeDeliverer deliverer_;
};

TEST_F(HookTest, DeliversEveryHandledOperationWithLibvirtsArguments) {
  // The argv libvirt 9.0 passes (platform notes): start, stop, restore, reconnect, migration.
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"prepare", "begin"}, {"start", "begin"},   {"started", "begin"}, {"stopped", "end"},
      {"release", "end"},   {"migrate", "begin"}, {"restore", "begin"}, {"reconnect", "begin"},
  };
  const std::string xml = TaggedXml("vcpus=\"1\"");
  for (const auto& [operation, sub_operation] : calls) {
    SCOPED_TRACE(operation);
    deliverer_.events.clear();
    EXPECT_EQ(Run({"web-1", operation, sub_operation, "-"}, xml), (HookOutcome{0, ""}));
    ASSERT_THAT(deliverer_.events, SizeIs(1));
    const HookEvent& event = deliverer_.events[0];
    EXPECT_EQ(event.domain_name(), "web-1");
    EXPECT_EQ(event.domain_uuid(), "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    EXPECT_EQ(event.operation(), operation);
    EXPECT_EQ(event.sub_operation(), sub_operation);
    EXPECT_EQ(event.extra(), "-");
    EXPECT_EQ(event.domain_xml(), xml);
    EXPECT_EQ(event.hook_wall_time_unix_ms(), 1'700'000'000'123);
    EXPECT_EQ(event.spool_sequence(), 0u);
  }
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookTest, OtherOperationsExitZeroSilently) {
  for (const char* operation : {"attach", "shutdown", "PREPARE", "", "prepare "}) {
    SCOPED_TRACE(operation);
    EXPECT_EQ(Run({"web-1", operation, "begin", "-"}, TaggedXml("critical=\"yes\"")), (HookOutcome{0, ""}));
  }
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookTest, UntaggedDomainCostsNothingWhateverElseIsWrong) {
  ShadowdIsDown();
  // Not delivered, not spooled, not even parsed: non-XML and missing argv go unnoticed.
  EXPECT_EQ(Run(Args("prepare"), UntaggedXml()), (HookOutcome{0, ""}));
  EXPECT_EQ(Run(Args("prepare"), "this is not XML at all"), (HookOutcome{0, ""}));
  EXPECT_EQ(Run({}, UntaggedXml()), (HookOutcome{0, ""}));
  EXPECT_EQ(Run(Args("migrate"), ""), (HookOutcome{0, ""}));
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookTest, NamespaceMentionedOnlyInACommentIsUntagged) {
  ShadowdIsDown();
  const std::string xml =
      testing::DomainXml("<!-- see " + std::string(policy::kPolicyNamespace) + " to protect this VM -->", "web-1",
                         /*nova=*/false);
  ASSERT_TRUE(policy::MayBeTagged(xml));  // the cheap check cannot tell; the parse does
  EXPECT_EQ(Run(Args("prepare"), xml), (HookOutcome{0, ""}));
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookTest, ShadowdDownSpoolsTheEventAndLetsAnOpenVmStart) {
  ShadowdIsDown();
  HookOutcome outcome = Run(Args("prepare"), TaggedXml());
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_THAT(outcome.stderr_line, HasSubstr("shadowd is unreachable at prepare begin of VM 'web-1'"));
  EXPECT_THAT(outcome.stderr_line, HasSubstr("UNAVAILABLE: cannot reach shadowd"));
  std::vector<spool::SpoolEntry> spooled = Spooled();
  ASSERT_THAT(spooled, SizeIs(1));
  EXPECT_THAT(outcome.stderr_line, HasSubstr("event spooled as " + dir_.Sub("spool/") + spooled[0].file_name));
  StatusOr<HookEvent> event = spool_.Read(spooled[0]);
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  EXPECT_EQ(event->operation(), "prepare");
  EXPECT_EQ(event->domain_xml(), TaggedXml());
  EXPECT_EQ(event->spool_sequence(), 1u);
  EXPECT_EQ(spooled[0].wall_time_unix_ms, 1'700'000'000'123);
}

TEST_F(HookTest, AnyFailedDeliveryIsSpooledInOrder) {
  // Hung (deadline) and a shadowd that fails the call are handled like an absent one.
  const std::vector<Status> failures = {DeadlineExceeded("shadowd did not answer within 16 ms"),
                                        Internal("shadowd failed the call with gRPC code 12"),
                                        Unavailable("connection refused")};
  const std::vector<std::string> operations = {"prepare", "start", "started"};
  for (std::size_t i = 0; i < failures.size(); ++i) {
    deliverer_.answer = failures[i];
    HookOutcome outcome = Run(Args(operations[i]), TaggedXml());
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_THAT(outcome.stderr_line, HasSubstr(failures[i].ToString()));
  }
  std::vector<std::string> spooled_operations;
  for (const spool::SpoolEntry& entry : Spooled()) spooled_operations.push_back(spool_.Read(entry)->operation());
  EXPECT_EQ(spooled_operations, operations);
}

TEST_F(HookTest, FailClosedPolicyRefusesPrepareWhenShadowdIsDown) {
  for (const char* attributes : {"critical=\"yes\"", "hook-failure=\"closed\"",
                                 "critical=\"no\" hook-failure=\"closed\""}) {
    SCOPED_TRACE(attributes);
    ShadowdIsDown();
    HookOutcome outcome = Run(Args("prepare"), TaggedXml(attributes));
    EXPECT_EQ(outcome.exit_code, 1);
    EXPECT_THAT(outcome.stderr_line, StartsWith(std::string(kRefusalMessage)));
    EXPECT_THAT(outcome.stderr_line, HasSubstr("event spooled as"));  // shadowd still learns of it
  }
  EXPECT_THAT(Spooled(), SizeIs(3));
}

TEST_F(HookTest, FailClosedRefusesOnlyAtPrepareBegin) {
  // Elsewhere a non-zero exit would abort a migration or a restore, or mean nothing.
  ShadowdIsDown();
  for (const char* operation : {"start", "started", "stopped", "release", "migrate", "restore", "reconnect"}) {
    SCOPED_TRACE(operation);
    EXPECT_EQ(Run(Args(operation), TaggedXml("critical=\"yes\"")).exit_code, 0);
  }
  EXPECT_EQ(Run(Args("prepare", "end"), TaggedXml("critical=\"yes\"")).exit_code, 0);
  EXPECT_THAT(Spooled(), SizeIs(8));
}

TEST_F(HookTest, ExplicitOpenOverridesCritical) {
  ShadowdIsDown();
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("critical=\"yes\" hook-failure=\"open\"")).exit_code, 0);
}

TEST_F(HookTest, InvalidPolicyThatSaysCriticalRefusesPrepareWhenShadowdIsDown) {
  ShadowdIsDown();
  HookOutcome outcome = Run(Args("prepare"), TaggedXml("critical=\"yes\" vcpus=\"lots\""));
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.stderr_line, StartsWith(std::string(kRefusalMessage)));
  EXPECT_THAT(deliverer_.events, SizeIs(1));  // tried shadowd first: it reports the invalid policy
  EXPECT_THAT(Spooled(), SizeIs(1));
}

TEST_F(HookTest, InvalidPolicyWithoutFailureModeLetsTheVmStart) {
  ShadowdIsDown();
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("vcpus=\"lots\"")).exit_code, 0);
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("critical=\"perhaps\"")).exit_code, 0);
  EXPECT_THAT(Spooled(), SizeIs(2));
}

TEST_F(HookTest, InvalidPolicyIsStillDeliveredWhenShadowdIsUp) {
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("critical=\"yes\" vcpus=\"lots\"")), (HookOutcome{0, ""}));
  EXPECT_THAT(deliverer_.events, SizeIs(1));
}

TEST_F(HookTest, PausedProtectionNeverRefusesAStart) {
  // enabled="no" keeps the policy but protects nothing: nothing to wait for shadowd about.
  ShadowdIsDown();
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("enabled=\"no\" critical=\"yes\"")).exit_code, 0);
  EXPECT_EQ(Run(Args("prepare"), TaggedXml("enabled=\"no\" hook-failure=\"closed\"")).exit_code, 0);
  EXPECT_THAT(Spooled(), SizeIs(2));  // shadowd still hears of the start
}

TEST_F(HookTest, ShadowdRefusalAtPrepareExitsOneWithItsReason) {
  deliverer_.answer = Verdict(false, "no host in another zone has 2 GiB free for the shadow");
  HookOutcome outcome = Run(Args("prepare"), TaggedXml("zone=\"require-other\""));
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.stderr_line,
            "virt-shadow: shadowd refused to start VM 'web-1': no host in another zone has 2 GiB free for the "
            "shadow\n");
  EXPECT_THAT(Spooled(), IsEmpty());  // delivered: nothing to replay
}

TEST_F(HookTest, ShadowdRefusalWithoutReasonOrWithNewlinesStaysOneLine) {
  deliverer_.answer = Verdict(false);
  EXPECT_THAT(Run(Args("prepare"), TaggedXml()).stderr_line, HasSubstr("(no reason given)"));
  deliverer_.answer = Verdict(false, "line one\nline two\n");
  HookOutcome outcome = Run(Args("prepare"), TaggedXml());
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.stderr_line, HasSubstr("line one line two"));
}

TEST_F(HookTest, ShadowdRefusalOutsidePrepareAndAnIncomingMigrationIsIgnored) {
  deliverer_.answer = Verdict(false, "no");
  for (const char* operation : {"start", "started", "restore", "reconnect"}) {
    SCOPED_TRACE(operation);
    EXPECT_EQ(Run(Args(operation), TaggedXml()), (HookOutcome{0, ""}));
  }
}

// shadowd refuses an incoming migration whose Nova switchover files it could not put in place (docs/nova.md).
TEST_F(HookTest, ShadowdRefusalOfAnIncomingMigrationExitsOneWithItsReason) {
  deliverer_.answer = Verdict(false, "the replicas are not in place");
  const HookOutcome outcome = Run(Args("migrate"), TaggedXml());
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.stderr_line, HasSubstr("refused to take the incoming migration of VM 'web-1': the replicas are "
                                         "not in place"));
}

// A Nova instance without a policy element of its own still reaches shadowd, which reads Nova's records.
TEST_F(HookTest, AnUntaggedNovaInstanceIsDeliveredAndNeverRefusedWhenShadowdIsDown) {
  const std::string nova = testing::DomainXml("", "instance-00000001", /*nova=*/true);
  EXPECT_EQ(Run(Args("prepare"), nova).exit_code, 0);
  ASSERT_THAT(deliverer_.events, SizeIs(1));
  EXPECT_EQ(deliverer_.events[0].domain_name(), "instance-00000001");
  ShadowdIsDown();
  const HookOutcome down = Run(Args("prepare"), nova);
  EXPECT_EQ(down.exit_code, 0);
  EXPECT_THAT(down.stderr_line, HasSubstr("shadowd is unreachable at prepare begin of Nova instance 'instance-00000001'"));
  EXPECT_THAT(Spooled(), SizeIs(1));
}

// Whether such a VM is critical cannot be known: at prepare it is refused, as a critical one would be.
TEST_F(HookTest, UnreadableXmlThatMayBeTaggedRefusesPrepareWithTheReason) {
  ShadowdIsDown();
  const std::string ns(policy::kPolicyNamespace);
  std::string nesting;
  for (int i = 0; i < 300; ++i) nesting += "<a>";
  for (int i = 0; i < 300; ++i) nesting += "</a>";
  const std::vector<std::string> unreadable = {
      "<domain><metadata><p:policy xmlns:p=\"" + ns + "\" critical=\"yes\"/>",  // truncated
      "not XML but mentions " + ns,
      "<!DOCTYPE d [<!ENTITY x \"" + ns + "\">]><domain>&x;</domain>",  // hostile: entities refused
      "<domain>&#104;</domain>",                                        // "&#": may spell the URI
      TaggedXml("critical=\"yes\"").substr(0, TaggedXml("critical=\"yes\"").find("</metadata>")),  // cut short
      testing::DomainXml("<x:deep xmlns:x='urn:x'>" + nesting + "</x:deep>" +  // past libxml2's depth of 256
                         "<s:policy xmlns:s='" + ns + "' critical='yes'/>"),
  };
  for (const std::string& xml : unreadable) {
    SCOPED_TRACE(xml.substr(0, 200));
    HookOutcome refused = Run(Args("prepare"), xml);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_THAT(refused.stderr_line,
                StartsWith("virt-shadow: refusing to start VM 'web-1': cannot read its domain XML (" +
                           std::to_string(xml.size()) +
                           " bytes, virt-shadow reads up to 10000000: INVALID_ARGUMENT: "));
    EXPECT_THAT(refused.stderr_line, HasSubstr("so whether its virt-shadow policy is critical is unknown; keep the "
                                               "XML within 10000000 bytes"));
    EXPECT_THAT(refused.stderr_line, HasSubstr("virsh metadata web-1 --uri " + ns + " --remove --config"));
    // Elsewhere libvirt goes on, told why.
    HookOutcome start = Run(Args("start"), xml);
    EXPECT_EQ(start.exit_code, 0);
    EXPECT_THAT(start.stderr_line,
                StartsWith("virt-shadow: cannot read the domain XML of VM 'web-1' at start begin ("));
  }
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

// Once a text node over libxml2's 10 MB limit failed the parse and let a critical VM start unprotected.
TEST_F(HookTest, CriticalVmWithAnXmlOverTheLimitIsRefusedAtPrepare) {
  const std::string xml = WithDescription(TaggedXml("critical=\"yes\""), policy::kMaxDomainXmlBytes + 2'000'000);
  HookOutcome refused = Run(Args("prepare"), xml);  // shadowd is up: it is never asked
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.stderr_line, HasSubstr("(12000000 bytes, virt-shadow reads up to 10000000: INVALID_ARGUMENT: "
                                             "domain XML is 12000000 bytes, more than the 10000000 accepted)"));
  EXPECT_THAT(deliverer_.events, IsEmpty());
}

// The parser's limit is the hook's: an XML of the limit, all of it one text node, is read and delivered.
TEST_F(HookTest, XmlOfTheLimitWithOneHugeTextNodeIsDelivered) {
  const std::string xml = WithDescription(TaggedXml("critical=\"yes\""), policy::kMaxDomainXmlBytes);
  EXPECT_EQ(Run(Args("prepare"), xml), (HookOutcome{0, ""}));
  ASSERT_THAT(deliverer_.events, SizeIs(1));
  EXPECT_EQ(deliverer_.events[0].domain_xml().size(), policy::kMaxDomainXmlBytes);
}

TEST_F(HookTest, OversizedStdinThatMayBeTaggedRefusesPrepareNamingSizeAndLimit) {
  const OversizedXml oversized{.bytes_read = 10'000'001, .limit = 10'000'000, .may_be_tagged = true};
  HookOutcome refused = Run(Args("prepare"), oversized);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.stderr_line,
              StartsWith("virt-shadow: refusing to start VM 'web-1': cannot read its domain XML (it is larger than "
                         "the 10000000 bytes virt-shadow reads: 10000001 bytes read before it stopped), so whether "
                         "its virt-shadow policy is critical is unknown; keep the XML within 10000000 bytes"));
  HookOutcome started = Run(Args("started"), oversized);
  EXPECT_EQ(started.exit_code, 0);
  EXPECT_THAT(started.stderr_line, StartsWith("virt-shadow: cannot read the domain XML of VM 'web-1' at started "
                                              "begin (it is larger than the 10000000 bytes"));
  EXPECT_EQ(Run(Args("attach"), oversized), (HookOutcome{0, ""}));
  EXPECT_THAT(Run({"web-1"}, oversized).stderr_line, HasSubstr("expected libvirt's 4 arguments"));
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

TEST_F(HookTest, OversizedUntaggedStdinNeverHoldsUpAStart) {
  const OversizedXml untagged{.bytes_read = 50'000'000, .limit = 10'000'000, .may_be_tagged = false};
  EXPECT_EQ(Run(Args("prepare"), untagged), (HookOutcome{0, ""}));
  EXPECT_EQ(Run({}, untagged), (HookOutcome{0, ""}));
  EXPECT_THAT(deliverer_.events, IsEmpty());
}

// ReadDomainXml over a regular file (a pipe behaves the same; reads just come in other sizes).
class ReadDomainXmlTest : public ::testing::Test {
 protected:
  DomainXmlInput Read(const std::string& content, std::size_t limit) {
    const std::string path = dir_.Sub("stdin");
    const int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_EQ(::write(out, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(out);
    const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    DomainXmlInput input = ReadDomainXml(in, limit);
    ::close(in);
    return input;
  }
  TempDir dir_;
};

TEST_F(ReadDomainXmlTest, WithinTheLimitAllOfStdin) {
  EXPECT_EQ(Read("", 100), DomainXmlInput(std::string()));
  EXPECT_EQ(Read(std::string(100, 'x'), 100), DomainXmlInput(std::string(100, 'x')));
  const std::string tagged = TaggedXml();
  EXPECT_EQ(Read(tagged, policy::kMaxDomainXmlBytes), DomainXmlInput(tagged));
}

TEST_F(ReadDomainXmlTest, BeyondTheLimitAnUntaggedStdinIsScannedToItsEnd) {
  EXPECT_EQ(Read(std::string(101, 'x'), 100), DomainXmlInput(OversizedXml{101, 100, false}));
  EXPECT_EQ(Read(std::string(1'000'000, 'x'), 100), DomainXmlInput(OversizedXml{1'000'000, 100, false}));
}

TEST_F(ReadDomainXmlTest, BeyondTheLimitReadingStopsAtTheFirstSignOfAPolicy) {
  const std::string ns(policy::kPolicyNamespace);
  // In what was kept: nothing more is read.
  EXPECT_EQ(Read(ns + std::string(1'000'000, 'x'), 100), DomainXmlInput(OversizedXml{101, 100, true}));
  // Later, split across two of its 64 KiB reads (the first after the limit's 101 bytes ends at 65637):
  // it stops after the second.
  std::string late(1'000'000, 'x');
  late.replace(65'637 - 10, ns.size(), ns);
  EXPECT_EQ(Read(late, 100), DomainXmlInput(OversizedXml{101 + 2 * 65'536, 100, true}));
  std::string reference(1'000'000, 'x');
  reference.replace(65'637 - 1, 2, "&#");
  EXPECT_EQ(Read(reference, 100), DomainXmlInput(OversizedXml{101 + 2 * 65'536, 100, true}));
}

TEST_F(HookTest, MissingArgumentsFailOpenWithOneLine) {
  ShadowdIsDown();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"web-1"}, {"web-1", "prepare"}, {"web-1", "prepare", "begin"}}) {
    SCOPED_TRACE(args.size());
    HookOutcome outcome = Run(args, TaggedXml("critical=\"yes\""));
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_THAT(outcome.stderr_line, HasSubstr("expected libvirt's 4 arguments"));
    EXPECT_THAT(outcome.stderr_line, HasSubstr("but got " + std::to_string(args.size())));
  }
  EXPECT_THAT(deliverer_.events, IsEmpty());
  EXPECT_THAT(Spooled(), IsEmpty());
}

// A host that boots: libvirtd's autostart runs before shadowd, so a fenced VM is refused from its marker.
TEST_F(HookTest, WithShadowdDownAFencedVmIsRefusedFromItsMarkerEvenWhenFailOpen) {
  const std::string fence_dir = dir_.Sub("fenced");
  virtshadow::v1::FenceRecord fence;
  fence.set_vm_uuid("8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  fence.set_vm_name("web-1");
  fence.set_state(virtshadow::v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  fence.set_promoted_host("h2");
  fence.set_why("host h1 lost quorum");
  ASSERT_TRUE(failover::WriteFenceMarkers(fence_dir, {fence}).ok());
  ShadowdIsDown();
  HookOutcome refused = RunHook(Args("prepare"), TaggedXml(), deliverer_, spool_, clock_, fence_dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.stderr_line, StartsWith("virt-shadow: VM web-1 is fenced on this host"));
  EXPECT_THAT(refused.stderr_line, HasSubstr("promoted on h2"));
  EXPECT_THAT(refused.stderr_line, HasSubstr("shadowd is unreachable"));
  EXPECT_EQ(std::count(refused.stderr_line.begin(), refused.stderr_line.end(), '\n'), 1);
  // Only a start is refused; other operations go on.
  EXPECT_EQ(RunHook(Args("stopped", "end"), TaggedXml(), deliverer_, spool_, clock_, fence_dir).exit_code, 0);
  // When shadowd answers, its verdict is the authority (it keeps the markers in line).
  deliverer_.answer = Verdict(true);
  EXPECT_EQ(RunHook(Args("prepare"), TaggedXml(), deliverer_, spool_, clock_, fence_dir).exit_code, 0);
  // Released: the marker goes, and a fail-open VM starts with shadowd down.
  fence.set_state(virtshadow::v1::FenceRecord::FENCE_STATE_RELEASED);
  ASSERT_TRUE(failover::WriteFenceMarkers(fence_dir, {fence}).ok());
  ShadowdIsDown();
  EXPECT_EQ(RunHook(Args("prepare"), TaggedXml(), deliverer_, spool_, clock_, fence_dir).exit_code, 0);
}

TEST_F(HookTest, FullSpoolDropsTheEventAndSaysSoWithoutChangingTheDecision) {
  spool::Spool full(dir_.Sub("full"), clock_, spool::SpoolLimits{.max_events = 1});
  ASSERT_TRUE(full.Append(HookEvent()).ok());
  ShadowdIsDown();

  HookOutcome open = RunHook(Args("start"), TaggedXml(), deliverer_, full, clock_);
  EXPECT_EQ(open.exit_code, 0);  // a full disk must not block VM starts
  EXPECT_THAT(open.stderr_line, HasSubstr("event DROPPED, the spool refused it: RESOURCE_EXHAUSTED"));

  HookOutcome closed = RunHook(Args("prepare"), TaggedXml("critical=\"yes\""), deliverer_, full, clock_);
  EXPECT_EQ(closed.exit_code, 1);
  EXPECT_THAT(closed.stderr_line, StartsWith(std::string(kRefusalMessage)));
  EXPECT_THAT(closed.stderr_line, HasSubstr("event DROPPED"));
  EXPECT_EQ(std::count(closed.stderr_line.begin(), closed.stderr_line.end(), '\n'), 1);
}

}  // namespace
}  // namespace vs::hook
