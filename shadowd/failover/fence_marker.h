// Fence markers: one small file per VM that this host keeps from starting (a FenceRecord that BlocksStart),
// DIR/VM_UUID, holding the refusal the hook prints. The store's records are the authority and shadowd answers the
// hook from them; the markers exist for when shadowd does not answer: a host that boots runs libvirtd's autostart
// before its shadowd is up, and the hook must still refuse a VM that was fenced (or promoted elsewhere).
// Default DIR /var/lib/virt-shadow/fenced: shadowd's `[shadowd] fence_dir`, the hook's VS_FENCE_DIR.
//
// Written by FenceRecords::Put right after the store batch (so before the VM is paused) and removed when the
// record is released. A marker whose removal failed keeps refusing only while shadowd is down.
//
// DIR is created 0700 (or tightened to it; refused when another user owns it: common/private_paths.h).
//
// Thread-safety: the functions keep no state; a marker is replaced by rename(2), so a reader sees the old or the
// new text, never half of one. Failure modes: WriteFenceMarkers returns the first error (kInternal naming the
// path for I/O, kFailedPrecondition for a DIR of another user) after trying every record; ReadFenceMarker returns
// nullopt for no marker, an unreadable one, or a uuid that is not one (no path may be built from it).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/failover.pb.h"

namespace vs::failover {

inline constexpr char kDefaultFenceDir[] = "/var/lib/virt-shadow/fenced";

// The one sentence a refused start shows (hook and markers alike): since when and why the VM is fenced, and what
// it waits for (its shadow host's answer), or where it was promoted.
std::string FenceRefusal(const std::string& vm_name, const virtshadow::v1::FenceRecord& fence);

// Writes the marker of every record that blocks a start and removes the marker of every other one.
Status WriteFenceMarkers(const std::string& dir, const std::vector<virtshadow::v1::FenceRecord>& records);

std::optional<std::string> ReadFenceMarker(const std::string& dir, const std::string& vm_uuid);

}  // namespace vs::failover
