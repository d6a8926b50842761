// ImageTool: the image operations the switchover target runs on this host's files (inspect an image's
// bitmaps, put an overlay on a replica, remove a bitmap). QemuImg (qemu_img.h) is the implementation.
//
// Why an interface: the target (shadowd/switchover/switchover_target.h) is otherwise tested only in the lab,
// because QemuImg runs the real qemu-img. Behind this seam its unit tests script the images instead
// (tests/unit/switchover/switchover_target_test.cc). It holds only what the target calls; add a method
// when a caller that is tested against a fake needs it, not before.
//
// The contracts are QemuImg's: absolute paths, plain format names; CreateOverlay never overwrites a file
// (AlreadyExists). Thread-safety: implementations may be called concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vs::nbd {

struct ImageFacts {
  std::string format;        // "raw", "qcow2", ...
  uint64_t virtual_size = 0;  // bytes the guest sees
  // The backing file as qemu resolves it (absolute when qemu-img could resolve it); empty for none.
  std::string backing_file;
  uint64_t allocated_bytes = 0;  // "actual-size": what the file takes on the host (0 when not reported)
  std::vector<std::string> bitmaps;  // qcow2: the persistent dirty bitmaps stored in the image, by name
  bool operator==(const ImageFacts&) const = default;
};

class ImageTool {
 public:
  virtual ~ImageTool() = default;
  // Works on images in use by a running QEMU: the answer may be stale while it runs.
  virtual StatusOr<ImageFacts> Info(const std::string& path) const = 0;
  // A new qcow2 `overlay_path` on top of `backing_path`, with the backing's size.
  virtual Status CreateOverlay(const std::string& overlay_path, const std::string& backing_path,
                               std::string_view backing_format) const = 0;
  // Removes the persistent dirty bitmap `name` from the qcow2 image at `path`, which no QEMU may have open.
  virtual Status RemoveBitmap(const std::string& path, const std::string& name) const = 0;
};

}  // namespace vs::nbd
