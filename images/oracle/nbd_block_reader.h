// Opens a real disk for the oracle: a local image file (raw or qcow2) or an NBD export.
//
// A local image is served by a private `qemu-nbd` child started through libnbd's systemd
// socket activation, opened read-only with force-share=on so that the disk of a RUNNING domain
// (write-locked by QEMU) can be read. The child lives as long as the returned reader and is
// reaped when it is destroyed. An nbd:// or nbd+unix:// URI is connected to directly (e.g. a
// replica's export).
//
// Thread-safety: a reader is used by one thread at a time. Failure modes: OpenDisk returns
// InvalidArgument for a bad format name or combination, NotFound for a missing file and
// Unavailable when qemu-nbd or the NBD server cannot be reached; ReadAt returns Unavailable on
// an NBD error.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "images/oracle/block_reader.h"

namespace vs::oracle {

enum class ImageFormat { kAuto, kRaw, kQcow2 };

// "raw" or "qcow2".
StatusOr<ImageFormat> ParseImageFormat(std::string_view name);

// `disk` is a path or an nbd:// / nbd+unix:// URI. kAuto detects qcow2 by its magic bytes and
// treats anything else as raw (safe here: a raw record disk starts with the VSHDR header or
// zeros, never with the qcow2 magic); an NBD export is always read as raw.
StatusOr<std::unique_ptr<BlockReader>> OpenDisk(const std::string& disk, ImageFormat format);

}  // namespace vs::oracle
