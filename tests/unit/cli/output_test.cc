// Tables, detail text and JSON from sample shadowd answers: columns and keys, not exact whitespace.
#include "cli/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vs::cli {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
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

TEST(CliVmDetailTest, AVmThatCameHereSaysFromWhereAndHowForFailback) {
  v1::VmStatus vm = ProtectedVm();
  v1::OriginRecord* origin = vm.mutable_origin();
  origin->set_vm_uuid(vm.uuid());
  origin->set_origin_host("h1");
  origin->set_arrived_by(v1::OriginRecord::ARRIVAL_PROMOTION);
  origin->set_arrived_unix_ms(1714564984000);  // 2024-05-01 12:03:04 UTC
  origin->set_why("promoted here from its shadow after h1 failed");
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("Arrived:"));
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("from h1 by a promotion at 2024-05-01 12:03:04 UTC (promoted here from "
                                            "its shadow after h1 failed)"));
  const json parsed = json::parse(DumpJson(VmToJson(vm)));
  EXPECT_EQ(parsed["origin"]["origin_host"], "h1");
  EXPECT_EQ(parsed["origin"]["arrived_by"], "ARRIVAL_PROMOTION");
  EXPECT_TRUE(json::parse(DumpJson(VmToJson(ProtectedVm())))["origin"].is_null());
  EXPECT_THAT(FormatVmDetail(ProtectedVm()), ::testing::Not(HasSubstr("Arrived:")));
}

TEST(CliVmDetailTest, APromotedVmSaysFromWhereWhenAndItsRpo) {
  v1::VmStatus vm = ProtectedVm();
  v1::PromotionRecord* p = vm.mutable_promotion();
  p->set_vm_uuid(vm.uuid());
  p->set_vm_name(vm.name());
  p->set_primary_host("h1");
  p->set_phase(v1::PROMOTION_PHASE_DONE);
  p->set_reason("h1 left the membership 5300 ms ago, more than the fence bound (5200 ms)");
  p->set_decided_unix_ms(1714564984000);  // 2024-05-01 12:03:04 UTC
  p->set_checkpoint("vs-1714564980000");
  p->set_checkpoint_unix_ms(1714564980000);
  p->set_primary_last_seen_unix_ms(1714564983200);
  p->set_rpo_ms(3200);
  p->set_rpo_bound_ms(7000);
  p->set_rpo_within_bound(true);
  p->set_grown_vcpus(3);
  p->set_grown_memory_kib(1024 * 1024);
  p->set_full_vcpus(4);
  p->set_full_memory_kib(1024 * 1024);
  p->set_shortfall("runs with 3 of 4 vCPUs: the host has no more room unreserved");
  const std::string text = FormatVmDetail(vm);
  EXPECT_THAT(text, HasSubstr("promoted from h1 at 2024-05-01 12:03:04 UTC, RPO 3.2 s"));
  EXPECT_THAT(text, HasSubstr("Grown to:"));
  EXPECT_THAT(text, HasSubstr("3 vCPU, 1 GiB of 4 vCPU, 1 GiB"));
  EXPECT_THAT(text, HasSubstr("Not restored:"));
  EXPECT_THAT(text, HasSubstr("3 of 4 vCPUs"));
  const json parsed = json::parse(DumpJson(VmToJson(vm)));
  EXPECT_EQ(parsed["promotion"]["primary_host"], "h1");
  EXPECT_EQ(parsed["promotion"]["rpo_ms"], 3200);
  EXPECT_EQ(parsed["promotion"]["phase"], "PROMOTION_PHASE_DONE");
  EXPECT_TRUE(json::parse(DumpJson(VmToJson(ProtectedVm())))["promotion"].is_null());

  p->set_phase(v1::PROMOTION_PHASE_STARTED);
  p->set_rpo_within_bound(false);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("RPO 3.2 s (over its bound of 7.0 s); under way"));
}

