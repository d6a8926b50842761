// What virt-shadow prints: shadowd's answers as virsh-style tables and text, or as JSON.
//
// JSON keys are the proto field names (snake_case), so scripts can rely on proto/shadowd.proto's
// comments for their meaning; every field is present, also when empty. Text output replaces control
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

// Indented JSON and a final newline.
std::string DumpJson(const nlohmann::json& value);

}  // namespace vs::cli
