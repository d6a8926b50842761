#include "cli/output.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string_view>

#include <google/protobuf/util/json_util.h>

#include "shadowd/switchover/switchover_machine.h"

namespace vs::cli {
namespace {

namespace v1 = virtshadow::v1;
using nlohmann::json;

constexpr std::size_t kMaxNoteBytes = 60;

std::string Printable(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return result;
}

std::string OrDash(std::string_view text) { return text.empty() ? "-" : Printable(text); }

// Cuts at a UTF-8 character boundary, so that no character is split.
std::string Shorten(std::string text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

std::string YesNo(bool value) { return value ? "yes" : "no"; }

std::string VcpusAndMemory(std::uint32_t vcpus, std::uint64_t memory_kib) {
  if (vcpus == 0 && memory_kib == 0) return "-";
  return std::to_string(vcpus) + " vCPU, " + FormatKiB(memory_kib);
}

std::string ShadowHosts(const v1::VmStatus& vm) {
  std::string hosts;
  for (const v1::ShadowInfo& shadow : vm.shadows()) hosts += (hosts.empty() ? "" : ",") + Printable(shadow.host());
  return hosts.empty() ? "-" : hosts;
}

std::string Note(const v1::VmStatus& vm) {
  return Shorten(OrDash(vm.last_error().empty() ? vm.unprotected_reason() : vm.last_error()), kMaxNoteBytes);
}

std::string Decimal(double value) {
  std::array<char, 64> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buffer.data(), end) : std::to_string(value);
}

// "Label:" padded so that every value starts in the same column, virsh dominfo style; an empty label
// continues the field above.
void AddField(std::string& text, std::string_view label, std::string_view value) {
  constexpr std::size_t kValueColumn = 20;
  std::string left = label.empty() ? "" : std::string(label) + ":";
  text += left + std::string(left.size() < kValueColumn ? kValueColumn - left.size() : 1, ' ') + std::string(value) +
          "\n";
}

json Strings(const google::protobuf::RepeatedPtrField<std::string>& values) {
  json array = json::array();
  for (const std::string& value : values) array.push_back(value);
  return array;
}

}  // namespace

std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  if (header.empty()) return "";
  std::vector<std::size_t> widths(header.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  widen(header);
  for (const auto& row : rows) widen(row);
  auto line = [&](const std::vector<std::string>& row) {
    std::string text = " ";
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      text += cell;
      if (i + 1 < widths.size()) text += std::string(widths[i] - cell.size() + 3, ' ');
    }
    text.erase(text.find_last_not_of(' ') + 1);
    return text + "\n";
  };
  std::size_t rule = 1 + 3 * (widths.size() - 1);  // the leading space and the gaps between columns
  for (std::size_t width : widths) rule += width;
  std::string text = line(header) + std::string(rule, '-') + "\n";
  for (const auto& row : rows) text += line(row);
  return text;
}

std::string FormatKiB(std::uint64_t kib) {
  constexpr std::array<std::string_view, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  std::uint64_t scale = 1;
  while (unit + 1 < kUnits.size() && kib / scale >= 1024) {
    scale *= 1024;
    ++unit;
  }
  const std::uint64_t whole = kib / scale;
  const std::uint64_t tenths = (kib % scale) * 10 / scale;  // rounded down: never shows more than there is
  std::string text = std::to_string(whole);
  if (tenths != 0) text += "." + std::to_string(tenths);
  return text + " " + std::string(kUnits[unit]);
}

std::string FormatVmTable(const v1::ListVmsReply& reply) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::VmStatus& vm : reply.vms()) {
    rows.push_back({Printable(vm.name()), OrDash(vm.state()), ShadowHosts(vm),
                    VcpusAndMemory(vm.shadow_vcpus(), vm.shadow_memory_kib()), Note(vm)});
  }
  return RenderTable({"Name", "State", "Shadow host(s)", "Shadow size", "Note"}, rows);
}

std::string FormatBytes(std::uint64_t bytes) {
  return bytes < 1024 ? std::to_string(bytes) + " B" : FormatKiB(bytes / 1024);
}

