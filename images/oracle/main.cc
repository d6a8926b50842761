// vs-oracle: the lab's data-loss oracle on the command line (see oracle.h and
// docs/record-format.md). Exit status: 0 verdict ok, 1 violation, 2 usage or I/O error.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "images/oracle/nbd_block_reader.h"
#include "images/oracle/oracle.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitViolation = 1;
constexpr int kExitError = 2;

constexpr std::string_view kUsage = R"(usage: vs-oracle --disk PATH|URI --serial LOG [options]

Reads the test guest's record disk and serial console log and says whether any
acknowledged record was lost (format: docs/record-format.md).

  --disk PATH|URI     record disk: an image file (raw or qcow2, may belong to a running
                      domain: it is opened read-only and force-shared) or an NBD export
                      (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH)
  --format raw|qcow2  image format of a local file (default: detected)
  --serial LOG        the guest's serial console log (libvirt <log file=...>)
  --prefix            the disk is a replica that may lag: accept a disk that ends before
                      the last ACK, still require a gap-free, uncorrupted run
  --expect-boot BOOT  fail unless BOOT (8 hex digits) is the only boot id seen
  --json              print the report as JSON instead of text
  --help              show this help

Exit status: 0 verdict ok, 1 violation found, 2 usage or I/O error.
)";

struct Args {
  std::string disk;
  std::string serial;
  vs::oracle::ImageFormat format = vs::oracle::ImageFormat::kAuto;
  vs::oracle::AnalyseOptions options;
  bool json = false;
  bool help = false;
};

vs::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::optional<std::string> inline_value;  // from --name=value
    if (const std::size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      inline_value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    const auto value = [&]() -> vs::StatusOr<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) return vs::InvalidArgument(std::string(arg) + " needs a value; see --help");
      return std::string(argv[++i]);
    };
    const auto no_value = [&]() -> vs::Status {
      if (inline_value) return vs::InvalidArgument(std::string(arg) + " takes no value; see --help");
      return vs::Status::Ok();
    };
    if (arg == "--disk") {
      VS_ASSIGN_OR_RETURN(args.disk, value());
    } else if (arg == "--serial") {
      VS_ASSIGN_OR_RETURN(args.serial, value());
    } else if (arg == "--format") {
      VS_ASSIGN_OR_RETURN(const std::string name, value());
      VS_ASSIGN_OR_RETURN(args.format, vs::oracle::ParseImageFormat(name));
    } else if (arg == "--expect-boot") {
      VS_ASSIGN_OR_RETURN(args.options.expect_boot, value());
    } else if (arg == "--prefix") {
      VS_RETURN_IF_ERROR(no_value());
      args.options.prefix_mode = true;
    } else if (arg == "--json") {
      VS_RETURN_IF_ERROR(no_value());
      args.json = true;
    } else if (arg == "--help" || arg == "-h") {
      args.help = true;
    } else {
      return vs::InvalidArgument("unknown argument '" + std::string(argv[i]) + "'; see --help");
    }
  }
  if (args.help) return args;
  if (args.disk.empty()) return vs::InvalidArgument("--disk is required: name the guest's record disk image or NBD URI");
  if (args.serial.empty()) {
    return vs::InvalidArgument("--serial is required: name the guest's serial console log (libvirt <log file=...>)");
  }
  return args;
}

vs::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    return vs::NotFound("cannot open serial log '" + path + "': " + std::strerror(errno) + "; check the --serial path");
  }
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return vs::Unavailable("cannot read serial log '" + path + "': " + std::strerror(error));
    }
    text.append(buffer, static_cast<std::size_t>(got));
  }
  close(fd);
  return text;
}

vs::StatusOr<vs::oracle::Report> Run(const Args& args) {
  VS_ASSIGN_OR_RETURN(const std::string serial, ReadWholeFile(args.serial));
  VS_ASSIGN_OR_RETURN(std::unique_ptr<vs::oracle::BlockReader> disk, vs::oracle::OpenDisk(args.disk, args.format));
  return vs::oracle::Analyse(*disk, serial, args.options);
}

}  // namespace

int main(int argc, char** argv) {
  vs::StatusOr<Args> args = ParseArgs(argc, argv);
  if (!args.ok()) {
    std::cerr << "vs-oracle: " << args.status().message() << "\n";
    return kExitError;
  }
  if (args->help) {
    std::cout << kUsage;
    return kExitOk;
  }
  vs::StatusOr<vs::oracle::Report> report = Run(*args);
  if (!report.ok()) {
    std::cerr << "vs-oracle: " << report.status().message() << "\n";
    return kExitError;
  }
  std::cout << (args->json ? vs::oracle::FormatReportJson(*report) : vs::oracle::FormatReportText(*report));
  return report->ok() ? kExitOk : kExitViolation;
}
