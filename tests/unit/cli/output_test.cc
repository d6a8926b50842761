// Tables, detail text and JSON from sample shadowd answers: columns and keys, not exact whitespace.
#include "cli/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace vs::cli {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

// The cells of a table line: runs of text separated by two or more spaces.
std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t i = line.find_first_not_of(' ');
  while (i != std::string::npos) {
    std::size_t end = line.find("  ", i);
    cells.push_back(line.substr(i, end == std::string::npos ? std::string::npos : end - i));
    i = end == std::string::npos ? end : line.find_first_not_of(' ', end);
  }
  return cells;
}

v1::VmStatus ProtectedVm() {
  v1::VmStatus vm;
  vm.set_name("web-1");
  vm.set_uuid("11111111-2222-3333-4444-555555555555");
  vm.set_state("Protected");
  vm.set_running(true);
  vm.set_primary_host("h1");
  v1::ShadowInfo* shadow = vm.add_shadows();
  shadow->set_host("h2");
  shadow->set_name("web-1.shadow");
  shadow->set_uuid("aaaaaaaa-2222-3333-4444-555555555555");
  shadow = vm.add_shadows();
  shadow->set_host("h3");
  shadow->set_name("web-1.shadow2");
  shadow->set_uuid("bbbbbbbb-2222-3333-4444-555555555555");
  vm.set_shadow_vcpus(2);
  vm.set_shadow_memory_kib(512 * 1024);
  vm.set_policy(R"(<policy enabled="yes" vcpus="50%" memory="512MiB"/>)");
  return vm;
}

v1::VmStatus UnprotectedVm() {
  v1::VmStatus vm;
  vm.set_name("batch-7");
  vm.set_state("Unprotected");
  vm.set_unprotected_reason("no host in another zone has 4 free vCPUs");
  return vm;
}

TEST(CliFormatKiBTest, LargestUnitWithOneDecimalRoundedDown) {
  EXPECT_EQ(FormatKiB(0), "0 KiB");
  EXPECT_EQ(FormatKiB(512), "512 KiB");
  EXPECT_EQ(FormatKiB(1023), "1023 KiB");
  EXPECT_EQ(FormatKiB(1024), "1 MiB");
  EXPECT_EQ(FormatKiB(1536), "1.5 MiB");
  EXPECT_EQ(FormatKiB(2047), "1.9 MiB");
  EXPECT_EQ(FormatKiB(1024 * 1024), "1 GiB");
  EXPECT_EQ(FormatKiB(1024 * 1024 * 3 / 2), "1.5 GiB");
  EXPECT_EQ(FormatKiB(std::uint64_t{8} << 30), "8 TiB");
  EXPECT_THAT(FormatKiB(std::numeric_limits<std::uint64_t>::max()), HasSubstr(" PiB"));
}

TEST(CliRenderTableTest, AlignsColumnsUnderARuleWithoutTrailingSpaces) {
  std::string table = RenderTable({"Name", "State"}, {{"a-very-long-name", "x"}, {"b", "Protected"}});
  std::vector<std::string> lines = Lines(table);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1].find_first_not_of('-'), std::string::npos);
  EXPECT_EQ(lines[1].size(), lines[3].size());  // the rule spans the widest row
  EXPECT_EQ(lines[0].find("State"), lines[2].find("x"));
  EXPECT_EQ(lines[0].find("State"), lines[3].find("Protected"));
  for (const std::string& line : lines) EXPECT_NE(line.back(), ' ') << line;
  EXPECT_THAT(Cells(lines[2]), ElementsAre("a-very-long-name", "x"));
  EXPECT_EQ(RenderTable({}, {}), "");
}

TEST(CliVmTableTest, OneRowPerVmWithHostsSizeAndNote) {
  v1::ListVmsReply reply;
  *reply.add_vms() = ProtectedVm();
  *reply.add_vms() = UnprotectedVm();
  std::vector<std::string> lines = Lines(FormatVmTable(reply));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(Cells(lines[0]), ElementsAre("Name", "State", "Shadow host(s)", "Shadow size", "Note"));
  EXPECT_THAT(Cells(lines[2]), ElementsAre("web-1", "Protected", "h2,h3", "2 vCPU, 512 MiB", "-"));
  EXPECT_THAT(Cells(lines[3]),
              ElementsAre("batch-7", "Unprotected", "-", "-", "no host in another zone has 4 free vCPUs"));
}

TEST(CliVmTableTest, NotePrefersTheLastErrorAndIsShortenedAtACharacterBoundary) {
  v1::ListVmsReply reply;
  v1::VmStatus* vm = reply.add_vms();
  vm->set_name("db-1");
  vm->set_state("PolicyInvalid");
  vm->set_unprotected_reason("hidden behind the error");
  vm->set_last_error(std::string(56, 'e') + "\xC3\xA9\xC3\xA9\xC3\xA9 and much more text after that");
  std::vector<std::string> lines = Lines(FormatVmTable(reply));
  ASSERT_EQ(lines.size(), 3u);
  const std::string note = Cells(lines[2]).back();
  EXPECT_LE(note.size(), 60u);
  EXPECT_EQ(note, std::string(56, 'e') + "...");  // the 2-byte character that did not fit is dropped whole
  EXPECT_THAT(lines[2], Not(HasSubstr("hidden")));
}