namespace {

std::string ModeName(v1::RoundMode mode) {
  switch (mode) {
    case v1::ROUND_MODE_FULL: return "full";
    case v1::ROUND_MODE_INCREMENTAL: return "incremental";
    case v1::ROUND_MODE_RESYNC: return "resync";
    default: return "-";
  }
}

std::string Seconds(std::int64_t ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", ms / 1000.0);
  return text;
}

std::string DescribeRound(const v1::AppliedRound& round) {
  return ModeName(round.mode()) + ", " + FormatBytes(round.bytes_sent()) + " sent for " +
         FormatBytes(round.changed_bytes()) + " changed, " + std::to_string(round.duration_ms()) + " ms";
}

// Where the VM stands in its host's round queue: running, waiting for a free runner, or due later.
std::string DescribeQueuePlace(const v1::ReplicationInfo& r) {
  if (r.round_running()) return "running now";
  if (r.queue_position() > 0) {
    return "overdue by " + Seconds(-r.next_round_in_ms()) + ", waiting for a free runner (number " +
           std::to_string(r.queue_position()) + (r.queue_position() == 1 ? ", next" : " in line") + ")";
  }
  if (r.next_round_in_ms() <= 0) return "due now";
  return "in " + Seconds(r.next_round_in_ms());
}

json RoundToJson(const v1::AppliedRound& round) {
  return {{"checkpoint", round.checkpoint()},     {"taken_unix_ms", round.taken_unix_ms()},
          {"applied_unix_ms", round.applied_unix_ms()}, {"mode", ModeName(round.mode())},
          {"bytes_sent", round.bytes_sent()},     {"bytes_zeroed", round.bytes_zeroed()},
          {"changed_bytes", round.changed_bytes()}, {"duration_ms", round.duration_ms()},
          {"digest", round.digest()},
          {"steps",
           {{"plan_ms", round.steps().plan_ms()},
            {"freeze_ms", round.steps().freeze_ms()},
            {"connect_ms", round.steps().connect_ms()},
            {"copy_ms", round.steps().copy_ms()},
            {"shadow_open_ms", round.steps().shadow_open_ms()},
            {"shadow_transfer_ms", round.steps().shadow_transfer_ms()},
            {"shadow_read_back_ms", round.steps().shadow_read_back_ms()},
            {"verify_ms", round.steps().verify_ms()},
            {"commit_ms", round.steps().commit_ms()},
            {"end_ms", round.steps().end_ms()}}}};
}

// The VM's self-fence on this host, one line: what was done, when, and where it stands.
std::string FenceLine(const v1::FenceRecord& fence) {
  const std::string action = fence.action() == v1::FenceRecord::FENCE_ACTION_DESTROY ? "destroyed" : "paused";
  const std::string when = FormatUnixMillis(fence.fenced_unix_ms());
  const std::string done = fence.acted() ? action + " at " + when +
                                               (fence.fence_latency_ms() > 0 ? " (" + std::to_string(
                                                   fence.fence_latency_ms()) + " ms after the quorum loss)" : "")
                                         : "to be " + action + " (since " + when + ")";
  switch (fence.state()) {
    case v1::FenceRecord::FENCE_STATE_FENCED: return "FENCED: " + done;
    case v1::FenceRecord::FENCE_STATE_RELEASING: return "FENCED, being released: " + done;
    case v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE:
      return "FENCED for good: promoted on " + Printable(fence.promoted_host()) + " at " +
             FormatUnixMillis(fence.promoted_unix_ms()) + "; this copy was " + action + " at " + when +
             " and must not run here";
    case v1::FenceRecord::FENCE_STATE_RELEASED:
      return "released at " + FormatUnixMillis(fence.released_unix_ms()) + " (was " + action + " at " + when + ")";
    default: return "-";
  }
}

json FenceToJson(const v1::FenceRecord& fence) {
  static const char* const kStates[] = {"none", "fenced", "releasing", "released", "promoted_elsewhere"};
  const int state = static_cast<int>(fence.state());
  return {{"vm", fence.vm_name()},
          {"uuid", fence.vm_uuid()},
          {"state", state >= 0 && state <= 4 ? kStates[state] : "unknown"},
          {"action", fence.action() == v1::FenceRecord::FENCE_ACTION_DESTROY ? "destroy" : "pause"},
          {"acted", fence.acted()},
          {"fenced_unix_ms", fence.fenced_unix_ms()},
          {"fence_latency_ms", fence.fence_latency_ms()},
          {"why", fence.why()},
          {"detail", fence.detail()},
          {"shadow_hosts", Strings(fence.shadow_hosts())},
          {"promoted_host", fence.promoted_host()},
          {"promoted_unix_ms", fence.promoted_unix_ms()},
          {"released_unix_ms", fence.released_unix_ms()},
          {"last_error", fence.last_error()}};
}

}  // namespace

