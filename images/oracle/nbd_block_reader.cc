#include "images/oracle/nbd_block_reader.h"

#include <fcntl.h>
#include <libnbd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vs::oracle {
namespace {

constexpr std::string_view kQcow2Magic = "QFI\xfb";

struct NbdHandleCloser {
  void operator()(nbd_handle* handle) const {
    // A clean disconnect (ignored if the handle never connected or the server is gone) makes
    // qemu-nbd exit; nbd_close then reaps it.
    (void)nbd_shutdown(handle, 0);
    nbd_close(handle);
  }
};
using NbdHandle = std::unique_ptr<nbd_handle, NbdHandleCloser>;

std::string NbdError() {
  const char* error = nbd_get_error();
  return error != nullptr ? error : "unknown libnbd error";
}

class NbdBlockReader final : public BlockReader {
 public:
  NbdBlockReader(NbdHandle handle, std::uint64_t size, std::string name)
      : handle_(std::move(handle)), size_(size), name_(std::move(name)) {}
  NbdBlockReader(const NbdBlockReader&) = delete;
  NbdBlockReader& operator=(const NbdBlockReader&) = delete;

  std::uint64_t Size() const override { return size_; }

  StatusOr<std::string> ReadAt(std::uint64_t offset, std::size_t length) override {
    std::string buffer(length, '\0');
    if (nbd_pread(handle_.get(), buffer.data(), length, offset, 0) == -1) return ReadError(offset, length);
    return buffer;
  }

  StatusOr<std::vector<std::string>> ReadMany(const std::vector<std::uint64_t>& offsets,
                                              std::size_t length) override {
    // One synchronous read per slot costs a round trip each (~50 us, ~1 s for a 1 GiB disk);
    // issuing them all and then waiting lets qemu-nbd work on many at once. The buffers live in
    // a member that is never reused after a failure: commands issued before the failure may
    // still be in flight, and libnbd writes into their buffers until the handle is closed.
    if (broken_) return FailedPrecondition("an earlier NBD request to " + name_ + " failed; reopen the disk");
    std::vector<std::string>& blocks = in_flight_buffers_;
    blocks.assign(offsets.size(), std::string(length, '\0'));
    std::vector<int64_t> cookies;
    cookies.reserve(offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      const int64_t cookie =
          nbd_aio_pread(handle_.get(), blocks[i].data(), length, offsets[i], NBD_NULL_COMPLETION, 0);
      if (cookie == -1) {
        broken_ = true;
        return ReadError(offsets[i], length);
      }
      cookies.push_back(cookie);
    }
    Status first_error;
    for (std::size_t i = 0; i < cookies.size(); ++i) {
      int done = 0;
      while ((done = nbd_aio_command_completed(handle_.get(), cookies[i])) == 0) {
        if (nbd_poll(handle_.get(), -1) == -1 && nbd_get_errno() != EINTR) {
          broken_ = true;
          return ReadError(offsets[i], length);
        }
      }
      if (done == -1 && first_error.ok()) first_error = ReadError(offsets[i], length);
    }
    if (!first_error.ok()) return first_error;
    return std::exchange(blocks, {});
  }

 private:
  Status ReadError(std::uint64_t offset, std::size_t length) const {
    return Unavailable("reading " + std::to_string(length) + " bytes at offset " + std::to_string(offset) +
                       " of " + name_ + ": " + NbdError());
  }

  // Declared before handle_ so that it is destroyed after the handle is closed.
  std::vector<std::string> in_flight_buffers_;
  bool broken_ = false;
  NbdHandle handle_;
  std::uint64_t size_;
  std::string name_;
};

bool IsNbdUri(std::string_view disk) { return disk.starts_with("nbd://") || disk.starts_with("nbd+unix://"); }

// QEMU option syntax: a comma inside a value is written as two commas.
std::string EscapeOptionValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

struct LocalImage {
  bool is_block_device = false;
  ImageFormat detected = ImageFormat::kRaw;
};

StatusOr<LocalImage> InspectLocalImage(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    const int error = errno;
    const std::string message = "cannot open disk image '" + path + "': " + std::strerror(error);
    if (error == ENOENT) return NotFound(message + "; check the --disk path");
    return InvalidArgument(message + "; check the path and that you may read it");
  }
  LocalImage image;
  struct stat info {};
  if (fstat(fd, &info) == 0) image.is_block_device = S_ISBLK(info.st_mode);
  char magic[kQcow2Magic.size()] = {};
  const ssize_t got = pread(fd, magic, sizeof magic, 0);
  close(fd);
  if (got == static_cast<ssize_t>(sizeof magic) && std::string_view(magic, sizeof magic) == kQcow2Magic) {
    image.detected = ImageFormat::kQcow2;
  }
  return image;
}

