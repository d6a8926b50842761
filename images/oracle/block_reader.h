// BlockReader: random read access to a disk image, so the oracle's analysis runs the same on an
// in-memory image (tests) and on a real one (nbd_block_reader.h).
//
// Ownership: a reader owns its backing (a buffer, a connection). Thread-safety: not thread-safe;
// one caller at a time. Failure modes: ReadAt returns an error Status for an out-of-range
// request or an I/O failure; it never returns a short read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vs::oracle {

class BlockReader {
 public:
  virtual ~BlockReader() = default;
  // Size of the disk in bytes.
  virtual std::uint64_t Size() const = 0;
  // Exactly `length` bytes starting at `offset`.
  virtual StatusOr<std::string> ReadAt(std::uint64_t offset, std::size_t length) = 0;
  // `length` bytes at each of `offsets`, in the same order. Calls ReadAt in turn; a reader
  // with a round trip per request (NBD) overrides it to keep the requests in flight together.
  virtual StatusOr<std::vector<std::string>> ReadMany(const std::vector<std::uint64_t>& offsets,
                                                      std::size_t length);
};

// A disk held in memory: the whole image as one byte string.
class MemoryBlockReader final : public BlockReader {
 public:
  explicit MemoryBlockReader(std::string bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t Size() const override { return bytes_.size(); }
  StatusOr<std::string> ReadAt(std::uint64_t offset, std::size_t length) override;

 private:
  std::string bytes_;
};

}  // namespace vs::oracle