namespace {

// "promoted from h1 at 2026-12-05 10:40:12 UTC, RPO 3.2 s" (+ the phase while it is under way).
std::string PromotionLine(const v1::PromotionRecord& p) {
  std::string line = "promoted from " + OrDash(p.primary_host()) + " at " + FormatUnixMillis(p.decided_unix_ms());
  if (!p.checkpoint().empty()) {
    line += ", RPO " + Seconds(p.rpo_ms()) + (p.rpo_within_bound() ? "" : " (over its bound of " +
                                                                           Seconds(p.rpo_bound_ms()) + ")");
  }
  switch (p.phase()) {
    case v1::PROMOTION_PHASE_DONE: break;
    case v1::PROMOTION_PHASE_FAILED: line += "; FAILED, nothing was defined"; break;
    default: line += "; under way"; break;
  }
  return line;
}

// "from h1 by a promotion at T (why)": where `failback` returns the VM.
std::string OriginLine(const v1::OriginRecord& origin) {
  return "from " + Printable(origin.origin_host()) + " by a " +
         (origin.arrived_by() == v1::OriginRecord::ARRIVAL_PROMOTION ? "promotion" : "switchover") + " at " +
         FormatUnixMillis(origin.arrived_unix_ms()) + (origin.why().empty() ? "" : " (" + Printable(origin.why()) + ")");
}

json OriginToJson(const v1::OriginRecord& origin) {
  if (origin.vm_uuid().empty()) return nullptr;
  return {{"origin_host", origin.origin_host()},
          {"arrived_by", v1::OriginRecord::Arrival_Name(origin.arrived_by())},
          {"arrived_unix_ms", origin.arrived_unix_ms()},
          {"why", origin.why()}};
}

json PromotionToJson(const v1::PromotionRecord& p) {
  if (p.vm_uuid().empty()) return nullptr;
  return {{"primary_host", p.primary_host()},
          {"phase", v1::PromotionPhase_Name(p.phase())},
          {"reason", p.reason()},
          {"operator_forced", p.operator_forced()},
          {"decided_unix_ms", p.decided_unix_ms()},
          {"started_unix_ms", p.started_unix_ms()},
          {"checkpoint", p.checkpoint()},
          {"checkpoint_unix_ms", p.checkpoint_unix_ms()},
          {"primary_last_seen_unix_ms", p.primary_last_seen_unix_ms()},
          {"primary_absent_since_unix_ms", p.primary_absent_since_unix_ms()},
          {"rpo_ms", p.rpo_ms()},
          {"rpo_bound_ms", p.rpo_bound_ms()},
          {"rpo_within_bound", p.rpo_within_bound()},
          {"grown_vcpus", p.grown_vcpus()},
          {"grown_memory_kib", p.grown_memory_kib()},
          {"full_vcpus", p.full_vcpus()},
          {"full_memory_kib", p.full_memory_kib()},
          {"shortfall", p.shortfall()},
          {"error", p.error()}};
}

}  // namespace

