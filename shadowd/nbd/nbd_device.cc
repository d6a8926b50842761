#include "shadowd/nbd/nbd_device.h"

#include <libnbd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "shadowd/nbd/image_args.h"

namespace vs::nbd {
namespace {

using replication::BlockDevice;
using replication::ByteRange;
using replication::MappedExtent;

// Reads and writes go out in pieces of at most this size (or the server's maximum if smaller): large
// enough to keep the link busy, small enough that a server's own limit (often 32 MiB) is never hit.
constexpr uint64_t kMaxIoBytes = uint64_t{4} << 20;
// Requests one connection keeps in flight for ReadRanges/WriteRanges: QEMU's NBD server serves 16 requests of a
// client at once (MAX_NBD_REQUESTS in nbd/server.c), and more would only queue in its socket.
constexpr size_t kMaxInFlight = 16;
// Block status and zero requests cover at most this much each: the NBD length field is 32 bits and
// some servers reject block-status counts of 4 GiB or more.
constexpr uint64_t kMaxRangeBytes = uint64_t{1} << 30;

struct HandleCloser {
  void operator()(nbd_handle* handle) const { nbd_close(handle); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

std::string At(uint64_t length, uint64_t offset) {
  return std::to_string(length) + " bytes at offset " + std::to_string(offset);
}

// libnbd's error after a failed call on `handle` (read immediately: it is per thread and the next
// libnbd call replaces it) as a Status naming what was done on which export.
Status LastError(nbd_handle* handle, std::string_view export_name, std::string_view what) {
  const int err = nbd_get_errno();
  const char* text = nbd_get_error();
  const std::string message = std::string(what) + " on " + std::string(export_name) + ": " +
                              (text != nullptr ? text : "unknown libnbd error");
  const bool connection_lost = nbd_aio_is_dead(handle) == 1 || nbd_aio_is_closed(handle) == 1 ||
                               err == ECONNRESET || err == EPIPE || err == ENOTCONN || err == ESHUTDOWN;
  if (connection_lost) return Unavailable(message);
  if (err == ENOSPC || err == EDQUOT) return ResourceExhausted(message);
  return Internal(message);
}

StatusOr<Handle> NewHandle() {
  Handle handle(nbd_create());
  if (handle == nullptr) return Internal(std::string("cannot create a libnbd handle: ") + nbd_get_error());
  return handle;
}

// Acknowledge the next segment from the server at once. QEMU 7.2's NBD server (Debian 12) leaves Nagle on and
// writes a reply in pieces (the NBD header, then the payload, or a TLS record each); the second piece waits for
// the client's ACK of the first, which Linux delays by up to 40 ms. Measured in the lab: every connection took
// ~145 ms and every block-status call ~43 ms that way, most of a small round; with quick ACKs 5-9 ms and ~1 ms.
// (QEMU fixed its side in 8.0: "nbd/server: push pending frames after sending reply".) TCP_QUICKACK does not stay
// set, so it is set again before every wait for the server. Best effort: a unix socket has no ACKs.
void QuickAck(nbd_handle* handle) {
  const int fd = nbd_aio_get_fd(handle);
  if (fd < 0) return;
  const int on = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

// One turn of libnbd's state machine, waiting as long as it takes (a dead peer is caught by the keepalives of
// FailFastOnDeadPeer); false with libnbd's error set when the connection broke.
bool PollOnce(nbd_handle* handle, int timeout_ms = -1) {
  QuickAck(handle);
  return nbd_poll(handle, timeout_ms) != -1;
}

// Waits for the command `cookie`; its own failure or a broken connection is returned as libnbd's error.
Status AwaitCommand(nbd_handle* handle, int64_t cookie, std::string_view export_name, std::string_view what) {
  if (cookie == -1) return LastError(handle, export_name, what);
  for (;;) {
    const int completed = nbd_aio_command_completed(handle, cookie);
    if (completed == 1) return Status::Ok();
    if (completed == -1 || !PollOnce(handle)) return LastError(handle, export_name, what);
  }
}

// The extents one block-status reply gave for one meta context.
struct StatusReply {
  std::string_view context;
  bool seen = false;
  std::vector<std::pair<uint64_t, uint32_t>> extents;  // (length, flags) from the request's offset on
};

int CollectExtents(void* user_data, const char* meta_context, uint64_t /*offset*/, uint32_t* entries,
                   size_t entry_count, int* /*error*/) {
  auto* reply = static_cast<StatusReply*>(user_data);
  // Other contexts negotiated on the same connection answer too; and a (buggy) server may repeat one.
  if (reply->seen || reply->context != meta_context) return 0;
  reply->seen = true;
  for (size_t i = 0; i + 1 < entry_count; i += 2) reply->extents.emplace_back(entries[i], entries[i + 1]);
  return 0;
}

class NbdDevice final : public BlockDevice {
 public:
  NbdDevice(Handle handle, std::string name, uint64_t size, bool read_only, uint64_t max_io)
      : handle_(std::move(handle)), name_(std::move(name)), size_(size), read_only_(read_only), max_io_(max_io) {}

  // An orderly disconnect, so that the server does not log an aborted client; a private qemu-nbd then
  // exits and nbd_close reaps it.
  ~NbdDevice() override { nbd_shutdown(handle_.get(), 0); }

  uint64_t size() const override { return size_; }

  StatusOr<std::vector<MappedExtent>> Map(std::string_view meta_context) override {
    const std::string context(meta_context);
    if (nbd_can_meta_context(handle_.get(), context.c_str()) != 1) {
      return FailedPrecondition("meta context '" + context + "' was not negotiated on " + name_ +
                                "; request it when connecting");
    }
    std::vector<MappedExtent> map;
    uint64_t offset = 0;
    while (offset < size_) {
      StatusReply reply{.context = meta_context};
      const uint64_t count = std::min(kMaxRangeBytes, size_ - offset);
      const nbd_extent_callback collect = {.callback = CollectExtents, .user_data = &reply};
      VS_RETURN_IF_ERROR(AwaitCommand(
          handle_.get(), nbd_aio_block_status(handle_.get(), count, offset, collect, NBD_NULL_COMPLETION, 0), name_,
          "block status of '" + context + "' for " + At(count, offset)));
      // The server may describe less than asked (we continue after it) or more (the end is clipped).
      uint64_t position = offset;
      for (auto [length, flags] : reply.extents) {
        if (position == size_) break;
        length = std::min(length, size_ - position);
        if (length == 0) continue;
        if (!map.empty() && map.back().flags == flags) {
          map.back().length += length;
        } else {
          map.push_back({.offset = position, .length = length, .flags = flags});
        }
        position += length;
      }
      if (position == offset) {
        return Internal("block status of '" + context + "' on " + name_ + " described nothing at offset " +
                        std::to_string(offset) + " (no progress)");
      }
      offset = position;
    }
    return map;
  }

  Status Read(uint64_t offset, std::span<std::byte> out) override {
    const ByteRange range{offset, out.size()};
    return ReadRanges(std::span(&range, 1), out);
  }

  Status Write(uint64_t offset, std::span<const std::byte> data) override {
    const ByteRange range{offset, data.size()};
    return WriteRanges(std::span(&range, 1), data);
  }

  Status ReadRanges(std::span<const ByteRange> ranges, std::span<std::byte> out) override {
    VS_RETURN_IF_ERROR(CheckRanges("read", ranges, out.size()));
    return Pipelined("read", ranges, [&](const ByteRange& piece, uint64_t at) {
      return nbd_aio_pread(handle_.get(), out.data() + at, piece.length, piece.offset, NBD_NULL_COMPLETION, 0);
    });
  }

  Status WriteRanges(std::span<const ByteRange> ranges, std::span<const std::byte> data) override {
    VS_RETURN_IF_ERROR(CheckRanges("write", ranges, data.size()));
    for (const ByteRange& range : ranges) VS_RETURN_IF_ERROR(CheckWritable("write", range.offset, range.length));
    return Pipelined("write", ranges, [&](const ByteRange& piece, uint64_t at) {
      return nbd_aio_pwrite(handle_.get(), data.data() + at, piece.length, piece.offset, NBD_NULL_COMPLETION, 0);
    });
  }

  Status Zero(uint64_t offset, uint64_t length) override {
    VS_RETURN_IF_ERROR(CheckRange("zero", offset, length));
    VS_RETURN_IF_ERROR(CheckWritable("zero", offset, length));
    if (nbd_can_zero(handle_.get()) != 1) return WriteZeros(offset, length);
    for (uint64_t done = 0; done < length;) {
      const uint64_t piece = std::min(kMaxRangeBytes, length - done);
      VS_RETURN_IF_ERROR(AwaitCommand(handle_.get(),
                                      nbd_aio_zero(handle_.get(), piece, offset + done, NBD_NULL_COMPLETION, 0), name_,
                                      "zero of " + At(piece, offset + done)));
      done += piece;
    }
    return Status::Ok();
  }

  Status Flush() override {
    if (read_only_) return Status::Ok();
    return AwaitCommand(handle_.get(), nbd_aio_flush(handle_.get(), NBD_NULL_COMPLETION, 0), name_, "flush");
  }

 private:
  Status CheckRange(std::string_view what, uint64_t offset, uint64_t length) const {
    if (offset > size_ || length > size_ - offset) {
      return InvalidArgument(std::string(what) + " of " + At(length, offset) + " is outside " + name_ + " (size " +
                             std::to_string(size_) + ")");
    }
    return Status::Ok();
  }

  // Every range inside the device, and their total the buffer's size.
  Status CheckRanges(std::string_view what, std::span<const ByteRange> ranges, uint64_t buffer_size) const {
    uint64_t total = 0;
    for (const ByteRange& range : ranges) {
      VS_RETURN_IF_ERROR(CheckRange(what, range.offset, range.length));
      total += range.length;  // cannot wrap: each range lies inside a device of at most 2^63 bytes
    }
    if (total != buffer_size) {
      return InvalidArgument(std::string(what) + " of " + std::to_string(ranges.size()) + " ranges on " + name_ +
                             ": they total " + std::to_string(total) + " bytes, the buffer has " +
                             std::to_string(buffer_size));
    }
    return Status::Ok();
  }

  // Issues `ranges` in pieces of at most max_io_ bytes with up to kMaxInFlight in flight; `issue(piece, at)` starts
  // one (`at`: its place in the caller's buffer) and returns libnbd's cookie, or -1. Returns once nothing is in
  // flight any more (the caller's buffer is free again) or the connection is dead (libnbd then touches no buffer).
  template <typename Issue>
  Status Pipelined(std::string_view what, std::span<const ByteRange> ranges, Issue issue) {
    struct InFlight {
      int64_t cookie;
      ByteRange piece;
    };
    std::vector<InFlight> in_flight;
    Status failure;
    size_t range = 0;
    uint64_t done_in_range = 0, at = 0;
    auto more_to_issue = [&] { return failure.ok() && range < ranges.size(); };
    while (more_to_issue() || !in_flight.empty()) {
      while (more_to_issue() && in_flight.size() < kMaxInFlight) {
        if (ranges[range].length == 0) {  // nothing to ask for (libnbd refuses empty requests)
          ++range;
          continue;
        }
        const ByteRange piece{ranges[range].offset + done_in_range,
                              std::min<uint64_t>(max_io_, ranges[range].length - done_in_range)};
        const int64_t cookie = issue(piece, at);
        if (cookie == -1) {
          failure = LastError(handle_.get(), name_, std::string(what) + " of " + At(piece.length, piece.offset));
          break;
        }
        in_flight.push_back({cookie, piece});
        at += piece.length;
        done_in_range += piece.length;
        if (done_in_range == ranges[range].length) ++range, done_in_range = 0;
      }
      // Retire what completed; the first failure is the one reported, the rest still have to finish.
      const size_t before = in_flight.size();
      std::erase_if(in_flight, [&](const InFlight& command) {
        const int completed = nbd_aio_command_completed(handle_.get(), command.cookie);
        if (completed == -1 && failure.ok()) {
          failure = LastError(handle_.get(), name_,
                              std::string(what) + " of " + At(command.piece.length, command.piece.offset));
        }
        return completed != 0;
      });
      if (in_flight.size() < before || in_flight.empty()) continue;
      if (!PollOnce(handle_.get())) {
        const ByteRange& oldest = in_flight.front().piece;
        const Status broken =
            LastError(handle_.get(), name_,
                      std::string(what) + " of " + At(oldest.length, oldest.offset) +
                          (in_flight.size() > 1 ? " (and " + std::to_string(in_flight.size() - 1) + " more in flight)" : ""));
        return failure.ok() ? broken : failure;
      }
    }
    return failure;
  }

  Status CheckWritable(std::string_view what, uint64_t offset, uint64_t length) const {
    if (!read_only_) return Status::Ok();
    return FailedPrecondition(std::string(what) + " of " + At(length, offset) + ": " + name_ + " is read-only");
  }

  // For a server that cannot zero: the zeros go over the wire after all.
  Status WriteZeros(uint64_t offset, uint64_t length) {
    const std::vector<std::byte> zeros(std::min(length, max_io_));
    for (uint64_t done = 0; done < length;) {
      const uint64_t piece = std::min<uint64_t>(zeros.size(), length - done);
      VS_RETURN_IF_ERROR(Write(offset + done, std::span(zeros).first(piece)));
      done += piece;
    }
    return Status::Ok();
  }

  const Handle handle_;
  const std::string name_;  // for messages: the uri, or the image behind a private qemu-nbd
  const uint64_t size_;
  const bool read_only_;
  const uint64_t max_io_;
};

// Wraps a connected handle, reading what the handshake told about the export.
StatusOr<std::unique_ptr<BlockDevice>> WrapConnected(Handle handle, std::string name) {
  const int64_t size = nbd_get_size(handle.get());
  if (size < 0) return LastError(handle.get(), name, "reading the export size");
  const int read_only = nbd_is_read_only(handle.get());
  if (read_only < 0) return LastError(handle.get(), name, "reading the read-only flag");
  const int64_t server_max = nbd_get_block_size(handle.get(), LIBNBD_SIZE_MAXIMUM);
  if (server_max < 0) return LastError(handle.get(), name, "reading the maximum block size");
  const uint64_t max_io = server_max > 0 ? std::min<uint64_t>(kMaxIoBytes, server_max) : kMaxIoBytes;
  return std::unique_ptr<BlockDevice>(
      std::make_unique<NbdDevice>(std::move(handle), std::move(name), size, read_only == 1, max_io));
}

// qemu's option syntax ends a value at a comma; a literal comma is written twice.
std::string EscapeOptionValue(std::string_view value) {
  std::string escaped;
  for (char c : value) {
    escaped += c;
    if (c == ',') escaped += ',';
  }
  return escaped;
}

std::vector<std::string> QemuNbdArgv(const std::string& path, std::string_view format, OpenMode mode) {
  std::vector<std::string> argv = {"qemu-nbd", "--cache=writeback"};
  switch (mode) {
    case OpenMode::kReadOnly:
      argv.insert(argv.end(), {"--read-only", "--format=" + std::string(format), path});
      break;
    case OpenMode::kReadOnlyShared:
      // qemu-nbd has no -U; force-share is only reachable as a block option.
      argv.insert(argv.end(), {"--read-only", "--image-opts",
                               "driver=" + std::string(format) + ",read-only=on,force-share=on,file.filename=" +
                                   EscapeOptionValue(path)});
      break;
    case OpenMode::kWritable:
      argv.insert(argv.end(),
                  {"--format=" + std::string(format), "--discard=unmap", "--detect-zeroes=unmap", path});
      break;
  }
  return argv;
}

// A TCP connection to another host's export fails within a few seconds of that host dying (crash, cut link)
// instead of when TCP gives up: a round reading from a dead primary held the replica keeper's lock of the VM,
// and with it the shadow host's crash promotion, for about a minute. Keepalive probes catch a peer that went
// silent while a reply was awaited; the user timeout, one whose request was never acknowledged. Best effort: a
// unix socket takes neither and needs neither.
void FailFastOnDeadPeer(nbd_handle* handle) {
  const int fd = nbd_aio_get_fd(handle);
  if (fd < 0) return;
  const int on = 1, idle_s = 2, interval_s = 1, probes = 3;
  const unsigned int user_timeout_ms = 5000;
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

// How long a connection to an export may take, handshake included. libnbd's blocking connect has no timeout:
// a round that began just as its primary crashed (the address still in the ARP cache, so SYNs go out unanswered)
// sat in connect() for the kernel's SYN retries, about a minute, holding the replica keeper's lock of the VM and
// with it the crash promotion (measured in the lab: 60 s in DECIDED).
constexpr int kConnectTimeoutMs = 5000;

// nbd_connect_uri within kConnectTimeoutMs; false with libnbd's error set, or errno ETIMEDOUT, when it fails.
bool ConnectUriWithin(nbd_handle* handle, const std::string& uri, bool* timed_out) {
  *timed_out = false;
  if (nbd_aio_connect_uri(handle, uri.c_str()) == -1) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kConnectTimeoutMs);
  while (nbd_aio_is_ready(handle) != 1) {  // ready: the handshake is done and nothing is in flight
    if (nbd_aio_is_dead(handle) == 1 || nbd_aio_is_closed(handle) == 1) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      *timed_out = true;
      return false;
    }
    if (!PollOnce(handle, static_cast<int>(left.count()))) return false;
  }
  return true;
}

}  // namespace

StatusOr<std::unique_ptr<BlockDevice>> ConnectExport(const std::string& uri,
                                                     const std::vector<std::string>& meta_contexts,
                                                     const std::optional<ExportTls>& tls) {
  VS_ASSIGN_OR_RETURN(Handle handle, NewHandle());
  // The URI's scheme picks TLS in libnbd; allowing only the kind asked for keeps a URI from turning TLS off
  // (nbd://) or on without a certificate (nbds://). No URI may name local files (tls-certificates=...).
  if (nbd_set_uri_allow_tls(handle.get(), tls ? LIBNBD_TLS_REQUIRE : LIBNBD_TLS_DISABLE) == -1 ||
      nbd_set_uri_allow_local_file(handle.get(), false) == -1) {
    return LastError(handle.get(), uri, "restricting the URI");
  }
  if (tls && nbd_set_tls_certificates(handle.get(), tls->certificates_dir.c_str()) == -1) {
    return LastError(handle.get(), uri, "loading TLS certificates from " + tls->certificates_dir);
  }
  for (const std::string& context : meta_contexts) {
    if (context.empty()) return InvalidArgument("empty meta context name requested for " + uri);
    if (nbd_add_meta_context(handle.get(), context.c_str()) == -1) {
      return LastError(handle.get(), uri, "requesting meta context '" + context + "'");
    }
  }
  bool timed_out = false;
  if (!ConnectUriWithin(handle.get(), uri, &timed_out)) {
    if (timed_out) {
      return Unavailable("connecting to NBD export " + uri + ": no answer within " +
                         std::to_string(kConnectTimeoutMs / 1000) + " s (is its host up?)");
    }
    // EPERM: a URI the restrictions above do not permit.
    const bool bad_uri = nbd_get_errno() == EINVAL || nbd_get_errno() == EPERM;
    const Status error = LastError(handle.get(), uri, "connecting");
    // A malformed or refused uri fails the same way on every retry; anything else may be a server not up yet.
    return bad_uri ? InvalidArgument(error.message()) : Unavailable(error.message());
  }
  FailFastOnDeadPeer(handle.get());
  for (const std::string& context : meta_contexts) {
    if (nbd_can_meta_context(handle.get(), context.c_str()) != 1) {
      return FailedPrecondition("NBD export " + uri + " does not offer meta context '" + context +
                                "'; check that the export was started with it (e.g. the backup job's bitmap)");
    }
  }
  return WrapConnected(std::move(handle), uri);
}

StatusOr<std::unique_ptr<BlockDevice>> OpenImage(const std::string& path, std::string_view format, OpenMode mode) {
  VS_RETURN_IF_ERROR(CheckImagePath(path, "image"));
  VS_RETURN_IF_ERROR(CheckImageFormat(format));
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return NotFound("image " + path + " does not exist");
    return Internal("cannot stat image " + path + ": " + strerrordesc_np(errno));
  }
  const std::string name = "image " + path + " (" + std::string(format) + ", private qemu-nbd)";
  VS_ASSIGN_OR_RETURN(Handle handle, NewHandle());
  if (nbd_add_meta_context(handle.get(), std::string(kBaseAllocation).c_str()) == -1) {
    return LastError(handle.get(), name, "requesting meta context 'base:allocation'");
  }
  std::vector<std::string> argv = QemuNbdArgv(path, format, mode);
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  if (nbd_connect_systemd_socket_activation(handle.get(), c_argv.data()) == -1) {
    const Status error = LastError(handle.get(), name, "starting qemu-nbd");
    return FailedPrecondition(error.message() + " (qemu-nbd's reason, e.g. a wrong format or a lock held by "
                              "another process, is on shadowd's stderr)");
  }
  return WrapConnected(std::move(handle), name);
}

}  // namespace vs::nbd
