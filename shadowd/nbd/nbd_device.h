// The libnbd implementation of replication::BlockDevice, and the two ways to get one: connect to an
// NBD export that already exists (libvirt's backup export of a running disk), or serve a local image
// through a private qemu-nbd (the shadow host's replica). This library is the only includer of
// <libnbd.h>; its errors become Status here.
//
// Ownership: the caller owns the returned device; destroying it disconnects and, for OpenImage, stops
// the private qemu-nbd (libnbd kills and reaps it). Thread-safety: none; one thread per device (libnbd
// handles are per-device, so different devices may be used from different threads).
// Failure modes: every call returns a Status whose message names the export (uri, or qemu-nbd and the
// image path) and the offset. kUnavailable when the connection could not be made or broke (retry
// later); kFailedPrecondition when the server does not offer a requested meta context, for writes to a
// read-only export and when qemu-nbd refuses an image (wrong format, locked by another user: the
// reason is on qemu-nbd's stderr, i.e. shadowd's log); kInvalidArgument for bad arguments and requests
// outside the device; kResourceExhausted when the server is out of space; kInternal for other server
// errors. Calls block without a deadline: a server that stops answering without closing the
// connection blocks the caller.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shadowd/replication/block_device.h"

namespace vs::nbd {

// The meta context every device here can map: which areas hold data and which read as zeros.
inline constexpr std::string_view kBaseAllocation = "base:allocation";

// How exports are reached. Plaintext: only nbd:// and nbd+unix:// URIs. TLS: only nbds:// (and nbds+unix://)
// URIs, with a client certificate; the server's certificate must verify against the CA and name the URI's host
// (an IP address matches an iPAddress subject alternative name).
struct ExportTls {
  // QEMU's layout (libvirt's /etc/pki/qemu, scripts/pki.sh): ca-cert.pem, client-cert.pem, client-key.pem.
  std::string certificates_dir;
};

// Connects to an existing export, e.g. "nbd://10.77.0.11:10809/vda", "nbds://10.77.0.11:10809/vda" (with
// `tls`) or "nbd+unix:///vda?socket=/run/x". A URI of the other kind than `tls` asks for is InvalidArgument;
// a failed TLS handshake (no or an untrusted certificate at either end) is Unavailable with GnuTLS's reason.
// Every entry of `meta_contexts` (e.g. "base:allocation", "qemu:dirty-bitmap:backup-vda") must be offered
// by the server, else FailedPrecondition naming the first missing one.
StatusOr<std::unique_ptr<replication::BlockDevice>> ConnectExport(const std::string& uri,
                                                                  const std::vector<std::string>& meta_contexts,
                                                                  const std::optional<ExportTls>& tls);

enum class OpenMode {
  kReadOnly,
  // Read-only, ignoring the image lock: the image is in use by a running QEMU (qemu-img's -U). Reads
  // of a disk that is being written may be inconsistent; only use it where the writer is known.
  kReadOnlyShared,
  kWritable,
};

// Serves the image at `path` (absolute; a regular file or block device) in `format` ("raw", "qcow2")
// through a private qemu-nbd started by socket activation, with "base:allocation" mapped. The server
// uses the host page cache (writeback): Flush() is what makes writes durable. (cache=none would bypass
// it but refuses images whose size is not a multiple of the host's direct-I/O alignment, e.g. on
// tmpfs.) Writable images discard zeroed areas (detect-zeroes=unmap), so zeroing frees space.
// NotFound when `path` does not exist; InvalidArgument for a relative path or a format that is not a
// plain driver name.
StatusOr<std::unique_ptr<replication::BlockDevice>> OpenImage(const std::string& path, std::string_view format,
                                                              OpenMode mode);

}  // namespace vs::nbd
