#include "shadowd/replication/block_map.h"

#include <algorithm>
#include <cstring>

#include "common/digest.h"

namespace vs::replication {
namespace {

// Reads and writes go in requests of at most this size (a server's own limit is often 32 MiB), and in batches of
// at most kBatchBytes, the memory a copy or a digest pass holds: 8 requests of 4 MiB in flight keep a 1 Gbit/s
// link with a few ms of latency busy.
constexpr uint64_t kIoChunk = 4 * 1024 * 1024;
constexpr uint64_t kBatchBytes = 32 * 1024 * 1024;

uint64_t BlockLength(uint64_t block, uint64_t device_size) {
  return std::min(kBlockSize, device_size - block * kBlockSize);
}

// Calls mark(first_block, last_block) for every extent whose flags satisfy `pick`.
template <typename Pick, typename Mark>
Status ForEachExtent(const std::vector<MappedExtent>& map, uint64_t device_size, Pick pick, Mark mark) {
  uint64_t expected = 0;
  for (const MappedExtent& extent : map) {
    if (extent.offset != expected || extent.length == 0) {
      return InvalidArgument("block map is not contiguous at offset " + std::to_string(expected) +
                             " (extent at " + std::to_string(extent.offset) + " of length " +
                             std::to_string(extent.length) + ")");
    }
    if (extent.length > UINT64_MAX - extent.offset) {
      return InvalidArgument("block map extent at offset " + std::to_string(extent.offset) + " of length " +
                             std::to_string(extent.length) + " ends past 2^64; the block-status answer is corrupt");
    }
    const uint64_t end = std::min(extent.offset + extent.length, device_size);
    if (extent.offset < device_size && pick(extent.flags)) {
      mark(extent.offset / kBlockSize, (end - 1) / kBlockSize, extent.offset, end);
    }
    expected = extent.offset + extent.length;
  }
  if (expected < device_size) {
    return InvalidArgument("block map ends at offset " + std::to_string(expected) + " of a " +
                           std::to_string(device_size) + "-byte device");
  }
  return Status::Ok();
}

}  // namespace

Status CheckDeviceSize(uint64_t device_size) {
  if (device_size <= kMaxVirtualSize) return Status::Ok();
  return InvalidArgument("a disk of " + std::to_string(device_size) + " bytes is above the " +
                         std::to_string(kMaxVirtualSize >> 40) +
                         " TiB that replication handles (every block's digest must fit one peer message); "
                         "shrink the disk's virtual size or split it into disks of at most that size");
}


StatusOr<std::vector<bool>> BlocksWithFlag(const std::vector<MappedExtent>& map, uint64_t device_size,
                                           uint32_t flag) {
  VS_RETURN_IF_ERROR(CheckDeviceSize(device_size));
  std::vector<bool> blocks(BlockCount(device_size), false);
  VS_RETURN_IF_ERROR(ForEachExtent(
      map, device_size, [flag](uint32_t flags) { return (flags & flag) != 0; },
      [&](uint64_t first, uint64_t last, uint64_t, uint64_t) {
        for (uint64_t b = first; b <= last; ++b) blocks[b] = true;
      }));
  return blocks;
}

StatusOr<std::vector<bool>> ZeroBlocks(const std::vector<MappedExtent>& allocation, uint64_t device_size) {
  VS_RETURN_IF_ERROR(CheckDeviceSize(device_size));
  // A block is zero only if every byte of it lies in zero extents: count the zero bytes per block.
  std::vector<uint64_t> zero_bytes(BlockCount(device_size), 0);
  VS_RETURN_IF_ERROR(ForEachExtent(
      allocation, device_size, [](uint32_t flags) { return (flags & kNbdStateZero) != 0; },
      [&](uint64_t first, uint64_t last, uint64_t begin, uint64_t end) {
        for (uint64_t b = first; b <= last; ++b) {
          const uint64_t lo = std::max(begin, b * kBlockSize);
          const uint64_t hi = std::min(end, (b + 1) * kBlockSize);
          zero_bytes[b] += hi - lo;
        }
      }));
  std::vector<bool> zero(zero_bytes.size());
  for (uint64_t b = 0; b < zero.size(); ++b) zero[b] = zero_bytes[b] == BlockLength(b, device_size);
  return zero;
}

std::vector<BlockOp> PlanOps(const std::vector<bool>& changed, const std::vector<bool>& zero, uint64_t device_size) {
  std::vector<BlockOp> ops;
  for (uint64_t b = 0; b < changed.size(); ++b) {
    if (!changed[b]) continue;
    const BlockAction action = (b < zero.size() && zero[b]) ? BlockAction::kZero : BlockAction::kCopy;
    const uint64_t offset = b * kBlockSize;
    const uint64_t length = BlockLength(b, device_size);
    if (!ops.empty() && ops.back().action == action && ops.back().offset + ops.back().length == offset) {
      ops.back().length += length;
    } else {
      ops.push_back({offset, length, action});
    }
  }
  return ops;
}

StatusOr<BlockDigestKind> BlockDigestKindOf(int wire_value) {
  switch (wire_value) {
    case static_cast<int>(BlockDigestKind::kSha1Prefix):
    case static_cast<int>(BlockDigestKind::kXxh3):
      return static_cast<BlockDigestKind>(wire_value);
    default:
      return InvalidArgument("block digest kind " + std::to_string(wire_value) +
                             " is not known to this host's shadowd: upgrade it to the other host's version");
  }
}

uint64_t BlockDigest(BlockDigestKind kind, std::span<const std::byte> bytes) {
  if (kind == BlockDigestKind::kXxh3) return Xxh3_64(bytes);
  const Sha1Digest sha = Sha1(bytes);
  uint64_t digest = 0;
  for (int i = 0; i < 8; ++i) digest = (digest << 8) | sha[i];
  return digest;
}

uint64_t ZeroBlockDigest(BlockDigestKind kind, uint64_t length) {
  const std::vector<std::byte> zeros(length);
  return BlockDigest(kind, zeros);
}

namespace {

// The block-aligned ranges to read for the blocks of `ops` that `skip(op, block)` does not exclude, each at most
// kIoChunk long; adjacent blocks share a range.
template <typename Skip>
std::vector<ByteRange> RangesToRead(const std::vector<BlockOp>& ops, Skip skip) {
  std::vector<ByteRange> ranges;
  for (const BlockOp& op : ops) {
    for (uint64_t pos = op.offset; pos < op.offset + op.length; pos += kBlockSize) {
      const uint64_t length = std::min(kBlockSize, op.offset + op.length - pos);
      if (skip(op, pos / kBlockSize)) continue;
      ByteRange* last = ranges.empty() ? nullptr : &ranges.back();
      if (last != nullptr && last->offset + last->length == pos && last->length + length <= kIoChunk) {
        last->length += length;
      } else {
        ranges.push_back({pos, length});
      }
    }
  }
  return ranges;
}

// Reads `ranges` from `device` in batches of at most kBatchBytes, each batch one ReadRanges (several requests in
// flight), and hands each to `then(batch ranges, their bytes)`.
template <typename Then>
Status ReadInBatches(BlockDevice& device, const std::vector<ByteRange>& ranges, Then then) {
  std::vector<std::byte> buffer;
  for (size_t first = 0; first < ranges.size();) {
    uint64_t bytes = 0;
    size_t end = first;
    for (; end < ranges.size() && (end == first || bytes + ranges[end].length <= kBatchBytes); ++end) {
      bytes += ranges[end].length;
    }
    const std::span<const ByteRange> batch(ranges.data() + first, end - first);
    buffer.resize(bytes);
    VS_RETURN_IF_ERROR(device.ReadRanges(batch, buffer));
    VS_RETURN_IF_ERROR(then(batch, std::span<const std::byte>(buffer)));
    first = end;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<uint64_t>> DigestOps(BlockDevice& device, BlockDigestKind kind, const std::vector<BlockOp>& ops,
                                          const std::vector<bool>& zero) {
  auto is_zero = [&](const BlockOp&, uint64_t block) { return !zero.empty() && zero[block]; };
  // Read first, then one digest per block in the ops' order: a zero block's from its length, the others' from
  // the bytes read, which RangesToRead yields in that same order.
  std::vector<uint64_t> read_digests;
  VS_RETURN_IF_ERROR(ReadInBatches(device, RangesToRead(ops, is_zero),
                                   [&](std::span<const ByteRange> batch, std::span<const std::byte> bytes) {
                                     for (const ByteRange& range : batch) {
                                       for (uint64_t lo = 0; lo < range.length; lo += kBlockSize) {
                                         const uint64_t length = std::min(kBlockSize, range.length - lo);
                                         read_digests.push_back(BlockDigest(kind, bytes.subspan(lo, length)));
                                       }
                                       bytes = bytes.subspan(range.length);
                                     }
                                     return Status::Ok();
                                   }));
  const uint64_t zero_full = ZeroBlockDigest(kind, kBlockSize);
  std::vector<uint64_t> digests;
  size_t next_read = 0;
  for (const BlockOp& op : ops) {
    for (uint64_t pos = op.offset; pos < op.offset + op.length; pos += kBlockSize) {
      const uint64_t length = std::min(kBlockSize, op.offset + op.length - pos);
      if (is_zero(op, pos / kBlockSize)) {
        digests.push_back(length == kBlockSize ? zero_full : ZeroBlockDigest(kind, length));
      } else {
        digests.push_back(read_digests[next_read++]);
      }
    }
  }
  return digests;
}

StatusOr<std::vector<uint64_t>> DigestAllBlocks(BlockDevice& device, BlockDigestKind kind,
                                                const std::vector<bool>& zero) {
  VS_RETURN_IF_ERROR(CheckDeviceSize(device.size()));
  if (device.size() == 0) return std::vector<uint64_t>{};
  return DigestOps(device, kind, {{0, device.size(), BlockAction::kCopy}}, zero);
}

StatusOr<std::vector<bool>> DifferingBlocks(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.size() != b.size()) {
    return InvalidArgument("digest lists differ in length: " + std::to_string(a.size()) + " and " +
                           std::to_string(b.size()) + " blocks (the disks differ in size)");
  }
  std::vector<bool> differ(a.size());
  for (size_t i = 0; i < a.size(); ++i) differ[i] = a[i] != b[i];
  return differ;
}

StatusOr<uint64_t> ApplyOps(BlockDevice& source, BlockDevice& target, const std::vector<BlockOp>& ops) {
  for (const BlockOp& op : ops) {
    if (op.action == BlockAction::kZero) VS_RETURN_IF_ERROR(target.Zero(op.offset, op.length));
  }
  uint64_t bytes_read = 0;
  VS_RETURN_IF_ERROR(ReadInBatches(source,
                                   RangesToRead(ops, [](const BlockOp& op, uint64_t) { return op.action != BlockAction::kCopy; }),
                                   [&](std::span<const ByteRange> batch, std::span<const std::byte> bytes) {
                                     bytes_read += bytes.size();
                                     return target.WriteRanges(batch, bytes);
                                   }));
  VS_RETURN_IF_ERROR(target.Flush());
  return bytes_read;
}

OpTotals Totals(const std::vector<BlockOp>& ops) {
  OpTotals totals;
  for (const BlockOp& op : ops) {
    if (op.action == BlockAction::kCopy) totals.copy_bytes += op.length;
    if (op.action == BlockAction::kZero) totals.zero_bytes += op.length;
  }
  return totals;
}

std::string DescribeBlocks(const std::vector<bool>& blocks, uint64_t device_size, size_t limit) {
  std::vector<std::string> ranges;
  size_t total = 0;
  for (uint64_t b = 0; b < blocks.size();) {
    if (!blocks[b]) { ++b; continue; }
    uint64_t end = b;
    while (end < blocks.size() && blocks[end]) ++end;
    ++total;
    if (ranges.size() < limit) {
      const uint64_t offset = b * kBlockSize;
      const uint64_t stop = std::min(end * kBlockSize, device_size);
      ranges.push_back(std::to_string(offset) + "+" + std::to_string(stop - offset));
    }
    b = end;
  }
  std::string text;
  for (const std::string& range : ranges) text += (text.empty() ? "" : ", ") + range;
  if (total > ranges.size()) text += " and " + std::to_string(total - ranges.size()) + " more";
  return text;
}

}  // namespace vs::replication