StatusOr<std::unique_ptr<BlockReader>> Connect(NbdHandle handle, const std::string& name) {
  const int64_t size = nbd_get_size(handle.get());
  if (size < 0) return Unavailable("cannot get the size of " + name + ": " + NbdError());
  return std::unique_ptr<BlockReader>(
      std::make_unique<NbdBlockReader>(std::move(handle), static_cast<std::uint64_t>(size), name));
}

StatusOr<std::unique_ptr<BlockReader>> OpenNbdUri(const std::string& uri, ImageFormat format) {
  if (format == ImageFormat::kQcow2) {
    return InvalidArgument("--format qcow2 cannot be used with an NBD URI: an export is read as raw; "
                           "export the qcow2 image with its format set (qemu-nbd -f qcow2) and drop --format");
  }
  NbdHandle handle(nbd_create());
  if (!handle) return Internal("nbd_create failed: " + NbdError());
  if (nbd_connect_uri(handle.get(), uri.c_str()) == -1) {
    return Unavailable("cannot connect to NBD export " + uri + ": " + NbdError() +
                       "; check that the NBD server is running and the URI is right");
  }
  return Connect(std::move(handle), uri);
}

StatusOr<std::unique_ptr<BlockReader>> OpenLocalImage(const std::string& path, ImageFormat format) {
  VS_ASSIGN_OR_RETURN(const LocalImage image, InspectLocalImage(path));
  if (format == ImageFormat::kAuto) format = image.detected;
  // qemu-nbd has no -U/--force-share flag (QEMU 7.2), but --image-opts accepts the block
  // layer's force-share=on, which requires a read-only open and skips the image lock that a
  // running QEMU holds. Acknowledged records are safe to read this way: the guest fsyncs each
  // record before its ACK, which makes QEMU flush the qcow2 metadata that points at it.
  std::string image_opts = std::string("driver=") + (format == ImageFormat::kQcow2 ? "qcow2" : "raw") +
                                 ",read-only=on,force-share=on,file.driver=" +
                                 (image.is_block_device ? "host_device" : "file") +
                                 ",file.filename=" + EscapeOptionValue(path);
  // Socket activation: libnbd creates the socket and starts qemu-nbd on it, so there is no
  // port or socket path to pick and the child's lifetime is tied to the handle.
  std::string program = "qemu-nbd";
  std::string read_only = "--read-only";
  std::string image_opts_flag = "--image-opts";
  char* argv[] = {program.data(), read_only.data(), image_opts_flag.data(), image_opts.data(), nullptr};
  NbdHandle handle(nbd_create());
  if (!handle) return Internal("nbd_create failed: " + NbdError());
  if (nbd_connect_systemd_socket_activation(handle.get(), argv) == -1) {
    return Unavailable("cannot serve '" + path + "' with qemu-nbd (" + image_opts + "): " + NbdError() +
                       "; check that qemu-nbd is installed and --format matches the image (see qemu-nbd's "
                       "message above)");
  }
  return Connect(std::move(handle), path);
}

}  // namespace

StatusOr<ImageFormat> ParseImageFormat(std::string_view name) {
  if (name == "raw") return ImageFormat::kRaw;
  if (name == "qcow2") return ImageFormat::kQcow2;
  return InvalidArgument("unknown image format '" + std::string(name) + "': use raw or qcow2, or omit --format "
                         "to detect it");
}

StatusOr<std::unique_ptr<BlockReader>> OpenDisk(const std::string& disk, ImageFormat format) {
  if (IsNbdUri(disk)) return OpenNbdUri(disk, format);
  return OpenLocalImage(disk, format);
}

}  // namespace vs::oracle