TEST(CliVmDetailTest, ReplicationSaysWhereTheNextRoundStandsInTheHostsQueue) {
  v1::VmStatus vm = ProtectedVm();
  v1::ReplicationInfo& r = *vm.mutable_replication();
  r.set_interval_ms(5000);
  r.set_lag_ms(-1);
  r.set_next_round_in_ms(2300);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("Next round:         in 2.3 s"));
  r.set_next_round_in_ms(-1500);
  r.set_queue_position(2);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("overdue by 1.5 s, waiting for a free runner (number 2 in line)"));
  r.set_queue_position(1);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("waiting for a free runner (number 1, next)"));
  r.set_queue_position(0);
  r.set_round_running(true);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("running now"));
  r.set_interval_ms(0);  // not scheduled here: no queue
  EXPECT_THAT(FormatVmDetail(vm), ::testing::Not(HasSubstr("Next round:")));
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
  v1::HostInfo* draining = reply.add_hosts();
  draining->set_name("h3");
  draining->set_zone("zone-b");
  draining->set_up(false);  // shadowd reports a draining host as down to placement
  draining->set_draining(true);
  return reply;
}

TEST(CliHostTableTest, OneRowPerHostAndThisHostMarked) {
  std::vector<std::string> lines = Lines(FormatHostTable(SampleHosts()));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(Cells(lines[0]),
              ElementsAre("Name", "Zone", "State", "Cost/h", "CPUs", "Memory", "Used", "Reserved", "Shadows"));
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre("h1 (this host)", "zone-a", "up", "0.25", "8", "16 GiB", "3 vCPU, 4 GiB", "-", "0"));
  EXPECT_THAT(Cells(lines[3]),
              ElementsAre("h2", "zone-b", "down", "1.5", "8", "16 GiB", "3 vCPU, 4 GiB", "2 vCPU, 1 GiB", "1"));
  EXPECT_THAT(Cells(lines[4]), ElementsAre("h3", "zone-b", "draining", "0", "0", "0 KiB", "-", "-", "0"));
}

