#include "shadowd/replication/block_map.h"

#include <algorithm>
#include <cstring>

#include "common/sha1.h"

namespace vs::replication {
namespace {

// Reads and writes go in pieces of this size: large enough to keep NBD busy, small enough for memory.
constexpr uint64_t kIoChunk = 4 * 1024 * 1024;

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

uint64_t BlockDigest(std::span<const std::byte> bytes) {
  const Sha1Digest sha = Sha1(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  uint64_t digest = 0;
  for (int i = 0; i < 8; ++i) digest = (digest << 8) | sha[i];
  return digest;
}

uint64_t ZeroBlockDigest(uint64_t length) {
  const std::vector<std::byte> zeros(length);
  return BlockDigest(zeros);
}

namespace {

// Digests of the blocks in [offset, offset+length), appended to `out`; zero blocks are not read.
Status DigestRange(BlockDevice& device, uint64_t offset, uint64_t length, const std::vector<bool>& zero,
                   std::vector<std::byte>& buffer, std::vector<uint64_t>& out) {
  const uint64_t zero_full = ZeroBlockDigest(kBlockSize);
  for (uint64_t pos = offset; pos < offset + length;) {
    const uint64_t chunk = std::min(kIoChunk, offset + length - pos);
    const uint64_t first = pos / kBlockSize;
    const uint64_t blocks = (chunk + kBlockSize - 1) / kBlockSize;
    bool all_zero = !zero.empty();
    for (uint64_t b = first; all_zero && b < first + blocks; ++b) all_zero = zero[b];
    if (!all_zero) {
      buffer.resize(chunk);
      VS_RETURN_IF_ERROR(device.Read(pos, buffer));
    }
    for (uint64_t b = 0; b < blocks; ++b) {
      const uint64_t lo = b * kBlockSize;
      const uint64_t len = std::min(kBlockSize, chunk - lo);
      if (!zero.empty() && zero[first + b]) {
        out.push_back(len == kBlockSize ? zero_full : ZeroBlockDigest(len));
      } else {
        out.push_back(BlockDigest(std::span<const std::byte>(buffer).subspan(lo, len)));
      }
    }
    pos += chunk;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<uint64_t>> DigestOps(BlockDevice& device, const std::vector<BlockOp>& ops,
                                          const std::vector<bool>& zero) {
  std::vector<uint64_t> digests;
  std::vector<std::byte> buffer;
  for (const BlockOp& op : ops) VS_RETURN_IF_ERROR(DigestRange(device, op.offset, op.length, zero, buffer, digests));
  return digests;
}

StatusOr<std::vector<uint64_t>> DigestAllBlocks(BlockDevice& device, const std::vector<bool>& zero) {
  VS_RETURN_IF_ERROR(CheckDeviceSize(device.size()));
  std::vector<uint64_t> digests;
  std::vector<std::byte> buffer;
  VS_RETURN_IF_ERROR(DigestRange(device, 0, device.size(), zero, buffer, digests));
  return digests;
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
  uint64_t bytes_read = 0;
  std::vector<std::byte> buffer;
  for (const BlockOp& op : ops) {
    if (op.action == BlockAction::kZero) {
      VS_RETURN_IF_ERROR(target.Zero(op.offset, op.length));
      continue;
    }
    if (op.action != BlockAction::kCopy) continue;
    for (uint64_t pos = op.offset; pos < op.offset + op.length;) {
      const uint64_t chunk = std::min(kIoChunk, op.offset + op.length - pos);
      buffer.resize(chunk);
      VS_RETURN_IF_ERROR(source.Read(pos, buffer));
      VS_RETURN_IF_ERROR(target.Write(pos, buffer));
      bytes_read += chunk;
      pos += chunk;
    }
  }
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
