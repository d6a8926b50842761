#include "shadowd/metrics/process_metrics.h"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>

namespace vs::metrics {
namespace {

namespace fs = std::filesystem;

StatusOr<std::string> ReadWhole(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return Unavailable("cannot read " + path.string() + " (is procfs mounted there?)");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct StatFields {
  double cpu_ticks = 0;    // utime + stime
  double start_ticks = 0;  // starttime: clock ticks after boot
};

// proc(5): "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so the fields are counted
// from the last ')'. utime, stime and starttime are fields 14, 15 and 22.
StatusOr<StatFields> ParseStat(const fs::path& path) {
  VS_ASSIGN_OR_RETURN(const std::string text, ReadWhole(path));
  const size_t comm_end = text.rfind(')');
  if (comm_end == std::string::npos) return DataLoss(path.string() + " has no '(comm)'; not a procfs stat file");
  std::istringstream fields(text.substr(comm_end + 1));
  std::string field;
  StatFields out;
  for (int number = 3; number <= 22 && fields >> field; ++number) {
    if (number == 14 || number == 15 || number == 22) {
      double ticks = 0;
      std::istringstream value(field);
      if (!(value >> ticks)) return DataLoss(path.string() + " field " + std::to_string(number) + " is not a number");
      (number == 22 ? out.start_ticks : out.cpu_ticks) += ticks;
    }
    if (number == 22) return out;
  }
  return DataLoss(path.string() + " has fewer than 22 fields; not a procfs stat file");
}

StatusOr<double> ResidentPages(const fs::path& path) {
  VS_ASSIGN_OR_RETURN(const std::string text, ReadWhole(path));
  std::istringstream fields(text);
  double size = 0, resident = 0;
  if (!(fields >> size >> resident)) return DataLoss(path.string() + " does not start with two numbers");
  return resident;
}

StatusOr<double> BootTime(const fs::path& path) {
  VS_ASSIGN_OR_RETURN(const std::string text, ReadWhole(path));
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string key;
    double seconds = 0;
    if (fields >> key && key == "btime" && fields >> seconds) return seconds;
  }
  return DataLoss(path.string() + " has no 'btime' line");
}

StatusOr<double> OpenFds(const fs::path& path) {
  std::error_code ec;
  double count = 0;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) ++count;
  if (ec) return Unavailable("cannot list " + path.string() + ": " + ec.message());
  // Counts the descriptor the listing is read through, as the Go client does.
  return count;
}

MetricFamily One(const char* name, const char* help, MetricFamily::Type type, double value) {
  return MetricFamily{name, help, type, {{{}, value}}};
}

}  // namespace

StatusOr<std::vector<MetricFamily>> ProcessMetrics(const fs::path& proc) {
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
  VS_ASSIGN_OR_RETURN(const StatFields stat, ParseStat(proc / "self" / "stat"));
  VS_ASSIGN_OR_RETURN(const double resident_pages, ResidentPages(proc / "self" / "statm"));
  VS_ASSIGN_OR_RETURN(const double open_fds, OpenFds(proc / "self" / "fd"));
  VS_ASSIGN_OR_RETURN(const double boot_time, BootTime(proc / "stat"));
  using Type = MetricFamily::Type;
  return std::vector<MetricFamily>{
      One("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Type::kCounter,
          stat.cpu_ticks / ticks_per_second),
      One("process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge,
          resident_pages * page_bytes),
      One("process_open_fds", "Number of open file descriptors.", Type::kGauge, open_fds),
      One("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", Type::kGauge,
          boot_time + stat.start_ticks / ticks_per_second),
  };
}

}  // namespace vs::metrics
