// BlockDevice: a disk as replication sees it, i.e. an NBD export. The primary reads libvirt's pull-mode
// backup export (a frozen point-in-time view of a running disk, with the dirty bitmap as a meta context);
// the shadow host writes its replica through a private qemu-nbd. shadowd/nbd is the libnbd
// implementation; core logic (copier, checksums) is tested against an in-memory one.
//
// Ownership: the opener returns a unique_ptr; destroying the device disconnects (and stops a private
// server). Buffers passed to ReadRanges/WriteRanges are only used until the call returns. Thread-safety: none; one
// thread per device. Failure modes: every call returns a Status;
// kUnavailable when the connection broke (the round is retried later), kInvalidArgument for requests
// outside the device; messages name the export and the offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vs::replication {

// NBD block-status flags: for "base:allocation" bit 0 = hole, bit 1 = reads as zeros; for a
// "qemu:dirty-bitmap:*" context bit 0 = dirty.
inline constexpr uint32_t kNbdStateHole = 1;
inline constexpr uint32_t kNbdStateZero = 2;
inline constexpr uint32_t kNbdStateDirty = 1;

// [offset, offset+length) of a device.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

struct MappedExtent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t flags = 0;
  bool operator==(const MappedExtent&) const = default;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size() const = 0;
  // The whole device described by `meta_context` (which must have been requested at open): extents in
  // offset order, contiguous, covering [0, size()).
  virtual StatusOr<std::vector<MappedExtent>> Map(std::string_view meta_context) = 0;
  virtual Status Read(uint64_t offset, std::span<std::byte> out) = 0;
  virtual Status Write(uint64_t offset, std::span<const std::byte> data) = 0;
  // Reads `ranges`, in order, into consecutive parts of `out` (whose size is their total); writes likewise from
  // `data`. A device over a network keeps several of them in flight: one request at a time pays the round trip
  // for every piece, which held replication to a third of a 1 Gbit/s link. On failure the contents of `out` are
  // unspecified and any subset of `data` may have been written.
  virtual Status ReadRanges(std::span<const ByteRange> ranges, std::span<std::byte> out) {
    for (const ByteRange& range : ranges) {
      VS_RETURN_IF_ERROR(Read(range.offset, out.first(range.length)));
      out = out.subspan(range.length);
    }
    return Status::Ok();
  }
  virtual Status WriteRanges(std::span<const ByteRange> ranges, std::span<const std::byte> data) {
    for (const ByteRange& range : ranges) {
      VS_RETURN_IF_ERROR(Write(range.offset, data.first(range.length)));
      data = data.subspan(range.length);
    }
    return Status::Ok();
  }
  // Makes [offset, offset+length) read as zeros (without sending zeros over the wire).
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  // Returns once every write so far is on stable storage.
  virtual Status Flush() = 0;
};

}  // namespace vs::replication
