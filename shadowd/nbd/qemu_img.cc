#include "shadowd/nbd/qemu_img.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "shadowd/nbd/image_args.h"

namespace vs::nbd {
namespace {

Status CheckExists(const std::string& path, std::string_view what) {
  struct stat info;
  if (stat(path.c_str(), &info) == 0) return Status::Ok();
  if (errno == ENOENT || errno == ENOTDIR) return NotFound(std::string(what) + " " + path + " does not exist");
  return Internal("cannot stat " + std::string(what) + " " + path + ": " + strerrordesc_np(errno));
}

Status CheckSize(uint64_t size, const std::string& path) {
  if (size == 0) return InvalidArgument("size for image " + path + " must be positive, got 0");
  return Status::Ok();
}

// The optional string field `key`; absent is empty.
StatusOr<std::string> OptionalString(const nlohmann::json& info, const char* key, std::string_view path) {
  const auto it = info.find(key);
  if (it == info.end()) return std::string();
  if (!it->is_string()) return Internal("qemu-img info of " + std::string(path) + ": '" + key + "' is not a string");
  return it->get<std::string>();
}

}  // namespace

StatusOr<ImageFacts> ParseImageInfo(std::string_view json_text, std::string_view path) {
  const std::string where = "qemu-img info of " + std::string(path);
  const nlohmann::json info = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!info.is_object()) {
    return Internal(where + " did not print a JSON object: " + std::string(json_text.substr(0, 200)));
  }
  ImageFacts facts;
  const auto format = info.find("format");
  if (format == info.end() || !format->is_string() || format->get<std::string>().empty()) {
    return Internal(where + " has no 'format' string");
  }
  facts.format = format->get<std::string>();
  const auto size = info.find("virtual-size");
  if (size == info.end() || !size->is_number_unsigned()) {
    return Internal(where + " has no non-negative integer 'virtual-size'");
  }
  facts.virtual_size = size->get<uint64_t>();
  if (const auto actual = info.find("actual-size"); actual != info.end() && actual->is_number_unsigned()) {
    facts.allocated_bytes = actual->get<uint64_t>();
  }
  // full-backing-filename is the name resolved against the image's directory; qemu-img omits it when
  // it cannot resolve the name, and then the name as stored is all there is.
  VS_ASSIGN_OR_RETURN(facts.backing_file, OptionalString(info, "full-backing-filename", path));
  if (facts.backing_file.empty()) {
    VS_ASSIGN_OR_RETURN(facts.backing_file, OptionalString(info, "backing-filename", path));
  }
  // qcow2: {"format-specific": {"type": "qcow2", "data": {"bitmaps": [{"name": ..., "flags": [...]}, ...]}}}
  if (const auto specific = info.find("format-specific"); specific != info.end() && specific->is_object()) {
    if (const auto data = specific->find("data"); data != specific->end() && data->is_object()) {
      if (const auto bitmaps = data->find("bitmaps"); bitmaps != data->end() && bitmaps->is_array()) {
        for (const auto& bitmap : *bitmaps) {
          const auto name = bitmap.is_object() ? bitmap.find("name") : bitmap.end();
          if (name == bitmap.end() || !name->is_string()) return Internal(where + " lists a bitmap without a name");
          facts.bitmaps.push_back(name->get<std::string>());
        }
      }
    }
  }
  return facts;
}

StatusOr<ImageFacts> QemuImg::Info(const std::string& path) const {
  VS_RETURN_IF_ERROR(CheckImagePath(path, "image"));
  VS_RETURN_IF_ERROR(CheckExists(path, "image"));
  VS_ASSIGN_OR_RETURN(ProcessResult result,
                      RunProcess({"qemu-img", "info", "--output=json", "-U", path}, timeout_, clock_));
  if (result.exit_code != 0) {
    while (!result.output.empty() && std::isspace(static_cast<unsigned char>(result.output.back()))) {
      result.output.pop_back();
    }
    return Internal("qemu-img info of " + path + " exited with status " + std::to_string(result.exit_code) + ": " +
                    result.output);
  }
  return ParseImageInfo(result.output, path);
}

Status QemuImg::CreateOverlay(const std::string& overlay_path, const std::string& backing_path,
                              std::string_view backing_format) const {
  VS_RETURN_IF_ERROR(CheckImagePath(overlay_path, "overlay"));
  VS_RETURN_IF_ERROR(CheckImagePath(backing_path, "backing file"));
  VS_RETURN_IF_ERROR(CheckImageFormat(backing_format));
  VS_RETURN_IF_ERROR(CheckExists(backing_path, "backing file"));
  return RunCreating(
      {"create", "-q", "-f", "qcow2", "-b", backing_path, "-F", std::string(backing_format), overlay_path},
      overlay_path);
}

Status QemuImg::Commit(const std::string& overlay_path) const {
  VS_RETURN_IF_ERROR(CheckImagePath(overlay_path, "overlay"));
  VS_RETURN_IF_ERROR(CheckExists(overlay_path, "overlay"));
  return Run({"commit", "-q", "-d", "-f", "qcow2", overlay_path});
}

Status QemuImg::RemoveBitmap(const std::string& path, const std::string& name) const {
  VS_RETURN_IF_ERROR(CheckImagePath(path, "image"));
  if (name.empty() || name.front() == '-') {
    return InvalidArgument("bitmap name '" + name + "' of " + path + ": empty or starting with '-'");
  }
  VS_RETURN_IF_ERROR(CheckExists(path, "image"));
  return Run({"bitmap", "--remove", "-f", "qcow2", path, name});
}

Status QemuImg::Resize(const std::string& path, std::string_view format, uint64_t new_size) const {
  VS_RETURN_IF_ERROR(CheckImageFormat(format));
  VS_RETURN_IF_ERROR(CheckSize(new_size, path));
  VS_ASSIGN_OR_RETURN(ImageFacts facts, Info(path));
  if (facts.format != format) {
    return FailedPrecondition("image " + path + " is " + facts.format + ", not " + std::string(format) +
                              "; resize it as " + facts.format);
  }
  std::vector<std::string> args = {"resize", "-q", "-f", std::string(format)};
  // qemu-img demands --shrink so that nobody drops data by accident; the caller asked for this size.
  if (new_size < facts.virtual_size) args.push_back("--shrink");
  args.insert(args.end(), {path, std::to_string(new_size)});
  return Run(args);
}

Status QemuImg::Create(const std::string& path, std::string_view format, uint64_t size) const {
  VS_RETURN_IF_ERROR(CheckImagePath(path, "image"));
  VS_RETURN_IF_ERROR(CheckImageFormat(format));
  VS_RETURN_IF_ERROR(CheckSize(size, path));
  return RunCreating({"create", "-q", "-f", std::string(format), path, std::to_string(size)}, path);
}

Status QemuImg::Run(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunChecked(argv, timeout_, clock_);
}

Status QemuImg::RunCreating(const std::vector<std::string>& args, const std::string& path) const {
  // O_EXCL makes "does not exist yet" and "is ours now" one step; qemu-img then writes over our empty file.
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists(path + " already exists; refusing to overwrite it");
    return Internal("cannot create " + path + ": " + strerrordesc_np(errno));
  }
  close(fd);
  Status status = Run(args);
  if (!status.ok()) unlink(path.c_str());
  return status;
}

}  // namespace vs::nbd