// SampleHosts as a shadowd that follows Corosync sees them: h1 and h2 members, h3 absent for 12 s.
v1::ListHostsReply SampleHostsWithMembership(bool known, bool quorate) {
  v1::ListHostsReply reply = SampleHosts();
  reply.set_membership_enabled(true);
  reply.set_membership_known(known);
  reply.set_quorate(quorate);
  reply.set_ring_id(16);
  for (v1::HostInfo& host : *reply.mutable_hosts()) {
    const bool absent = host.name() == "h3";
    host.set_membership(absent ? "absent" : "member");
    host.set_membership_since_ago_ms(absent ? 12'000 : 60'000);
    host.set_last_seen_ago_ms(absent ? 12'400 : 300);
    host.set_last_seen_unix_ms(1'800'000'000'000);
    host.set_corosync_member(!absent);
  }
  return reply;
}

TEST(CliHostTableTest, MembershipColumnsAndThePartitionsQuorumWhenShadowdFollowsCorosync) {
  std::vector<std::string> lines = Lines(FormatHostTable(SampleHostsWithMembership(true, true)));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_THAT(Cells(lines[0]), ElementsAre("Name", "Zone", "State", "Cost/h", "CPUs", "Memory", "Used", "Reserved",
                                           "Shadows", "Member", "Last seen"));
  EXPECT_THAT(Cells(lines[3]), ElementsAre("h2", "zone-b", "down", "1.5", "8", "16 GiB", "3 vCPU, 4 GiB",
                                           "2 vCPU, 1 GiB", "1", "member", "0.3 s ago"));
  EXPECT_THAT(Cells(lines[4]),
              ElementsAre("h3", "zone-b", "draining", "0", "0", "0 KiB", "-", "-", "0", "absent 12.0 s", "12.4 s ago"));
  EXPECT_EQ(lines[5], "Partition: quorate (ring 16)");
  EXPECT_EQ(lines[6], "Fenced here: none");

  lines = Lines(FormatHostTable(SampleHostsWithMembership(true, false)));
  EXPECT_EQ(lines[5], "Partition: NOT quorate (ring 16)");
  lines = Lines(FormatHostTable(SampleHostsWithMembership(false, false)));
  EXPECT_EQ(lines[5], "Partition: unknown (this host's Corosync does not answer)");
  EXPECT_EQ(Cells(lines[3])[9], "unknown") << "no host is called a member while nothing is known";
}

TEST(CliHostTableTest, AHostWhoseShadowdStoppedIsMarkedBecauseItCannotFenceItself) {
  v1::ListHostsReply reply = SampleHostsWithMembership(true, true);
  reply.mutable_hosts(2)->set_shadowd_stopped(true);
  std::vector<std::string> lines = Lines(FormatHostTable(reply));
  EXPECT_EQ(Cells(lines[4])[9], "absent 12.0 s (shadowd stopped: no self-fence)");
  EXPECT_EQ(Cells(lines[3])[9], "member");
  json hosts = json::parse(DumpJson(HostsToJson(reply)));
  EXPECT_EQ(hosts["hosts"][2]["membership"]["shadowd_stopped"], true);
  EXPECT_EQ(hosts["hosts"][1]["membership"]["shadowd_stopped"], false);
}

TEST(CliHostTableTest, WithoutTheClusterViewTheStateIsUnknownAndTheReasonIsShown) {
  v1::ListHostsReply reply = SampleHostsWithMembership(true, true);
  reply.set_capacity_unavailable("shadowd's loop did not answer within 2 s");
  std::vector<std::string> lines = Lines(FormatHostTable(reply));
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(Cells(lines[2])[2], "?");
  EXPECT_EQ(Cells(lines[4])[2], "?") << "not 'draining' either: nothing of the view is shown";
  EXPECT_EQ(Cells(lines[4])[9], "absent 12.0 s") << "the membership does not need the view";
  EXPECT_EQ(lines[7], "State and capacity: unknown, shadowd's loop did not answer within 2 s");
  json hosts = json::parse(DumpJson(HostsToJson(reply)));
  EXPECT_EQ(hosts["capacity_unavailable"], "shadowd's loop did not answer within 2 s");
}

TEST(CliJsonTest, HostsCarryMembershipOnlyWhenShadowdFollowsCorosync) {
  json plain = json::parse(DumpJson(HostsToJson(SampleHosts())));
  EXPECT_FALSE(plain.contains("membership"));
  EXPECT_FALSE(plain["hosts"][0].contains("membership"));
  json hosts = json::parse(DumpJson(HostsToJson(SampleHostsWithMembership(true, false))));
  EXPECT_EQ(hosts["membership"]["quorate"], false);
  EXPECT_EQ(hosts["membership"]["known"], true);
  EXPECT_EQ(hosts["membership"]["ring_id"], 16);
  EXPECT_EQ(hosts["hosts"][2]["membership"]["state"], "absent");
  EXPECT_EQ(hosts["hosts"][2]["membership"]["since_ago_ms"], 12000);
  EXPECT_EQ(hosts["hosts"][1]["membership"]["last_seen_unix_ms"], 1800000000000);
  EXPECT_EQ(hosts["hosts"][1]["membership"]["corosync_member"], true);
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

v1::FenceRecord SampleFence(v1::FenceRecord::State state) {
  v1::FenceRecord fence;
  fence.set_vm_uuid("11111111-2222-3333-4444-555555555555");
  fence.set_vm_name("web-1");
  fence.set_state(state);
  fence.set_action(v1::FenceRecord::FENCE_ACTION_PAUSE);
  fence.set_acted(true);
  fence.set_fenced_unix_ms(1'800'000'000'000);
  fence.set_fence_latency_ms(41);
  fence.set_why("host h1 lost quorum (its partition: h1) while the VM's shadow host h2 is outside it");
  fence.add_shadow_hosts("h2");
  return fence;
}

TEST(CliHostTableTest, ThisHostsFencedVmsAreListedUnderThePartition) {
  v1::ListHostsReply reply = SampleHostsWithMembership(true, false);
  *reply.add_fenced() = SampleFence(v1::FenceRecord::FENCE_STATE_FENCED);
  v1::FenceRecord promoted = SampleFence(v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  promoted.set_vm_name("db");
  promoted.set_promoted_host("h3");
  *reply.add_fenced() = promoted;
  std::vector<std::string> lines = Lines(FormatHostTable(reply));
  EXPECT_EQ(lines[6], "Fenced here: 2 VMs: web-1, db (promoted on h3)");
  json hosts = json::parse(DumpJson(HostsToJson(reply)));
  ASSERT_EQ(hosts["fenced"].size(), 2u);
  EXPECT_EQ(hosts["fenced"][0]["state"], "fenced");
  EXPECT_EQ(hosts["fenced"][1]["state"], "promoted_elsewhere");
  EXPECT_EQ(hosts["fenced"][1]["promoted_host"], "h3");
  reply.set_fence_records_unavailable(true);
  EXPECT_THAT(FormatHostTable(reply), HasSubstr("Fenced here: unknown"));
}

TEST(CliVmDetailTest, AFencedVmSaysWhatWasDoneWhenAndWhy) {
  v1::VmStatus vm = ProtectedVm();
  *vm.mutable_fence() = SampleFence(v1::FenceRecord::FENCE_STATE_FENCED);
  vm.mutable_fence()->set_detail("stays fenced: its shadow host could not be asked: h2 (unavailable)");
  std::string text = FormatVmDetail(vm);
  EXPECT_THAT(text, HasSubstr("FENCED: paused at 2027-01-15 08:00:00 UTC (41 ms after the quorum loss)"));
  EXPECT_THAT(text, HasSubstr("Fenced because:"));
  EXPECT_THAT(text, HasSubstr("lost quorum"));
  EXPECT_THAT(text, HasSubstr("could not be asked"));
  vm.mutable_fence()->set_state(v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  vm.mutable_fence()->set_promoted_host("h2");
  vm.mutable_fence()->set_promoted_unix_ms(1'800'000'009'000);
  EXPECT_THAT(FormatVmDetail(vm), HasSubstr("FENCED for good: promoted on h2 at 2027-01-15 08:00:09 UTC"));
  json parsed = json::parse(DumpJson(VmToJson(vm)));
  EXPECT_EQ(parsed["fence"]["state"], "promoted_elsewhere");
  EXPECT_EQ(parsed["fence"]["fence_latency_ms"], 41);
  EXPECT_TRUE(json::parse(DumpJson(VmToJson(ProtectedVm())))["fence"].is_null());
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
  ASSERT_EQ(hosts["hosts"].size(), 3u);
  EXPECT_EQ(hosts["hosts"][2]["draining"], true);
  const json& h2 = hosts["hosts"][1];
  EXPECT_EQ(h2["draining"], false);
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

constexpr std::int64_t kRequested = 1714564984000;  // 2024-05-01 12:03:04 UTC

// web-1 moved h1 -> h2 by the fast path, 8.3 s after the request and 21.7 s before its deadline.
v1::SwitchoverRecord DoneRecord() {
  v1::SwitchoverRecord record;
  record.set_vm_uuid("11111111-2222-3333-4444-555555555555");
  record.set_vm_name("web-1");
  record.set_source_host("h1");
  record.set_target_host("h2");
  record.set_phase(v1::SWITCHOVER_PHASE_DONE);
  record.set_reason("cli");
  record.set_requested_unix_ms(kRequested);
  record.set_deadline_unix_ms(kRequested + 30'000);
  record.set_running_on_target_unix_ms(kRequested + 8'300);
  record.set_source_free_unix_ms(kRequested + 8'600);
  record.set_finished_unix_ms(kRequested + 9'000);
  record.set_final_round_bytes(12 * 1024 * 1024);
  record.set_migrated_disk_bytes(3 * 1024 * 1024 / 2);
  record.set_migrated_memory_bytes(std::uint64_t{1} << 30);
  record.set_downtime_ms(45);
  return record;
}

// db-1's check failed, the fallback migration failed too, 2.5 s after its deadline; it never left h1.
v1::SwitchoverRecord FailedRecord() {
  v1::SwitchoverRecord record;
  record.set_vm_name("db-1");
  record.set_source_host("h1");
  record.set_target_host("h3");
  record.set_phase(v1::SWITCHOVER_PHASE_FAILED);
  record.set_reason("drain");
  record.set_requested_unix_ms(kRequested);
  record.set_deadline_unix_ms(kRequested + 60'000);
  record.set_finished_unix_ms(kRequested + 62'500);
  record.set_fallback(true);
  record.set_check_result("replica of vda is 3 rounds behind");
  record.set_error("migrating: operation failed: job 'migration out' was cancelled");
  return record;
}

// The value after "Label:" in detail text, or "" when the label is missing.
std::string Field(const std::string& text, const std::string& label) {
  for (const std::string& line : Lines(text)) {
    if (line.starts_with(label + ":")) {
      const std::size_t value = line.find_first_not_of(' ', label.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

TEST(CliSwitchoverTest, DoneRecordShowsTheOutcomeAndTheFigures) {
  v1::SwitchoverReply reply;
  *reply.mutable_record() = DoneRecord();
  const std::string text = FormatSwitchover(reply);
  EXPECT_EQ(Field(text, "Domain"), "web-1 (11111111-2222-3333-4444-555555555555)");
  EXPECT_EQ(Field(text, "Phase"), "Done");
  EXPECT_EQ(Field(text, "Source host"), "h1");
  EXPECT_EQ(Field(text, "Target host"), "h2");
  EXPECT_EQ(Field(text, "Reason"), "cli");
  EXPECT_EQ(Field(text, "Fallback"), "no");
  EXPECT_EQ(Field(text, "Health check"), "-");
  EXPECT_EQ(Field(text, "Final round"), "12 MiB");
  EXPECT_EQ(Field(text, "Migrated disk"), "1.5 MiB");
  EXPECT_EQ(Field(text, "Migrated memory"), "1 GiB");
  EXPECT_EQ(Field(text, "Downtime"), "45 ms");
  EXPECT_EQ(Field(text, "Running on target"), "8.3 s after the request");
  EXPECT_EQ(Field(text, "Source host free"), "8.6 s after the request (the VM needs nothing of h1 from then on)");
  EXPECT_EQ(Field(text, "Deadline"), "21.7 s left (2024-05-01 12:03:34 UTC)");
  EXPECT_EQ(Field(text, "Error"), "-");
}

TEST(CliSwitchoverTest, FailedRecordShowsWhyTheFallbackAndTheError) {
  v1::SwitchoverReply reply;
  *reply.mutable_record() = FailedRecord();
  const std::string text = FormatSwitchover(reply);
  EXPECT_EQ(Field(text, "Phase"), "Failed");
  EXPECT_EQ(Field(text, "Fallback"), "yes (--copy-storage-all)");
  EXPECT_EQ(Field(text, "Health check"), "replica of vda is 3 rounds behind");
  EXPECT_EQ(Field(text, "Downtime"), "-");
  EXPECT_EQ(Field(text, "Running on target"), "- (it never ran there)");
  EXPECT_EQ(Field(text, "Source host free"), "- (the migration has not ended)");
  EXPECT_EQ(Field(text, "Deadline"), "missed by 2.5 s (2024-05-01 12:04:04 UTC)");
  EXPECT_EQ(Field(text, "Error"), "migrating: operation failed: job 'migration out' was cancelled");
}

TEST(CliSwitchoverTest, NoDeadlineAndHostileTextStayOnTheirLines) {
  v1::SwitchoverReply reply;
  *reply.mutable_record() = DoneRecord();
  reply.mutable_record()->set_deadline_unix_ms(0);
  reply.mutable_record()->set_error("line one\nFake: field");
  const std::string text = FormatSwitchover(reply);
  EXPECT_EQ(Field(text, "Deadline"), "- (none)");
  EXPECT_EQ(Field(text, "Error"), "line one?Fake: field");
  EXPECT_EQ(Field(text, "Fake"), "");
}

TEST(CliSwitchoverTest, FailbackShowsTheOriginFirst) {
  v1::FailbackReply reply;
  reply.set_origin_host("h1");
  *reply.mutable_record() = DoneRecord();
  reply.mutable_record()->set_reason("failback");
  const std::string text = FormatFailback(reply);
  EXPECT_THAT(Lines(text).front(), StartsWith("Origin host:"));
  EXPECT_EQ(Field(text, "Origin host"), "h1");
  EXPECT_EQ(Field(text, "Reason"), "failback");
  EXPECT_EQ(Field(text, "Phase"), "Done");
}

TEST(CliDrainTest, OneLinePerRecordThenTheSkippedVms) {
  v1::DrainReply reply;
  v1::SwitchoverRecord fallback_done = DoneRecord();
  fallback_done.set_fallback(true);
  fallback_done.set_check_result("postcopy unavailable on h2");
  *reply.add_records() = fallback_done;
  *reply.add_records() = FailedRecord();
  reply.add_skipped("batch-7: no shadow (Unprotected)");
  reply.add_skipped("evil\nname: shut off");
  const std::string text = FormatDrain(reply);
  std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), 10u) << text;
  EXPECT_EQ(Field(text, "Drain"), "1 moved, 1 failed, 2 skipped");
  EXPECT_THAT(Cells(lines[2]), ElementsAre("VM", "Target", "Phase", "Fallback", "Downtime", "On target after",
                                           "Deadline", "Note"));
  EXPECT_THAT(Cells(lines[4]), ElementsAre("web-1", "h2", "Done", "yes", "45 ms", "8.3 s", "21.7 s left",
                                           "postcopy unavailable on h2"));
  EXPECT_THAT(Cells(lines[5]), ElementsAre("db-1", "h3", "Failed", "yes", "-", "-", "missed by 2.5 s",
                                           "migrating: operation failed: job 'migration out' was canc..."));
  EXPECT_EQ(lines[6], "");
  EXPECT_EQ(lines[7], "Skipped:");
  EXPECT_EQ(lines[8], "  batch-7: no shadow (Unprotected)");
  EXPECT_EQ(lines[9], "  evil?name: shut off");
}

TEST(CliDrainTest, NothingToMoveIsAnEmptyTableWithoutSkippedSection) {
  const std::string text = FormatDrain(v1::DrainReply());
  EXPECT_EQ(Field(text, "Drain"), "0 moved, 0 failed, 0 skipped");
  EXPECT_THAT(text, Not(HasSubstr("Skipped")));
  EXPECT_EQ(Lines(text).size(), 4u);
}

TEST(CliDrainTest, UndrainSaysWhetherTheHostWasDraining) {
  v1::UndrainReply reply;
  reply.set_was_draining(true);
  EXPECT_EQ(FormatUndrain(reply, "h1"), "Host 'h1' was draining: new shadows may be placed on it again\n");
  reply.set_was_draining(false);
  EXPECT_EQ(FormatUndrain(reply, "h1"), "Host 'h1' was not draining; nothing changed\n");
  reply.set_was_draining(true);
  reply.set_warm_ups_cancelled(2);
  EXPECT_EQ(FormatUndrain(reply, "h1"),
            "Host 'h1' was draining: new shadows may be placed on it again\n"
            "2 warm-up migration(s) held in precopy were cancelled; those VMs stay on this host\n");
}

TEST(CliSwitchoverListTest, DrainStateThenOneLinePerRecord) {
  v1::ListSwitchoversReply reply;
  reply.mutable_host()->set_draining(true);
  reply.mutable_host()->set_drain_reason("notice gce preemption");
  reply.mutable_host()->set_drain_deadline_unix_ms(kRequested + 30'000);
  *reply.add_records() = DoneRecord();
  v1::SwitchoverRecord running = FailedRecord();
  running.set_phase(v1::SWITCHOVER_PHASE_FINAL_ROUND);
  running.set_finished_unix_ms(0);
  running.clear_error();
  *reply.add_records() = running;
  const std::string text = FormatSwitchoverList(reply);
  std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), 6u) << text;
  EXPECT_EQ(Field(text, "Draining"), "yes: notice gce preemption, deadline 2024-05-01 12:03:34 UTC");
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre("VM", "Target", "Phase", "Reason", "Requested", "Source free", "Duration", "Downtime",
                          "Error"));
  EXPECT_THAT(Cells(lines[4]),
              ElementsAre("web-1", "h2", "Done", "cli", "2024-05-01 12:03:04 UTC", "8.6 s", "9.0 s", "45 ms", "-"));
  EXPECT_THAT(Cells(lines[5]),
              ElementsAre("db-1", "h3", "FinalRound", "drain", "2024-05-01 12:03:04 UTC", "-", "-", "-", "-"));

  EXPECT_EQ(Field(FormatSwitchoverList(v1::ListSwitchoversReply()), "Draining"), "no");
}

TEST(CliSwitchoverTest, APhaseFromANewerShadowdIsShownByNumber) {
  v1::SwitchoverReply reply;
  reply.mutable_record()->set_vm_name("vm1");
  reply.mutable_record()->set_phase(static_cast<v1::SwitchoverPhase>(99));
  EXPECT_NE(FormatSwitchover(reply).find("SwitchoverPhase(99)"), std::string::npos) << FormatSwitchover(reply);
}

TEST(CliSwitchoverTest, UnixMillisAreUtcAndZeroIsUnset) {
  EXPECT_EQ(FormatUnixMillis(kRequested + 999), "2024-05-01 12:03:04 UTC");
  EXPECT_EQ(FormatUnixMillis(0), "-");
  EXPECT_EQ(FormatUnixMillis(-5), "-");
}

TEST(CliJsonTest, SwitchoverRepliesAreProtobufsJsonWithEveryField) {
  v1::DrainReply drain;
  *drain.add_records() = DoneRecord();
  *drain.add_records() = FailedRecord();
  drain.add_skipped("batch-7: no shadow");
  json parsed = json::parse(DumpJson(ProtoToJson(drain)));
  ASSERT_EQ(parsed["records"].size(), 2u);
  const json& done = parsed["records"][0];
  EXPECT_EQ(done["vm_name"], "web-1");
  EXPECT_EQ(done["phase"], "SWITCHOVER_PHASE_DONE");
  EXPECT_EQ(done["downtime_ms"], "45");  // proto3 JSON: 64-bit integers are strings
  EXPECT_EQ(done["fallback"], false);    // present although false
  EXPECT_EQ(done["error"], "");
  EXPECT_EQ(done["disks"], json::array());
  for (const char* key : {"vm_uuid", "source_host", "target_host", "reason", "deadline_unix_ms", "requested_unix_ms",
                          "finished_unix_ms", "check_result", "final_round_bytes", "migrated_disk_bytes",
                          "migrated_memory_bytes", "running_on_target_unix_ms", "precopy_planned_ms", "version",
                          "warm"}) {
    EXPECT_TRUE(done.contains(key)) << key;
  }
  EXPECT_EQ(parsed["records"][1]["check_result"], "replica of vda is 3 rounds behind");
  EXPECT_EQ(parsed["skipped"], json::array({"batch-7: no shadow"}));

  v1::ListSwitchoversReply list;
  json empty = ProtoToJson(list);
  EXPECT_EQ(empty["records"], json::array());
  EXPECT_FALSE(empty.contains("host"));  // an unset message field is left out, as protobuf prints it
  EXPECT_EQ(ProtoToJson(v1::UndrainReply())["was_draining"], false);
}

}  // namespace
}  // namespace vs::cli