std::string FormatVmDetail(const v1::VmStatus& vm) {
  std::string text;
  AddField(text, "Name", OrDash(vm.name()));
  AddField(text, "UUID", OrDash(vm.uuid()));
  AddField(text, "State", OrDash(vm.state()));
  AddField(text, "Running", YesNo(vm.running()));
  AddField(text, "Primary host", OrDash(vm.primary_host()));
  if (vm.shadows().empty()) AddField(text, "Shadows", "-");
  for (int i = 0; i < vm.shadows_size(); ++i) {
    const v1::ShadowInfo& shadow = vm.shadows(i);
    AddField(text, i == 0 ? "Shadows" : "",
             OrDash(shadow.host()) + ": " + OrDash(shadow.name()) + " (" + OrDash(shadow.uuid()) + ")");
  }
  AddField(text, "Shadow size", VcpusAndMemory(vm.shadow_vcpus(), vm.shadow_memory_kib()));
  if (vm.has_nova()) {
    const v1::NovaInstance& nova = vm.nova();
    AddField(text, "Nova instance", OrDash(nova.instance_id()) + " '" + Printable(nova.name()) + "', flavor " +
                                        OrDash(Printable(nova.flavor())));
    AddField(text, "Nova project", OrDash(Printable(nova.project_name())) + " (" + OrDash(nova.project_id()) + ")");
  }
  AddField(text, "Policy", vm.policy().empty() ? "- (no valid policy)" : Printable(vm.policy()));
  if (!vm.policy_source().empty()) AddField(text, "Policy from", Printable(vm.policy_source()));
  AddField(text, "Last error", OrDash(vm.last_error()));
  AddField(text, "Unprotected reason", OrDash(vm.unprotected_reason()));
  if (!vm.guest_failed().empty()) AddField(text, "Guest", "FAILED after its switchover: " + Printable(vm.guest_failed()));
  if (vm.has_origin()) AddField(text, "Arrived", OriginLine(vm.origin()));
  if (vm.has_fence()) {
    AddField(text, "Fence", FenceLine(vm.fence()));
    AddField(text, "Fenced because", OrDash(Printable(vm.fence().why())));
    if (!vm.fence().detail().empty()) AddField(text, "Fence detail", Printable(vm.fence().detail()));
    if (!vm.fence().last_error().empty()) AddField(text, "Fence error", Printable(vm.fence().last_error()));
  }
  if (vm.has_promotion()) {
    const v1::PromotionRecord& p = vm.promotion();
    AddField(text, "Promotion", PromotionLine(p));
    AddField(text, "Promotion reason", OrDash(Printable(p.reason())) + (p.operator_forced() ? " (forced)" : ""));
    if (!p.checkpoint().empty()) {
      AddField(text, "Recovered to", Printable(p.checkpoint()) + ", taken " + FormatUnixMillis(p.checkpoint_unix_ms()) +
                                         "; host last seen " + FormatUnixMillis(p.primary_last_seen_unix_ms()));
    }
    if (p.phase() == v1::PROMOTION_PHASE_DONE) {
      AddField(text, "Grown to", VcpusAndMemory(p.grown_vcpus(), p.grown_memory_kib()) + " of " +
                                     VcpusAndMemory(p.full_vcpus(), p.full_memory_kib()));
    }
    if (!p.shortfall().empty()) AddField(text, "Not restored", Printable(p.shortfall()));
    if (!p.error().empty()) AddField(text, "Promotion error", Printable(p.error()));
  }
  if (vm.has_replication()) {
    const v1::ReplicationInfo& r = vm.replication();
    AddField(text, "Replication", r.interval_ms() > 0 ? "every " + Seconds(r.interval_ms()) : "not scheduled");
    AddField(text, "Checkpoint", r.lag_ms() < 0 ? "- (no round applied yet)"
                                                : OrDash(Printable(r.last_round().checkpoint())) + ", " +
                                                      Seconds(r.lag_ms()) + " ago");
    if (r.lag_ms() >= 0) AddField(text, "Last round", DescribeRound(r.last_round()));
    if (r.interval_ms() > 0) AddField(text, "Next round", DescribeQueuePlace(r));
    AddField(text, "Rounds", std::to_string(r.rounds_applied()) + " applied, " + std::to_string(r.rounds_failed()) +
                                 " failed (" + std::to_string(r.consecutive_failures()) + " in a row)" +
                                 (r.resync_needed() ? ", resync needed" : ""));
    AddField(text, "Replication error", OrDash(Printable(r.last_error())));
  }
  return text;
}

std::string FormatSync(const v1::SyncReply& reply) {
  std::string text;
  AddField(text, "Checkpoint", OrDash(Printable(reply.round().checkpoint())));
  AddField(text, "Round", DescribeRound(reply.round()));
  return text;
}

std::string FormatVerify(const v1::VerifyReply& reply) {
  std::string text;
  AddField(text, "Checkpoint", OrDash(Printable(reply.checkpoint())));
  AddField(text, "Verdict", reply.ok() ? "replica matches the source" : "MISMATCH");
  std::vector<std::vector<std::string>> rows;
  for (const v1::DiskVerifyResult& disk : reply.disks()) {
    rows.push_back({Printable(disk.target()), Printable(disk.replica_path()), std::to_string(disk.blocks_compared()),
                    std::to_string(disk.blocks_changed_since()), std::to_string(disk.blocks_mismatched()),
                    disk.mismatches().empty() ? "-" : Printable(disk.mismatches())});
  }
  return text + "\n" +
         RenderTable({"Disk", "Replica", "Compared", "Changed since", "Mismatched", "Mismatching bytes"}, rows);
}

json SyncToJson(const v1::SyncReply& reply) { return {{"round", RoundToJson(reply.round())}}; }

json VerifyToJson(const v1::VerifyReply& reply) {
  json disks = json::array();
  for (const v1::DiskVerifyResult& disk : reply.disks()) {
    disks.push_back({{"target", disk.target()},
                     {"replica_path", disk.replica_path()},
                     {"blocks_compared", disk.blocks_compared()},
                     {"blocks_changed_since", disk.blocks_changed_since()},
                     {"blocks_mismatched", disk.blocks_mismatched()},
                     {"mismatches", disk.mismatches()}});
  }
  return {{"checkpoint", reply.checkpoint()}, {"ok", reply.ok()}, {"disks", disks}};
}

