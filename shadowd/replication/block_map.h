// BlockMap: the pure arithmetic of a replication round, at the granularity of QEMU's dirty bitmaps
// (64 KiB). It decides which blocks of a disk a round must send (dirty ones, every one for a seed, the
// ones whose digests differ for a resync), splits them into reads that cross the network and zero
// writes that do not, and computes the digests both hosts compare to verify a round.
//
// Why blocks and not the NBD extents as given: the dirty bitmap is kept per 64 KiB block, digests
// must cover the same ranges on both hosts, and a block is the unit a resync compares. The last
// block of a disk may be shorter than kBlockSize.
//
// Thread-safety: pure functions and values. Failure modes: maps that do not cover the device in order
// are InvalidArgument naming the offset, devices above kMaxVirtualSize InvalidArgument before anything is
// allocated; nothing aborts.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "shadowd/replication/block_device.h"

namespace vs::replication {

inline constexpr uint64_t kBlockSize = 64 * 1024;

// The largest disk, and the most data one round may cover (the sum over its disks), that replication accepts: 2 TiB.
// Why not qcow2's own 64 TiB: the protocol carries a disk's every block digest in one message (8 bytes per block:
// ReplicaDigestsReply, a RESYNC's source_digests, a FULL round's reply), and both hosts hold per-block vectors in
// memory. 2 TiB is 2^25 blocks, a 256 MiB digest list, which is what the peer service's message limit was sized
// for before the cap existed, so nothing that worked is refused; 64 TiB would need 8 GiB messages, beyond
// gRPC's 2 GiB maximum. Every function below that allocates per block refuses a larger device.
inline constexpr uint64_t kMaxVirtualSize = uint64_t{2} << 40;

// InvalidArgument naming the size and the cap when `device_size` is above kMaxVirtualSize.
Status CheckDeviceSize(uint64_t device_size);

// What a round does with one block.
enum class BlockAction : uint8_t {
  kSkip,  // unchanged: nothing crosses
  kZero,  // changed and reads as zeros at the source: a zero write, no data crosses
  kCopy,  // changed data: read from the source, written to the replica
};

// One run of adjacent blocks with the same action.
struct BlockOp {
  uint64_t offset = 0;
  uint64_t length = 0;
  BlockAction action = BlockAction::kSkip;
  bool operator==(const BlockOp&) const = default;
};

// Pure arithmetic that cannot wrap (size + kBlockSize - 1 did for sizes near 2^64); callers allocate per block
// only for a size CheckDeviceSize accepted.
constexpr uint64_t BlockCount(uint64_t device_size) {
  return device_size / kBlockSize + (device_size % kBlockSize != 0);
}

// Per block: true when any byte of it is marked by `flag` in `map` (a block-status answer covering the
// whole device). With kNbdStateDirty on a dirty-bitmap context this is "changed since the checkpoint".
StatusOr<std::vector<bool>> BlocksWithFlag(const std::vector<MappedExtent>& map, uint64_t device_size,
                                           uint32_t flag);
// Per block: true when the whole block reads as zeros according to a "base:allocation" map.
StatusOr<std::vector<bool>> ZeroBlocks(const std::vector<MappedExtent>& allocation, uint64_t device_size);

// The ops of a round: every block in `changed` becomes kZero when `zero` says so, else kCopy; adjacent
// blocks with the same action merge; kSkip runs are omitted. Both vectors have BlockCount(size) entries.
std::vector<BlockOp> PlanOps(const std::vector<bool>& changed, const std::vector<bool>& zero, uint64_t device_size);

// How a block's 64-bit digest is computed. The values travel between hosts (proto BlockDigest): a host of an
// earlier version leaves the field unset, which is kSha1Prefix. Digests compare blocks across hosts and guard
// against bugs and torn copies, not against attackers (TLS does that): XXH3 is ~100 times faster than SHA-1 here.
enum class BlockDigestKind : uint8_t {
  kSha1Prefix = 0,  // the first 8 bytes of the block's SHA-1, big-endian (earlier versions)
  kXxh3 = 1,        // XXH3's 64-bit hash
};
// What this version asks for.
inline constexpr BlockDigestKind kPreferredBlockDigest = BlockDigestKind::kXxh3;
// The kind a peer named by its wire value; InvalidArgument for a value this version does not know.
StatusOr<BlockDigestKind> BlockDigestKindOf(int wire_value);

uint64_t BlockDigest(BlockDigestKind kind, std::span<const std::byte> bytes);
uint64_t ZeroBlockDigest(BlockDigestKind kind, uint64_t length);

// Digests of every block in `ops` (kZero and kCopy alike), in order, read from `device` (several reads in flight);
// blocks that `zero` marks are not read (their digest is ZeroBlockDigest). `zero` may be empty (read everything).
StatusOr<std::vector<uint64_t>> DigestOps(BlockDevice& device, BlockDigestKind kind, const std::vector<BlockOp>& ops,
                                          const std::vector<bool>& zero);
// Digests of every block of `device`, zero blocks (per `zero`) without reading.
StatusOr<std::vector<uint64_t>> DigestAllBlocks(BlockDevice& device, BlockDigestKind kind,
                                                const std::vector<bool>& zero);

// Per block: true where the digests differ. Size mismatch is InvalidArgument.
StatusOr<std::vector<bool>> DifferingBlocks(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// Performs `ops`: kCopy blocks are read from `source` and written to `target` (in batches, several requests in
// flight on each), kZero blocks are zeroed on `target`, kSkip ops are left out; then `target` is flushed. Returns
// the bytes read from `source`.
StatusOr<uint64_t> ApplyOps(BlockDevice& source, BlockDevice& target, const std::vector<BlockOp>& ops);

// The totals of a plan.
struct OpTotals {
  uint64_t copy_bytes = 0;
  uint64_t zero_bytes = 0;
};
OpTotals Totals(const std::vector<BlockOp>& ops);

// Coalesced byte ranges "offset+length" of the blocks flagged in `blocks`, for error messages and verify
// reports; at most `limit` ranges, then "... and N more".
std::string DescribeBlocks(const std::vector<bool>& blocks, uint64_t device_size, size_t limit = 8);

}  // namespace vs::replication