TEST(CliVmTableTest, ControlCharactersInNamesCannotBreakTheTable) {
  v1::ListVmsReply reply;
  v1::VmStatus* vm = reply.add_vms();
  vm->set_name("evil\nname\x1b[31m");
  vm->set_state("Protected");
  std::vector<std::string> lines = Lines(FormatVmTable(reply));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Cells(lines[2]).front(), "evil?name?[31m");
}

TEST(CliVmTableTest, EmptyListIsTheHeaderOnly) {
  std::vector<std::string> lines = Lines(FormatVmTable(v1::ListVmsReply()));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("Name"));
}

TEST(CliVmDetailTest, ShowsEveryField) {
  const std::string text = FormatVmDetail(ProtectedVm());
  for (const char* expected :
       {"Name:", "web-1", "UUID:", "11111111-2222-3333-4444-555555555555", "State:", "Protected", "Running:",
        "yes", "Primary host:", "h1", "Shadows:", "h2: web-1.shadow (aaaaaaaa-2222-3333-4444-555555555555)",
        "h3: web-1.shadow2 (bbbbbbbb-2222-3333-4444-555555555555)", "Shadow size:", "2 vCPU, 512 MiB",
        "Policy:", R"(<policy enabled="yes" vcpus="50%" memory="512MiB"/>)", "Last error:", "Unprotected reason:"}) {
    EXPECT_THAT(text, HasSubstr(expected));
  }
  std::vector<std::string> lines = Lines(text);
  // Values start in one column, the second shadow's too.
  const std::size_t column = lines[0].find("web-1");
  ASSERT_EQ(lines.size(), 11u);
  for (const std::string& line : lines) {
    ASSERT_GT(line.size(), column) << line;
    EXPECT_EQ(line[column - 1], ' ') << line;
    EXPECT_NE(line[column], ' ') << line;
  }
  EXPECT_EQ(lines[6].find("h3:"), column);
  EXPECT_EQ(lines[6].find_first_not_of(' '), column);
}

TEST(CliVmDetailTest, MissingValuesShowAsDash) {
  const std::string text = FormatVmDetail(UnprotectedVm());
  EXPECT_THAT(text, HasSubstr("Shadows:"));
  EXPECT_THAT(text, HasSubstr("- (no valid policy)"));
  EXPECT_THAT(text, HasSubstr("Running:"));
  EXPECT_THAT(text, HasSubstr("no host in another zone has 4 free vCPUs"));
  for (const std::string& line : Lines(text)) {
    if (line.starts_with("Shadows:") || line.starts_with("Primary host:") || line.starts_with("Last error:")) {
      EXPECT_EQ(Cells(line).back(), "-") << line;
    }
  }
}

v1::ListHostsReply SampleHosts() {
  v1::ListHostsReply reply;
  reply.set_this_host("h1");
  for (int i = 1; i <= 2; ++i) {
    v1::HostInfo* host = reply.add_hosts();
    host->set_name("h" + std::to_string(i));
    host->set_zone(i == 1 ? "zone-a" : "zone-b");
    host->set_uri("qemu+tcp://10.77.0.1" + std::to_string(i) + "/system");
    host->set_cost_per_hour(i == 1 ? 0.25 : 1.5);
    host->set_up(i == 1);
    host->set_cpus(8);
    host->set_memory_kib(16 * 1024 * 1024);
    host->set_used_vcpus(3);
    host->set_used_memory_kib(4 * 1024 * 1024);
    host->set_reserved_vcpus(i == 1 ? 0 : 2);
    host->set_reserved_memory_kib(i == 1 ? 0 : 1024 * 1024);
    host->set_shadows(i == 1 ? 0 : 1);
  }
  return reply;
}

TEST(CliHostTableTest, OneRowPerHostAndThisHostMarked) {
  std::vector<std::string> lines = Lines(FormatHostTable(SampleHosts()));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(Cells(lines[0]),
              ElementsAre("Name", "Zone", "Up", "Cost/h", "CPUs", "Memory", "Used", "Reserved", "Shadows"));
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre("h1 (this host)", "zone-a", "yes", "0.25", "8", "16 GiB", "3 vCPU, 4 GiB", "-", "0"));
  EXPECT_THAT(Cells(lines[3]),
              ElementsAre("h2", "zone-b", "no", "1.5", "8", "16 GiB", "3 vCPU, 4 GiB", "2 vCPU, 1 GiB", "1"));
}

