// ReplicaStorage: the image and NBD operations replication needs, as one seam. The production
// implementation (qemu_replica_storage.cc) runs qemu-img and qemu-nbd and reads exports with libnbd;
// unit tests use an in-memory fake so that the round protocol is tested without QEMU.
//
// Ownership: returned devices are owned by the caller. Thread-safety: implementations must allow
// concurrent calls on different paths. Failure modes: kNotFound for a missing image (naming the path),
// kUnavailable for an unreachable export, other errors with the tool's message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "shadowd/replication/block_device.h"

namespace vs::replication {

struct ImageState {
  std::string format;  // "qcow2", "raw"
  uint64_t virtual_size = 0;
  uint64_t allocated_bytes = 0;  // on the host's file system
};
// An image with less allocated than this holds no data worth a resync (a blank qcow2 takes ~200 KiB).
inline constexpr uint64_t kSeedWorthyAllocation = 4 << 20;

class ReplicaStorage {
 public:
  virtual ~ReplicaStorage() = default;
  // nullopt when no file is at `path`.
  virtual StatusOr<std::optional<ImageState>> Inspect(const std::string& path) = 0;
  virtual Status Create(const std::string& path, const std::string& format, uint64_t size) = 0;
  virtual Status Resize(const std::string& path, const std::string& format, uint64_t size) = 0;
  // A qcow2 `overlay` whose backing file is `base`; AlreadyExists when `overlay` exists.
  virtual Status CreateOverlay(const std::string& overlay, const std::string& base, const std::string& base_format) = 0;
  // Writes the overlay's data into its backing file (the overlay file stays).
  virtual Status Commit(const std::string& overlay) = 0;
  // OK when nothing is at `path`.
  virtual Status Remove(const std::string& path) = 0;
  // fsync(2) of `directory`: until then, the files created (or removed) in it may be gone (or back)
  // after a power cut, whatever was synced inside them.
  virtual Status SyncDirectory(const std::string& directory) = 0;
  virtual StatusOr<std::unique_ptr<BlockDevice>> OpenImage(const std::string& path, const std::string& format,
                                                           bool writable) = 0;
  // An NBD export (e.g. libvirt's backup export), with the meta contexts to map it by.
  virtual StatusOr<std::unique_ptr<BlockDevice>> ConnectExport(const std::string& uri,
                                                               const std::vector<std::string>& meta_contexts) = 0;
};

}  // namespace vs::replication
