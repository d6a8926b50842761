#include "shadowd/nbd/image_args.h"

#include <algorithm>
#include <string>

namespace vs::nbd {

Status CheckImagePath(std::string_view path, std::string_view what) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos) {
    return InvalidArgument(std::string(what) + " path must be absolute, got '" + std::string(path) + "'");
  }
  return Status::Ok();
}

Status CheckImageFormat(std::string_view format) {
  const bool plain = !format.empty() && std::all_of(format.begin(), format.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!plain) {
    return InvalidArgument("image format must be a qemu driver name such as 'raw' or 'qcow2', got '" +
                           std::string(format) + "'");
  }
  return Status::Ok();
}

}  // namespace vs::nbd
