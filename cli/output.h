// What virt-shadow prints: shadowd's answers as virsh-style tables and text, or as JSON.
//
// JSON keys are the proto field names (snake_case), so scripts can rely on proto/shadowd.proto's
// comments for their meaning; every field is present, also when empty. The switchover commands' JSON
// is protobuf's own JSON printing of the reply (ProtoToJson), so it follows the proto3 JSON mapping:
// enums by name, 64-bit integers as strings. Text output replaces control
// characters in names and messages with '?' (a domain name may contain anything) and shortens the
// list's note column; `status` and --json always show the full text.
//
// Ownership: values. Thread-safety: pure functions. Failure modes: none; invalid UTF-8 in a string
// is replaced with U+FFFD in JSON, so that the output always parses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proto/shadowd.pb.h"

namespace vs::cli {

// Left-aligned columns, virsh style: a leading space, a dashed rule under the header, no trailing spaces.
std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// A size given in KiB in the largest binary unit that keeps it >= 1, with at most one decimal:
// "512 KiB", "1.5 GiB", "8 GiB".
std::string FormatKiB(std::uint64_t kib);

std::string FormatVmTable(const virtshadow::v1::ListVmsReply& reply);   // list
std::string FormatVmDetail(const virtshadow::v1::VmStatus& vm);         // status
std::string FormatHostTable(const virtshadow::v1::ListHostsReply& reply);  // hosts
std::string FormatExplanation(const virtshadow::v1::ExplainReply& reply);  // explain
std::string FormatSync(const virtshadow::v1::SyncReply& reply);            // sync
std::string FormatVerify(const virtshadow::v1::VerifyReply& reply);        // verify
// "1.5 MiB" from bytes, like FormatKiB.
std::string FormatBytes(std::uint64_t bytes);

nlohmann::json VmToJson(const virtshadow::v1::VmStatus& vm);
nlohmann::json VmListToJson(const virtshadow::v1::ListVmsReply& reply);  // {"vms": [...]}
nlohmann::json HostsToJson(const virtshadow::v1::ListHostsReply& reply);  // {"this_host", "hosts": [...]}
nlohmann::json ExplanationToJson(const virtshadow::v1::ExplainReply& reply);
nlohmann::json SyncToJson(const virtshadow::v1::SyncReply& reply);      // {"round": {...}}
nlohmann::json VerifyToJson(const virtshadow::v1::VerifyReply& reply);  // {"checkpoint", "ok", "disks": [...]}

// switchover: the record in detail (phase, hosts, fallback and why, bytes moved, downtime, time to
// running on the target, time left before the deadline, error).
std::string FormatSwitchover(const virtshadow::v1::SwitchoverReply& reply);
std::string FormatPromote(const virtshadow::v1::PromoteReply& reply);  // promote: the decision
std::string FormatFailback(const virtshadow::v1::FailbackReply& reply);  // the origin, then as switchover
// drain: a summary line, one table line per record, then the skipped VMs with why.
std::string FormatDrain(const virtshadow::v1::DrainReply& reply);
std::string FormatUndrain(const virtshadow::v1::UndrainReply& reply, const std::string& host);
// switchovers: whether this host is draining, then one table line per record.
std::string FormatSwitchoverList(const virtshadow::v1::ListSwitchoversReply& reply);
// A Unix time in ms as "2024-05-01 12:03:04 UTC"; "-" for 0 (not set).
std::string FormatUnixMillis(std::int64_t unix_ms);

// protobuf's JSON printer with the proto field names and every field present. It cannot fail for
// shadowd's messages (they hold no Any); should it, the result is {"error": why}.
nlohmann::json ProtoToJson(const google::protobuf::Message& message);

// Indented JSON and a final newline.
std::string DumpJson(const nlohmann::json& value);

}  // namespace vs::cli