v1::ExplainReply SampleExplanation() {
  v1::ExplainReply reply;
  reply.set_vm("web-1");
  reply.set_summary("1 shadow placed in another zone, cheapest first");
  reply.add_chosen_hosts("h2");
  auto add = [&](const char* host, const char* zone, const char* verdict, int rank, const char* reason) {
    v1::HostVerdict* v = reply.add_hosts();
    v->set_host(host);
    v->set_zone(zone);
    v->set_verdict(verdict);
    v->set_rank(rank);
    v->set_reason(reason);
  };
  add("h2", "zone-b", "chosen", 1, "another zone, 0.25/h");
  add("h4", "zone-b", "eligible", 2, "another zone, 1.5/h");
  add("h1", "zone-a", "rejected", 0, "the primary's host");
  return reply;
}

TEST(CliExplanationTest, SummaryThenOneLinePerHost) {
  const std::string text = FormatExplanation(SampleExplanation());
  EXPECT_THAT(text, HasSubstr("1 shadow placed in another zone, cheapest first"));
  std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_THAT(Cells(lines[0]), ElementsAre("Domain:", "web-1"));
  EXPECT_THAT(Cells(lines[2]), ElementsAre("Chosen:", "h2"));
  EXPECT_THAT(Cells(lines[4]), ElementsAre("Host", "Zone", "Verdict", "Rank", "Reason"));
  EXPECT_THAT(Cells(lines[6]), ElementsAre("h2", "zone-b", "chosen", "1", "another zone, 0.25/h"));
  EXPECT_THAT(Cells(lines[7]), ElementsAre("h4", "zone-b", "eligible", "2", "another zone, 1.5/h"));
  EXPECT_THAT(Cells(lines[8]), ElementsAre("h1", "zone-a", "rejected", "-", "the primary's host"));
}

TEST(CliJsonTest, VmListHasEveryFieldUnderProtoNames) {
  v1::ListVmsReply reply;
  *reply.add_vms() = ProtectedVm();
  *reply.add_vms() = UnprotectedVm();
  json parsed = json::parse(DumpJson(VmListToJson(reply)));
  ASSERT_EQ(parsed["vms"].size(), 2u);
  const json& vm = parsed["vms"][0];
  for (const char* key : {"name", "uuid", "state", "running", "primary_host", "shadows", "shadow_vcpus",
                          "shadow_memory_kib", "policy", "last_error", "unprotected_reason"}) {
    EXPECT_TRUE(vm.contains(key)) << key;
    EXPECT_TRUE(parsed["vms"][1].contains(key)) << key;  // empty fields are present too
  }
  EXPECT_EQ(vm["name"], "web-1");
  EXPECT_EQ(vm["running"], true);
  EXPECT_EQ(vm["shadow_memory_kib"], 524288);
  EXPECT_EQ(vm["shadows"][1]["host"], "h3");
  EXPECT_EQ(vm["shadows"][1]["name"], "web-1.shadow2");
  EXPECT_EQ(parsed["vms"][1]["unprotected_reason"], "no host in another zone has 4 free vCPUs");
  EXPECT_EQ(parsed["vms"][1]["shadows"], json::array());
  EXPECT_EQ(json::parse(DumpJson(VmListToJson(v1::ListVmsReply())))["vms"], json::array());
}

TEST(CliJsonTest, HostsAndExplanationUseProtoNames) {
  json hosts = json::parse(DumpJson(HostsToJson(SampleHosts())));
  EXPECT_EQ(hosts["this_host"], "h1");
  ASSERT_EQ(hosts["hosts"].size(), 2u);
  const json& h2 = hosts["hosts"][1];
  EXPECT_EQ(h2["name"], "h2");
  EXPECT_EQ(h2["uri"], "qemu+tcp://10.77.0.12/system");
  EXPECT_DOUBLE_EQ(h2["cost_per_hour"].get<double>(), 1.5);
  EXPECT_EQ(h2["up"], false);
  EXPECT_EQ(h2["reserved_vcpus"], 2);
  EXPECT_EQ(h2["reserved_memory_kib"], 1048576);
  for (const char* key : {"zone", "cpus", "memory_kib", "used_vcpus", "used_memory_kib", "shadows"}) {
    EXPECT_TRUE(h2.contains(key)) << key;
  }

  json explanation = json::parse(DumpJson(ExplanationToJson(SampleExplanation())));
  EXPECT_EQ(explanation["vm"], "web-1");
  EXPECT_EQ(explanation["summary"], "1 shadow placed in another zone, cheapest first");
  EXPECT_EQ(explanation["chosen_hosts"], json::array({"h2"}));
  ASSERT_EQ(explanation["hosts"].size(), 3u);
  EXPECT_EQ(explanation["hosts"][2]["verdict"], "rejected");
  EXPECT_EQ(explanation["hosts"][2]["rank"], 0);
  EXPECT_EQ(explanation["hosts"][0]["reason"], "another zone, 0.25/h");
}

TEST(CliJsonTest, InvalidUtf8AndControlCharactersStillGiveValidJson) {
  v1::VmStatus vm = ProtectedVm();
  vm.set_last_error("bad \xff\xfe bytes\nand a newline");
  const std::string text = DumpJson(VmToJson(vm));
  EXPECT_EQ(text.back(), '\n');
  json parsed = json::parse(text);
  EXPECT_EQ(parsed["last_error"], "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes\nand a newline");
}

}  // namespace
}  // namespace vs::cli
