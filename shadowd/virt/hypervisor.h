// Hypervisor: shadowd's seam to one libvirtd (the local one or a peer's, by URI).
//
// This interface is how the rest of virt-shadow talks to libvirt; libvirt_hypervisor.cc is its only
// implementation and the only file in the project that includes libvirt headers, so core logic is tested
// against fakes and every virError is translated to a vs::Status in one place (libvirt_error.cc).
//
// Ownership: a Hypervisor owns its connection and closes it on destruction.
// Thread-safety: all methods may be called concurrently from several threads (libvirt connections are
// thread-safe); a MigrateLive call blocks its caller until the migration ends.
// Failure modes: every call returns a Status; kUnavailable means the daemon could not be reached (retryable),
// kNotFound an unknown domain; libvirt's message is kept in the Status text.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs::virt {

enum class DomainState { kNoState, kRunning, kBlocked, kPaused, kShutdown, kShutoff, kCrashed, kSuspended };
std::string_view DomainStateName(DomainState state);

struct MigrationOptions {
  // Switch to postcopy as soon as libvirt accepts it (it refuses while a storage copy is still syncing);
  // without it the migration stays precopy.
  bool postcopy = true;
  // Memory and storage bandwidth cap in MiB/s during precopy; 0 = unlimited. libvirt 9.0 applies it to the
  // storage mirror too, and it cannot be changed once the migration runs.
  uint64_t precopy_bandwidth_mibs = 0;
  // Copy every disk to the destination (which must have images of the same size at the same paths).
  bool copy_storage_all = false;
  // Make the domain persistent on the destination and undefine it on the source.
  bool move_definition = true;
  // How long to wait for the whole migration; it is aborted after that.
  std::chrono::seconds timeout{300};
};

struct MigrationResult {
  Duration elapsed{0};                         // migrate call start to return, measured by the caller's clock
  std::optional<Duration> postcopy_started_after;  // when postcopy was accepted, from the start
  // From libvirt's job-completed event on the source, when it arrived:
  std::optional<uint64_t> downtime_ms;
  std::optional<uint64_t> memory_bytes_processed;
  std::optional<uint64_t> disk_bytes_processed;
  std::optional<uint64_t> postcopy_page_requests;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  virtual const std::string& uri() const = 0;
  virtual StatusOr<std::string> Hostname() = 0;

  virtual StatusOr<std::vector<std::string>> ListDomainNames() = 0;  // running and defined
  // Defines (or redefines) a persistent domain from XML; returns its name.
  virtual StatusOr<std::string> DefineDomain(const std::string& xml) = 0;
  virtual Status StartDomain(const std::string& name) = 0;
  // Pulls the plug (virDomainDestroy); OK if the domain is not running.
  virtual Status DestroyDomain(const std::string& name) = 0;
  // Removes the definition with its checkpoint and snapshot metadata; OK if it does not exist.
  virtual Status UndefineDomain(const std::string& name) = 0;
  virtual StatusOr<DomainState> GetDomainState(const std::string& name) = 0;
  virtual StatusOr<std::string> GetDomainXml(const std::string& name) = 0;

  // Live-migrates `name` to the libvirtd at `dest_uri` (peer to peer) and returns what it measured.
  virtual StatusOr<MigrationResult> MigrateLive(const std::string& name, const std::string& dest_uri,
                                                const MigrationOptions& options) = 0;
};

// Process-wide libvirt initialisation plus the thread that runs libvirt's default event loop (needed for
// domain events such as job-completed). Construct exactly one, in the composition root, before connecting;
// it must outlive every Hypervisor. Stopping it joins the thread.
class LibvirtRuntime {
 public:
  static StatusOr<std::unique_ptr<LibvirtRuntime>> Start();
  virtual ~LibvirtRuntime() = default;
  // Opens a connection to `uri` (e.g. qemu+tcp://10.77.0.11/system). `clock` must outlive the connection.
  virtual StatusOr<std::unique_ptr<Hypervisor>> Connect(const std::string& uri, Clock& clock) = 0;
};

}  // namespace vs::virt
