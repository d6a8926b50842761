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
  QemuReplicaStorage(Clock& clock, std::string export_certificates)
      : qemu_img_(clock, kQemuImgTimeout), export_certificates_(std::move(export_certificates)) {}

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
    std::optional<nbd::ExportTls> tls;
    if (!export_certificates_.empty()) tls = nbd::ExportTls{.certificates_dir = export_certificates_};
    return nbd::ConnectExport(uri, meta_contexts, tls);
  }

 private:
  nbd::QemuImg qemu_img_;
  const std::string export_certificates_;  // empty: exports are plaintext
};

}  // namespace

StatusOr<std::unique_ptr<ReplicaStorage>> NewQemuReplicaStorage(Clock& clock, std::string export_certificates) {
  if (!export_certificates.empty()) {
    // libnbd reads them only at the first connection; a missing file is better named at start.
    for (const char* file : {"ca-cert.pem", "client-cert.pem", "client-key.pem"}) {
      const std::string path = export_certificates + "/" + file;
      if (::access(path.c_str(), R_OK) != 0) {
        return FailedPrecondition("cannot read " + path + " (" + ErrnoMessage(errno) +
                                  "), which reading NBD exports with TLS needs ([tls] nbd = mutual); install this "
                                  "host's QEMU certificates (scripts/pki.sh host) or set nbd = none");
      }
    }
  }
  return std::unique_ptr<ReplicaStorage>(std::make_unique<QemuReplicaStorage>(clock, std::move(export_certificates)));
}

}  // namespace vs::replication
