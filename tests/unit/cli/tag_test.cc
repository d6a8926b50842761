// tag and untag: merging with the domain's current policy, the --live/--config scopes, what is
// written through the Hypervisor, and the whole command through Run() with a fake libvirt.
#include "cli/tag.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "tests/unit/cli/fake_hypervisor.h"

namespace vs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::FakeDomain;
using testing::FakeHypervisor;
using testing::FakeLibvirt;
using testing::PolicyMetadata;
using std::chrono::milliseconds;

constexpr std::string_view kNs = "http://virt-shadow.org/xmlns/policy/1.0";

policy::RawPolicy Raw(std::vector<std::pair<std::string, std::string>> attributes) {
  policy::RawPolicy raw;
  raw.element_name = "policy";
  raw.attributes = std::move(attributes);
  return raw;
}

TEST(CliMergeTagPolicyTest, UntaggedWithNothingGivenIsTheDefaults) {
  StatusOr<policy::Policy> merged = MergeTagPolicy({}, {});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(*merged, policy::Policy{});
}

TEST(CliMergeTagPolicyTest, UntaggedTakesTheGivenFieldsAndDefaultsForTheRest) {
  StatusOr<policy::Policy> merged = MergeTagPolicy({}, {{"vcpus", "2"}, {"zone", "any"}});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  policy::Policy expected;
  expected.vcpus = policy::ResourceSpec::Absolute(2);
  expected.zone = policy::ZonePreference::kAny;
  EXPECT_EQ(*merged, expected);
}

TEST(CliMergeTagPolicyTest, TaggedKeepsItsFieldsAndOverridesOnlyTheGivenOnes) {
  StatusOr<policy::Policy> merged = MergeTagPolicy(
      {Raw({{"vcpus", "3"}, {"memory", "1GiB"}, {"critical", "yes"}, {"interval", "1m"}, {"enabled", "no"}})},
      {{"memory", "25%"}, {"priority", "900"}});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  policy::Policy expected;
  expected.enabled = false;
  expected.vcpus = policy::ResourceSpec::Absolute(3);
  expected.memory = policy::ResourceSpec::Percent(25);
  expected.critical = true;
  expected.interval = milliseconds(60'000);
  expected.priority = 900;
  EXPECT_EQ(*merged, expected);
}

TEST(CliMergeTagPolicyTest, GivingAnOptionRepairsAnInvalidCurrentValue) {
  StatusOr<policy::Policy> merged = MergeTagPolicy({Raw({{"vcpus", "lots"}, {"shadows", "2"}})}, {{"vcpus", "4"}});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->vcpus, policy::ResourceSpec::Absolute(4));
  EXPECT_EQ(merged->shadows, 2u);
}

