// BenchLab: what the lab benchmarks (switchover_bench, hang_study, replication_bench) share: the lab opened
// (inventory read, one libvirt connection per host), the bench's own domains and images found by their name
// prefix and removed, and the die-on-error helpers, so that every bench fails the same way: one line
// "<tool>: <what>" on stderr, its leftovers removed, exit status 1. A benchmark is run by hand and has nobody
// to return an error to; a failure it cannot measure through ends the run.
//
// Ownership: a BenchLab owns the libvirt runtime and the connections (conn(i) is hosts()[i]); the domains and
// images it removes are the ones named <prefix>* on the lab hosts, never any other.
// Thread-safety: none; one bench thread uses it (Die calls std::exit).
// Failure modes: the constructor dies when the lab is not up (no inventory), libvirt or a host does not
// answer, or the lab has fewer hosts than the bench needs. CleanUp is best effort: a domain or file it cannot
// remove is left, and the next run's CleanUp tries again.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/virt/hypervisor.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {

class BenchLab {
 public:
  struct Options {
    std::string tool;      // the bench's name, the start of every message: "switchover_bench"
    // The name prefix of the bench's domains and images ("swb-"). Empty: the bench removes its own (through
    // its TestGuests) and CleanUp touches nothing.
    std::string prefix;
    size_t min_hosts = 3;
    std::function<void()> on_die;  // extra tidying when it dies, after CleanUp (e.g. `lab.sh shape off`)
  };

  // Opens the lab: reads the inventory and connects to every host (in that order, so that a lab that is
  // down says so rather than failing on a connection), then checks that there are at least min_hosts. Dies
  // when any of it fails. Does not clean up: the bench decides when (usually first thing).
  explicit BenchLab(Options options);
  BenchLab(const BenchLab&) = delete;
  BenchLab& operator=(const BenchLab&) = delete;

  const std::vector<LabHost>& hosts() const { return hosts_; }
  virt::Hypervisor& conn(size_t i) const { return *conns_[i]; }
  // Dials hosts()[i] again (after a crash and revival of that host the old connection is dead). Dies on failure.
  void Reconnect(size_t i);

  // Whether `name` (a domain, or an image's file name) belongs to this bench: it starts with the prefix.
  bool IsOwn(const std::string& name) const;

  // Removes every domain and image of this bench on every host: the guests first; then it waits, up to 120 s,
  // for shadowd to release their shadows (it does so after its grace time, which a lab may set long or short:
  // a fixed sleep would be too short for one and waste time on the other), removes the shadows still there,
  // then the images. No wait when there was no guest to remove.
  void CleanUp() const;
  // Removes, on every host, the files of the image directory whose names start with `name_prefix` (e.g.
  // "swb-vs-1." for one guest's). An empty `name_prefix` removes nothing.
  void RemoveImages(const std::string& name_prefix) const;

  // Prints "<tool>: <what>", cleans up, runs on_die, exits 1.
  [[noreturn]] void Die(const std::string& what) const;
  // The value, or Die with "<what>: <status>".
  template <typename T>
  T Must(StatusOr<T> value, const std::string& what) const {
    if (!value.ok()) Die(what + ": " + value.status().ToString());
    return std::move(*value);
  }
  void Must(const Status& status, const std::string& what) const;
  // Runs a shell command; Die with its exit code and output when that is not 0.
  void MustRun(const std::string& command) const;

 private:
  Options options_;
  std::vector<LabHost> hosts_;
  std::unique_ptr<virt::LibvirtRuntime> runtime_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  std::vector<std::unique_ptr<virt::Hypervisor>> conns_;
};

// The median of the known values (NaN = not measured, left out); NaN when there is none, so that a missing
// figure prints as "nan" instead of passing for a measured 0.
double Median(std::vector<double> values);

// A number field of a SwitchoverRecord as protobuf's JSON mapping writes it: int64 as a string, bool as
// true/false (1/0), other numbers as numbers; proto3 leaves a field out when it is 0 (false), so absent is 0.
double RecordField(const nlohmann::json& record, const char* key);

}  // namespace vs::lab