namespace {
// "member", "absent 12.0 s", "never seen"; "unknown" while this host's Corosync does not answer. A host whose
// shadowd stopped says so: it fences nothing on a cut.
std::string MembershipCell(const v1::HostInfo& host, bool known) {
  if (!known) return "unknown";
  const std::string stopped = host.shadowd_stopped() ? " (shadowd stopped: no self-fence)" : "";
  if (host.membership() == "absent" && host.membership_since_ago_ms() >= 0) {
    return "absent " + Seconds(host.membership_since_ago_ms()) + stopped;
  }
  return OrDash(host.membership()) + stopped;
}
}  // namespace

std::string FormatHostTable(const v1::ListHostsReply& reply) {
  std::vector<std::vector<std::string>> rows;
  const bool membership = reply.membership_enabled();
  for (const v1::HostInfo& host : reply.hosts()) {
    const bool local = !reply.this_host().empty() && host.name() == reply.this_host();
    // A draining host takes no new shadows: placement sees it as down, whatever its health.
    const std::string state = !reply.capacity_unavailable().empty() ? "?"
                              : host.draining()                       ? "draining"
                              : host.up()                             ? "up"
                                                                      : "down";
    rows.push_back({Printable(host.name()) + (local ? " (this host)" : ""), OrDash(host.zone()), state,
                    Decimal(host.cost_per_hour()), std::to_string(host.cpus()), FormatKiB(host.memory_kib()),
                    VcpusAndMemory(host.used_vcpus(), host.used_memory_kib()),
                    VcpusAndMemory(host.reserved_vcpus(), host.reserved_memory_kib()), std::to_string(host.shadows())});
    if (membership) {
      rows.back().push_back(MembershipCell(host, reply.membership_known()));
      rows.back().push_back(host.last_seen_ago_ms() < 0 ? "-" : Seconds(host.last_seen_ago_ms()) + " ago");
    }
  }
  std::vector<std::string> header = {"Name", "Zone", "State", "Cost/h", "CPUs", "Memory", "Used", "Reserved",
                                     "Shadows"};
  const std::string unavailable =
      reply.capacity_unavailable().empty() ? "" : "State and capacity: unknown, " + reply.capacity_unavailable() + "\n";
  // This host's fenced VMs: a VM it paused (or destroyed) when it lost quorum and has not released.
  std::string fenced;
  if (reply.fence_records_unavailable()) {
    fenced = "Fenced here: unknown (shadowd could not read its fence records)\n";
  } else if (membership || reply.fenced_size() > 0) {
    std::string names;
    for (const v1::FenceRecord& fence : reply.fenced()) {
      names += (names.empty() ? "" : ", ") + Printable(fence.vm_name()) +
               (fence.state() == v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE
                    ? " (promoted on " + Printable(fence.promoted_host()) + ")"
                    : "");
    }
    fenced = "Fenced here: " + (names.empty() ? std::string("none") : std::to_string(reply.fenced_size()) + " VM" +
                                                                          (reply.fenced_size() == 1 ? "" : "s") +
                                                                          ": " + names) + "\n";
  }
  if (!membership) return RenderTable(header, rows) + fenced + unavailable;
  header.push_back("Member");
  header.push_back("Last seen");
  const std::string partition =
      !reply.membership_known() ? "unknown (this host's Corosync does not answer)"
      : reply.quorate()         ? "quorate (ring " + std::to_string(reply.ring_id()) + ")"
                                : "NOT quorate (ring " + std::to_string(reply.ring_id()) + ")";
  return RenderTable(header, rows) + "Partition: " + partition + "\n" + fenced + unavailable;
}

std::string FormatExplanation(const v1::ExplainReply& reply) {
  std::string text;
  AddField(text, "Domain", OrDash(reply.vm()));
  AddField(text, "Summary", OrDash(reply.summary()));
  std::string chosen;
  for (const std::string& host : reply.chosen_hosts()) chosen += (chosen.empty() ? "" : ", ") + Printable(host);
  AddField(text, "Chosen", chosen.empty() ? "-" : chosen);
  std::vector<std::vector<std::string>> rows;
  for (const v1::HostVerdict& host : reply.hosts()) {
    rows.push_back({Printable(host.host()), OrDash(host.zone()), OrDash(host.verdict()),
                    host.rank() > 0 ? std::to_string(host.rank()) : "-", OrDash(host.reason())});
  }
  return text + "\n" + RenderTable({"Host", "Zone", "Verdict", "Rank", "Reason"}, rows);
}