TEST(CliMergeTagPolicyTest, AnInvalidCurrentValueNotGivenIsRefusedNamingIt) {
  StatusOr<policy::Policy> merged = MergeTagPolicy({Raw({{"vcpus", "lots"}})}, {{"memory", "1GiB"}});
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(merged.status().message(), StartsWith("its current policy is invalid: policy attribute 'vcpus': 'lots'"));
  EXPECT_THAT(merged.status().message(), HasSubstr("untag the domain first"));

  StatusOr<policy::Policy> unknown = MergeTagPolicy({Raw({{"vpcus", "2"}})}, {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown attribute 'vpcus'"));
}

TEST(CliMergeTagPolicyTest, SeveralPolicyElementsAreRefused) {
  StatusOr<policy::Policy> merged = MergeTagPolicy({Raw({{"vcpus", "2"}}), Raw({{"vcpus", "3"}})}, {});
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(merged.status().message(), StartsWith("the domain has 2 policy elements"));
}

struct ScopeCase {
  bool live;
  bool config;
  bool running;
  bool allowed;
};

TEST(CliCheckTagScopeTest, WholeTable) {
  const std::vector<ScopeCase> cases = {
      {false, false, true, true},   {false, false, false, true},  // default: whatever SetMetadata does
      {true, false, true, false},   {true, false, false, false},  // live alone: would also change config
      {false, true, true, false},   {false, true, false, true},   // config alone: only a stopped domain
      {true, true, true, true},     {true, true, false, false},   // both: needs a running domain
  };
  for (const ScopeCase& c : cases) {
    TagCommand tag{.domain = "web", .attributes = {}, .live = c.live, .config = c.config};
    Status status = CheckTagScope(tag, c.running);
    EXPECT_EQ(status.ok(), c.allowed) << "live=" << c.live << " config=" << c.config << " running=" << c.running;
    if (!status.ok()) {
      EXPECT_EQ(status.code(), Code::kFailedPrecondition);
    }
  }
  EXPECT_THAT(CheckTagScope(TagCommand{.domain = "web", .attributes = {}, .live = true, .config = false}, false)
                  .message(),
              StartsWith("domain 'web' is not running"));
  EXPECT_THAT(CheckTagScope(TagCommand{.domain = "web", .attributes = {}, .live = false, .config = true}, true)
                  .message(),
              StartsWith("--config alone is not supported on a running domain"));
}

class CliTagDomainTest : public ::testing::Test {
 protected:
  CliTagDomainTest() {
    libvirt_.domains["web"] = FakeDomain{};
    libvirt_.domains["db"] = FakeDomain{
        .state = virt::DomainState::kShutoff,
        .policy_metadata = PolicyMetadata(R"(vcpus="4" memory="16GiB" critical="yes" zone="require-other")")};
  }
  FakeLibvirt libvirt_;
  FakeHypervisor hypervisor_{libvirt_};
};

TEST_F(CliTagDomainTest, WritesTheCanonicalElementUnderTheNamespaceAndKey) {
  StatusOr<std::string> element =
      TagDomain(hypervisor_, TagCommand{.domain = "web", .attributes = {{"vcpus", "2"}, {"memory", "512M"}}});
  ASSERT_TRUE(element.ok()) << element.status().ToString();
  EXPECT_EQ(*element, R"(<policy enabled="yes" vcpus="2" memory="512MiB" interval="5s" warmup="yes" priority="100" )"
                      R"(critical="no" shadows="1" zone="prefer-other"/>)");
  ASSERT_EQ(libvirt_.writes.size(), 1u);
  EXPECT_EQ(libvirt_.writes[0].domain, "web");
  EXPECT_EQ(libvirt_.writes[0].ns_uri, kNs);
  EXPECT_EQ(libvirt_.writes[0].key, "shadow");
  EXPECT_EQ(libvirt_.writes[0].xml, *element);
}

TEST_F(CliTagDomainTest, MergesWithThePolicyLibvirtAlreadyHas) {
  StatusOr<std::string> element =
      TagDomain(hypervisor_, TagCommand{.domain = "db", .attributes = {{"priority", "900"}}});
  ASSERT_TRUE(element.ok()) << element.status().ToString();
  for (const char* kept : {R"(vcpus="4")", R"(memory="16GiB")", R"(critical="yes")", R"(zone="require-other")",
                           R"(priority="900")"}) {
    EXPECT_THAT(*element, HasSubstr(kept));
  }
  // Tagging again reads back what was written: still merged, not reset.
  StatusOr<std::string> again = TagDomain(hypervisor_, TagCommand{.domain = "db", .attributes = {{"shadows", "2"}}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_THAT(*again, HasSubstr(R"(priority="900")"));
  EXPECT_THAT(*again, HasSubstr(R"(shadows="2")"));
}

TEST_F(CliTagDomainTest, NothingIsWrittenWhenTheMergedPolicyIsInvalid) {
  libvirt_.domains["web"].policy_metadata = PolicyMetadata(R"(interval="forever")");
  StatusOr<std::string> element = TagDomain(hypervisor_, TagCommand{.domain = "web", .attributes = {{"vcpus", "2"}}});
  ASSERT_FALSE(element.ok());
  EXPECT_EQ(element.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(element.status().message(), HasSubstr("'interval'"));
  EXPECT_TRUE(libvirt_.writes.empty());
}

TEST_F(CliTagDomainTest, UnknownDomainIsNotFoundAndNothingIsWritten) {
  StatusOr<std::string> element = TagDomain(hypervisor_, TagCommand{.domain = "nosuch"});
  ASSERT_FALSE(element.ok());
  EXPECT_EQ(element.status().code(), Code::kNotFound);
  EXPECT_TRUE(libvirt_.writes.empty());
}

TEST_F(CliTagDomainTest, ScopeIsCheckedAgainstTheDomainStateBeforeWriting) {
  StatusOr<std::string> live_on_stopped =
      TagDomain(hypervisor_, TagCommand{.domain = "db", .attributes = {}, .live = true, .config = false});
  EXPECT_EQ(live_on_stopped.status().code(), Code::kFailedPrecondition);
  StatusOr<std::string> config_on_running =
      TagDomain(hypervisor_, TagCommand{.domain = "web", .attributes = {}, .live = false, .config = true});
  EXPECT_EQ(config_on_running.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(libvirt_.writes.empty());

  StatusOr<std::string> config_on_stopped =
      TagDomain(hypervisor_, TagCommand{.domain = "db", .attributes = {}, .live = false, .config = true});
  EXPECT_TRUE(config_on_stopped.ok()) << config_on_stopped.status().ToString();
  StatusOr<std::string> both_on_running =
      TagDomain(hypervisor_, TagCommand{.domain = "web", .attributes = {}, .live = true, .config = true});
  EXPECT_TRUE(both_on_running.ok()) << both_on_running.status().ToString();
  EXPECT_EQ(libvirt_.writes.size(), 2u);
}

TEST_F(CliTagDomainTest, LibvirtRefusingTheWriteIsReturned) {
  libvirt_.set_metadata_error = FailedPrecondition("operation forbidden: read only access prevents it");
  StatusOr<std::string> element = TagDomain(hypervisor_, TagCommand{.domain = "web"});
  EXPECT_EQ(element.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(element.status().message(), HasSubstr("read only"));
}

TEST_F(CliTagDomainTest, UntagRemovesAndSaysWhetherThereWasAPolicy) {
  StatusOr<bool> had = UntagDomain(hypervisor_, UntagCommand{"db"});
  ASSERT_TRUE(had.ok()) << had.status().ToString();
  EXPECT_TRUE(*had);
  ASSERT_EQ(libvirt_.writes.size(), 1u);
  EXPECT_EQ(libvirt_.writes[0].xml, "");
  EXPECT_EQ(libvirt_.writes[0].ns_uri, kNs);
  EXPECT_EQ(libvirt_.domains["db"].policy_metadata, "");

  StatusOr<bool> again = UntagDomain(hypervisor_, UntagCommand{"db"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(libvirt_.writes.size(), 2u);  // removed anyway: the other definition may still have one

  EXPECT_EQ(UntagDomain(hypervisor_, UntagCommand{"nosuch"}).status().code(), Code::kNotFound);
}

// The whole tag/untag command through Run(), with the fake as libvirt.
class CliTagRunTest : public CliTagDomainTest {
 protected:
  int RunCli(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    LibvirtConnector connect = [this](const std::string& uri) -> StatusOr<std::unique_ptr<virt::Hypervisor>> {
      connected_uris_.push_back(uri);
      if (!libvirt_up_) return Unavailable("connecting to " + uri + ": Failed to connect socket: No such file");
      return std::unique_ptr<virt::Hypervisor>(std::make_unique<FakeHypervisor>(libvirt_));
    };
    return vs::cli::Run(args, Environment{}, connect, clock_, out_, err_);
  }

  FakeClock clock_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::vector<std::string> connected_uris_;
  bool libvirt_up_ = true;
};

int Lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST_F(CliTagRunTest, TagPrintsWhatItWroteOnTheGivenUri) {
  EXPECT_EQ(RunCli({"-c", "qemu+tcp://h1/system", "tag", "web", "--vcpus", "2"}), 0);
  EXPECT_EQ(connected_uris_, std::vector<std::string>{"qemu+tcp://h1/system"});
  EXPECT_THAT(out_.str(), StartsWith("Domain 'web' tagged: <policy enabled=\"yes\" vcpus=\"2\""));
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(libvirt_.writes.size(), 1u);
}

TEST_F(CliTagRunTest, TagAndUntagJson) {
  EXPECT_EQ(RunCli({"tag", "web", "--zone", "any", "--json"}), 0);
  nlohmann::json tagged = nlohmann::json::parse(out_.str());
  EXPECT_EQ(tagged["domain"], "web");
  EXPECT_THAT(tagged["policy"].get<std::string>(), HasSubstr(R"(zone="any")"));
  EXPECT_EQ(RunCli({"--json", "untag", "web"}), 0);
  nlohmann::json untagged = nlohmann::json::parse(out_.str());
  EXPECT_EQ(untagged["domain"], "web");
  EXPECT_EQ(untagged["had_policy"], true);
}

TEST_F(CliTagRunTest, UntagTellsWhetherThereWasAPolicy) {
  EXPECT_EQ(RunCli({"untag", "db"}), 0);
  EXPECT_EQ(out_.str(), "Domain 'db' untagged: policy removed\n");
  EXPECT_EQ(RunCli({"untag", "db"}), 0);
  EXPECT_EQ(out_.str(), "Domain 'db' had no policy; nothing to remove\n");
}

TEST_F(CliTagRunTest, BadValueIsExit2BeforeAnyLibvirtCall) {
  EXPECT_EQ(RunCli({"tag", "web", "--memory", "12XB"}), 2);
  EXPECT_TRUE(connected_uris_.empty());
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: invalid value for --memory: policy attribute 'memory': '12XB'"));
  EXPECT_EQ(Lines(err_.str()), 1);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTagRunTest, InvalidCurrentPolicyIsExit2AndNothingWritten) {
  libvirt_.domains["web"].policy_metadata = PolicyMetadata(R"(shadows="9")");
  EXPECT_EQ(RunCli({"tag", "web", "--vcpus", "2"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: cannot tag domain 'web': its current policy is invalid: "
                                     "policy attribute 'shadows': '9'"));
  EXPECT_TRUE(libvirt_.writes.empty());
}

TEST_F(CliTagRunTest, UnknownDomainIsExit4WithAHint) {
  EXPECT_EQ(RunCli({"-c", "qemu:///system", "untag", "nosuch"}), 4);
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: cannot untag domain 'nosuch': "));
  EXPECT_THAT(err_.str(), HasSubstr("; 'virsh -c qemu:///system list --all' lists the domains"));
  EXPECT_EQ(Lines(err_.str()), 1);
}

TEST_F(CliTagRunTest, UnsupportedScopeIsExit1) {
  EXPECT_EQ(RunCli({"tag", "web", "--live"}), 1);
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: cannot tag domain 'web': --live alone is not supported"));
  EXPECT_TRUE(libvirt_.writes.empty());
}

TEST_F(CliTagRunTest, LibvirtUnreachableIsExit1NotExit3) {
  libvirt_up_ = false;
  EXPECT_EQ(RunCli({"tag", "web"}), 1);
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: cannot connect to libvirt at qemu:///system: "));
  EXPECT_THAT(err_.str(), HasSubstr("; is libvirtd running?"));
  EXPECT_EQ(Lines(err_.str()), 1);
}

TEST_F(CliTagRunTest, ShadowdCommandsNeverConnectToLibvirtAndHelpNeedsNothing) {
  EXPECT_EQ(RunCli({"tag", "--help"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("Usage: virt-shadow tag DOMAIN"));
  EXPECT_EQ(RunCli({"--version"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("virt-shadow "));
  EXPECT_EQ(RunCli({"frobnicate"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("virt-shadow: unknown command 'frobnicate'"));
  EXPECT_TRUE(connected_uris_.empty());
}

}  // namespace
}  // namespace vs::cli
