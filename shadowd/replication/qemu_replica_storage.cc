#include "shadowd/replication/qemu_replica_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "shadowd/nbd/nbd_device.h"
#include "shadowd/nbd/qemu_img.h"

namespace vs::replication {
namespace {

// qemu-img on a large image (commit of a full seed) can take a while; longer means something hangs.
constexpr Duration kQemuImgTimeout = std::chrono::minutes(10);

std::string ErrnoMessage(int error) { return std::error_code(error, std::generic_category()).message(); }

class QemuReplicaStorage final : public ReplicaStorage {
 public:
  explicit QemuReplicaStorage(Clock& clock) : qemu_img_(clock, kQemuImgTimeout) {}

  StatusOr<std::optional<ImageState>> Inspect(const std::string& path) override {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      if (ec) return Internal("checking " + path + ": " + ec.message());
      return std::optional<ImageState>();
    }
    VS_ASSIGN_OR_RETURN(nbd::ImageFacts facts, qemu_img_.Info(path));
    return std::optional<ImageState>(ImageState{facts.format, facts.virtual_size, facts.allocated_bytes});
  }
  Status Create(const std::string& path, const std::string& format, uint64_t size) override {
    return qemu_img_.Create(path, format, size);
  }
  Status Resize(const std::string& path, const std::string& format, uint64_t size) override {
    return qemu_img_.Resize(path, format, size);
  }
  Status CreateOverlay(const std::string& overlay, const std::string& base, const std::string& base_format) override {
    return qemu_img_.CreateOverlay(overlay, base, base_format);
  }
  Status Commit(const std::string& overlay) override { return qemu_img_.Commit(overlay); }
  Status Remove(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return Internal("removing " + path + ": " + ec.message());
    return Status::Ok();
  }
  Status SyncDirectory(const std::string& directory) override {
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Internal("opening directory " + directory + " to sync it: " + ErrnoMessage(errno));
    const int synced = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (synced != 0) return Internal("syncing directory " + directory + ": " + ErrnoMessage(error));
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<BlockDevice>> OpenImage(const std::string& path, const std::string& format,
                                                   bool writable) override {
    return nbd::OpenImage(path, format, writable ? nbd::OpenMode::kWritable : nbd::OpenMode::kReadOnly);
  }
  StatusOr<std::unique_ptr<BlockDevice>> ConnectExport(const std::string& uri,
                                                       const std::vector<std::string>& meta_contexts) override {
    return nbd::ConnectExport(uri, meta_contexts);
  }

 private:
  nbd::QemuImg qemu_img_;
};

}  // namespace

std::unique_ptr<ReplicaStorage> NewQemuReplicaStorage(Clock& clock) {
  return std::make_unique<QemuReplicaStorage>(clock);
}

}  // namespace vs::replication
