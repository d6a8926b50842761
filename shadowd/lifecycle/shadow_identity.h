// Deterministic identity of shadow domains.
//
// A shadow's UUID is a name-based (version 5, RFC 9562) UUID of its primary's UUID and its shadow
// index, under a namespace fixed for virt-shadow. Because the same inputs always give the same UUID,
// defining a shadow twice (e.g. re-issued after shadowd was killed mid-way) replaces the first
// definition instead of creating a second domain, and a shadow left on a host can be recognised as
// belonging to its primary. The values are persisted and compared across hosts: the namespace, the
// name layout and the algorithm must never change.
//
// Thread-safety: pure functions. Failure modes: a primary UUID that is not in the 8-4-4-4-12 hex form
// gives InvalidArgument quoting it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::lifecycle {

// The namespace of every shadow UUID (a random UUID chosen once for virt-shadow).
inline constexpr std::string_view kShadowUuidNamespace = "bf8a994d-ecc3-4dbb-9950-f592943e3c2c";

// `text` in canonical lowercase 8-4-4-4-12 form. Accepts hex digits of either case, hyphens only at
// the canonical positions (libvirt prints UUIDs this way).
StatusOr<std::string> CanonicalUuid(std::string_view text);

// UUIDv5(kShadowUuidNamespace, "<canonical primary uuid>/<index>"), lowercase. The primary UUID's
// case does not matter.
StatusOr<std::string> ShadowUuid(std::string_view primary_uuid, std::uint32_t index);

// "<primary name>-shadow" for index 0, "<primary name>-shadow<index>" otherwise.
std::string ShadowName(std::string_view primary_name, std::uint32_t index);

}  // namespace vs::lifecycle
