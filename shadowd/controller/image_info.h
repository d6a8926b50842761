// ImageInfo: the virtual size of a primary's disk image on THIS host, needed to create its replica of
// the same size on the shadow's host (the domain XML does not carry it). Production: `qemu-img info`
// or libvirt's virDomainGetBlockInfo; tests: a fake map.
//
// Ownership: borrowed by the controller, must outlive it. Thread-safety: called from the controller's
// thread only. Failure modes: kNotFound when there is no image at `path`; kUnavailable (retryable)
// when the image is locked or the tool could not run; the message names the path.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vs::controller {

class ImageInfo {
 public:
  virtual ~ImageInfo() = default;
  // The guest-visible size in bytes of the image at `path` (not its allocation on disk).
  virtual StatusOr<std::uint64_t> VirtualSize(const std::string& path) = 0;
};

}  // namespace vs::controller