namespace {
json ReplicationToJson(const v1::VmStatus& vm) {
  if (!vm.has_replication()) return nullptr;
  const v1::ReplicationInfo& r = vm.replication();
  json recent = json::array();
  for (const v1::AppliedRound& round : r.recent_rounds()) recent.push_back(RoundToJson(round));
  return {{"last_round", RoundToJson(r.last_round())}, {"lag_ms", r.lag_ms()}, {"recent_rounds", recent},
          {"rounds_applied", r.rounds_applied()},     {"rounds_failed", r.rounds_failed()},
          {"consecutive_failures", r.consecutive_failures()}, {"last_error", r.last_error()},
          {"resync_needed", r.resync_needed()},       {"interval_ms", r.interval_ms()},
          {"round_running", r.round_running()},       {"next_round_in_ms", r.next_round_in_ms()},
          {"queue_position", r.queue_position()}};
}
}  // namespace

json VmToJson(const v1::VmStatus& vm) {
  json shadows = json::array();
  for (const v1::ShadowInfo& shadow : vm.shadows()) {
    shadows.push_back({{"host", shadow.host()}, {"name", shadow.name()}, {"uuid", shadow.uuid()}});
  }
  return {{"name", vm.name()},
          {"uuid", vm.uuid()},
          {"state", vm.state()},
          {"running", vm.running()},
          {"primary_host", vm.primary_host()},
          {"shadows", shadows},
          {"shadow_vcpus", vm.shadow_vcpus()},
          {"shadow_memory_kib", vm.shadow_memory_kib()},
          {"policy", vm.policy()},
          {"last_error", vm.last_error()},
          {"unprotected_reason", vm.unprotected_reason()},
          {"policy_source", vm.policy_source()},
          {"nova", vm.has_nova() ? json{{"instance_id", vm.nova().instance_id()},
                                        {"name", vm.nova().name()},
                                        {"project_id", vm.nova().project_id()},
                                        {"project_name", vm.nova().project_name()},
                                        {"flavor", vm.nova().flavor()}}
                                 : json(nullptr)},
          {"guest_failed", vm.guest_failed()},
          {"fence", vm.has_fence() ? FenceToJson(vm.fence()) : json(nullptr)},
          {"promotion", PromotionToJson(vm.promotion())},
          {"origin", OriginToJson(vm.origin())},
          {"replication", ReplicationToJson(vm)}};
}

json VmListToJson(const v1::ListVmsReply& reply) {
  json vms = json::array();
  for (const v1::VmStatus& vm : reply.vms()) vms.push_back(VmToJson(vm));
  return {{"vms", vms}};
}

json HostsToJson(const v1::ListHostsReply& reply) {
  json hosts = json::array();
  for (const v1::HostInfo& host : reply.hosts()) {
    hosts.push_back({{"name", host.name()},
                     {"zone", host.zone()},
                     {"uri", host.uri()},
                     {"cost_per_hour", host.cost_per_hour()},
                     {"up", host.up()},
                     {"draining", host.draining()},
                     {"cpus", host.cpus()},
                     {"memory_kib", host.memory_kib()},
                     {"used_vcpus", host.used_vcpus()},
                     {"used_memory_kib", host.used_memory_kib()},
                     {"reserved_vcpus", host.reserved_vcpus()},
                     {"reserved_memory_kib", host.reserved_memory_kib()},
                     {"shadows", host.shadows()}});
    if (reply.membership_enabled()) {
      hosts.back()["membership"] = {{"state", host.membership()},
                                    {"since_unix_ms", host.membership_since_unix_ms()},
                                    {"since_ago_ms", host.membership_since_ago_ms()},
                                    {"last_seen_unix_ms", host.last_seen_unix_ms()},
                                    {"last_seen_ago_ms", host.last_seen_ago_ms()},
                                    {"corosync_member", host.corosync_member()},
                                    {"shadowd_stopped", host.shadowd_stopped()}};
    }
  }
  json out = {{"this_host", reply.this_host()}, {"hosts", hosts}};
  if (reply.membership_enabled()) {
    out["membership"] = {{"known", reply.membership_known()}, {"quorate", reply.quorate()},
                         {"ring_id", reply.ring_id()}};
  }
  if (!reply.capacity_unavailable().empty()) out["capacity_unavailable"] = reply.capacity_unavailable();
  json fenced = json::array();
  for (const v1::FenceRecord& fence : reply.fenced()) fenced.push_back(FenceToJson(fence));
  out["fenced"] = fenced;
  if (reply.fence_records_unavailable()) out["fence_records_unavailable"] = true;
  return out;
}

