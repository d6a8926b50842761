// QemuImg: the few qemu-img operations the shadow host needs on disk images (inspect, create, overlay,
// commit, resize), each run as a `qemu-img` child with a deadline (common/subprocess.h). It implements
// ImageTool (image_tool.h, where ImageFacts is), the seam the switchover target is unit-tested through.
//
// Paths must be absolute and formats plain driver names (shadowd/nbd/image_args.h). Create and
// CreateOverlay never overwrite a file: they claim the name with O_EXCL before qemu-img writes it and
// remove it again if qemu-img fails.
//
// Ownership: holds a reference to the Clock, which must outlive it. Thread-safety: no mutable state;
// calls may run concurrently (qemu-img's own image locks serialise conflicting ones, which then fail).
// Failure modes: InvalidArgument for bad paths, formats or sizes; NotFound naming a missing image;
// AlreadyExists naming a file that Create/CreateOverlay would overwrite; DeadlineExceeded when qemu-img
// runs longer than the per-call timeout (it is killed); FailedPrecondition when Resize is told the wrong
// format; Internal with qemu-img's command line and output when it fails or prints what Info cannot read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/nbd/image_tool.h"

namespace vs::nbd {

// Reads `qemu-img info --output=json` output for the image at `path` (named in errors). Internal when
// the text is not a JSON object with a string "format" and a non-negative integer "virtual-size", or
// has a backing file name that is not a string.
StatusOr<ImageFacts> ParseImageInfo(std::string_view json_text, std::string_view path);

class QemuImg final : public ImageTool {
 public:
  QemuImg(Clock& clock, Duration per_call_timeout) : clock_(clock), timeout_(per_call_timeout) {}

  // Works on images in use by a running QEMU (-U): the answer may be stale while it runs.
  StatusOr<ImageFacts> Info(const std::string& path) const override;
  // A new qcow2 `overlay_path` on top of `backing_path`, with the backing's size.
  Status CreateOverlay(const std::string& overlay_path, const std::string& backing_path,
                       std::string_view backing_format) const override;
  // Writes the (qcow2) overlay's data into its backing file; the overlay stays as it is.
  Status Commit(const std::string& overlay_path) const;
  // Grows or shrinks the image to `new_size` bytes; shrinking drops the data beyond it. `format` must be
  // the image's actual format (checked first: resizing a qcow2 file as raw would destroy it).
  Status Resize(const std::string& path, std::string_view format, uint64_t new_size) const;
  // A new, empty image of `size` bytes (qemu rounds up to a multiple of 512).
  Status Create(const std::string& path, std::string_view format, uint64_t size) const;
  // Removes the persistent dirty bitmap `name` from the qcow2 image at `path`, which no QEMU may have open
  // (qemu-img's image lock refuses then). InvalidArgument for an empty name or one that starts with '-'.
  Status RemoveBitmap(const std::string& path, const std::string& name) const override;

 private:
  // Runs qemu-img with `args`.
  Status Run(const std::vector<std::string>& args) const;
  // Claims `path` (which must not exist), runs `args` to fill it and removes it again on failure.
  Status RunCreating(const std::vector<std::string>& args, const std::string& path) const;

  Clock& clock_;
  const Duration timeout_;
};

}  // namespace vs::nbd