json ExplanationToJson(const v1::ExplainReply& reply) {
  json hosts = json::array();
  for (const v1::HostVerdict& host : reply.hosts()) {
    hosts.push_back({{"host", host.host()},
                     {"zone", host.zone()},
                     {"verdict", host.verdict()},
                     {"rank", host.rank()},
                     {"reason", host.reason()}});
  }
  return {{"vm", reply.vm()},
          {"summary", reply.summary()},
          {"chosen_hosts", Strings(reply.chosen_hosts())},
          {"hosts", hosts}};
}

std::string FormatUnixMillis(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  if (gmtime_r(&seconds, &utc) == nullptr) return "-";
  char text[40];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return length == 0 ? "-" : std::string(text, length);
}

namespace {

// How long after the request the guest ran on the target; "-" when it never did.
std::string TimeToTarget(const v1::SwitchoverRecord& record) {
  if (record.running_on_target_unix_ms() <= 0 || record.requested_unix_ms() <= 0) return "-";
  return Seconds(record.running_on_target_unix_ms() - record.requested_unix_ms());
}

// How long after the request the source host was no longer needed (the migration ended); "-" before.
std::string TimeToSourceFree(const v1::SwitchoverRecord& record) {
  if (record.source_free_unix_ms() <= 0 || record.requested_unix_ms() <= 0) return "-";
  return Seconds(record.source_free_unix_ms() - record.requested_unix_ms());
}

// The time to spare before the deadline when the guest ran on the target (or, if it never did, when the
// switchover ended); "-" without a deadline or an end.
std::string DeadlineMargin(const v1::SwitchoverRecord& record) {
  const std::int64_t at =
      record.running_on_target_unix_ms() > 0 ? record.running_on_target_unix_ms() : record.finished_unix_ms();
  if (record.deadline_unix_ms() <= 0 || at <= 0) return "-";
  const std::int64_t left = record.deadline_unix_ms() - at;
  return left >= 0 ? Seconds(left) + " left" : "missed by " + Seconds(-left);
}

std::string Downtime(const v1::SwitchoverRecord& record) {
  return record.downtime_ms() > 0 ? std::to_string(record.downtime_ms()) + " ms" : "-";
}

// For a table line: the error, else why the fallback was taken.
std::string RecordNote(const v1::SwitchoverRecord& record) {
  const std::string& note = !record.error().empty() ? record.error() : record.fallback() ? record.check_result() : "";
  return Shorten(OrDash(note), kMaxNoteBytes);
}

std::string FormatRecord(const v1::SwitchoverRecord& record) {
  std::string text;
  const std::string uuid = record.vm_uuid().empty() ? "" : " (" + Printable(record.vm_uuid()) + ")";
  AddField(text, "Domain", OrDash(record.vm_name()) + uuid);
  AddField(text, "Phase", switchover::PhaseName(record.phase()));
  AddField(text, "Source host", OrDash(record.source_host()));
  AddField(text, "Target host", OrDash(record.target_host()));
  AddField(text, "Reason", OrDash(record.reason()));
  AddField(text, "Fallback", record.fallback() ? "yes (--copy-storage-all)" : "no");
  AddField(text, "Health check", OrDash(record.check_result()));
  AddField(text, "Final round", FormatBytes(record.final_round_bytes()));
  AddField(text, "Migrated disk", FormatBytes(record.migrated_disk_bytes()));
  AddField(text, "Migrated memory", FormatBytes(record.migrated_memory_bytes()));
  AddField(text, "Downtime", Downtime(record));
  if (record.migration_ms() > 0) {
    AddField(text, "Postcopy switch", record.postcopy_switched() ? "yes" : "no (precopy completed before it)");
  }
  AddField(text, "Guest after move", OrDash(record.guest_check()));
  const std::string to_target = TimeToTarget(record);
  AddField(text, "Running on target", to_target == "-" ? "- (it never ran there)" : to_target + " after the request");
  const std::string source_free = TimeToSourceFree(record);
  AddField(text, "Source host free", source_free == "-" ? "- (the migration has not ended)"
                                                         : source_free + " after the request (the VM needs nothing of " +
                                                               OrDash(record.source_host()) + " from then on)");
  AddField(text, "Deadline", record.deadline_unix_ms() <= 0
                                 ? "- (none)"
                                 : DeadlineMargin(record) + " (" + FormatUnixMillis(record.deadline_unix_ms()) + ")");
  AddField(text, "Error", OrDash(record.error()));
  return text;
}

}  // namespace

std::string FormatSwitchover(const v1::SwitchoverReply& reply) { return FormatRecord(reply.record()); }

std::string FormatPromote(const v1::PromoteReply& reply) {
  const v1::PromotionRecord& p = reply.record();
  std::string text;
  AddField(text, "VM", OrDash(p.vm_name()) + " (" + OrDash(p.vm_uuid()) + ")");
  AddField(text, "From host", OrDash(p.primary_host()));
  AddField(text, "Decided", FormatUnixMillis(p.decided_unix_ms()) + (p.operator_forced() ? " (forced)" : ""));
  AddField(text, "Reason", OrDash(Printable(p.reason())));
  AddField(text, "Next", "shadowd starts it here from its replicas and grows it; 'virt-shadow status " +
                             Printable(p.vm_name()) + "' shows the outcome and the RPO");
  return text;
}

std::string FormatFailback(const v1::FailbackReply& reply) {
  std::string text;
  AddField(text, "Origin host", OrDash(reply.origin_host()));
  return text + FormatRecord(reply.record());
}

std::string FormatDrain(const v1::DrainReply& reply) {
  int done = 0, failed = 0;
  std::vector<std::vector<std::string>> rows;
  for (const v1::SwitchoverRecord& record : reply.records()) {
    done += record.phase() == v1::SWITCHOVER_PHASE_DONE;
    failed += record.phase() == v1::SWITCHOVER_PHASE_FAILED;
    rows.push_back({OrDash(record.vm_name()), OrDash(record.target_host()), switchover::PhaseName(record.phase()),
                    YesNo(record.fallback()), Downtime(record), TimeToTarget(record), DeadlineMargin(record),
                    RecordNote(record)});
  }
  std::string text;
  AddField(text, "Drain", std::to_string(done) + " moved, " + std::to_string(failed) + " failed, " +
                              std::to_string(reply.skipped_size()) + " skipped");
  text += "\n" + RenderTable({"VM", "Target", "Phase", "Fallback", "Downtime", "On target after", "Deadline", "Note"},
                             rows);
  if (!reply.skipped().empty()) {
    text += "\nSkipped:\n";
    for (const std::string& skipped : reply.skipped()) text += "  " + Printable(skipped) + "\n";
  }
  return text;
}

std::string FormatUndrain(const v1::UndrainReply& reply, const std::string& host) {
  std::string text = "Host '" + Printable(host) + "' " +
                     (reply.was_draining() ? "was draining: new shadows may be placed on it again\n"
                                           : "was not draining; nothing changed\n");
  if (reply.warm_ups_cancelled() > 0) {
    text += std::to_string(reply.warm_ups_cancelled()) +
            " warm-up migration(s) held in precopy were cancelled; those VMs stay on this host\n";
  }
  return text;
}

std::string FormatSwitchoverList(const v1::ListSwitchoversReply& reply) {
  std::string text;
  const v1::HostStateReply& host = reply.host();
  std::string draining = "no";
  if (host.draining()) {
    draining = "yes: " + OrDash(host.drain_reason()) + ", deadline " +
               (host.drain_deadline_unix_ms() > 0 ? FormatUnixMillis(host.drain_deadline_unix_ms()) : "none");
  }
  AddField(text, "Draining", draining);
  std::vector<std::vector<std::string>> rows;
  for (const v1::SwitchoverRecord& record : reply.records()) {
    const bool finished = record.finished_unix_ms() > 0 && record.requested_unix_ms() > 0;
    rows.push_back({OrDash(record.vm_name()), OrDash(record.target_host()), switchover::PhaseName(record.phase()),
                    Shorten(OrDash(record.reason()), kMaxNoteBytes), FormatUnixMillis(record.requested_unix_ms()),
                    TimeToSourceFree(record), finished ? Seconds(record.finished_unix_ms() - record.requested_unix_ms()) : "-",
                    Downtime(record), Shorten(OrDash(record.error()), kMaxNoteBytes)});
  }
  return text + "\n" +
         RenderTable({"VM", "Target", "Phase", "Reason", "Requested", "Source free", "Duration", "Downtime", "Error"},
                     rows);
}

json ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) return {{"error", "cannot print " + message.GetTypeName() + " as JSON: " + status.ToString()}};
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return {{"error", "protobuf printed " + message.GetTypeName() + " as invalid JSON"}};
  return parsed;
}

std::string DumpJson(const json& value) {
  return value.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace) + "\n";
}

}  // namespace vs::cli
