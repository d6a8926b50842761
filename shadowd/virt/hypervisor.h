// Hypervisor: shadowd's seam to one libvirtd (the local one or a peer's, by URI).
//
// This interface is how the rest of virt-shadow talks to libvirt; libvirt_hypervisor.cc is its only
// implementation and the only file in the project that includes libvirt headers, so core logic is tested
// against fakes and every virError is translated to a vs::Status in one place (libvirt_error.cc).
//
// Ownership: a Hypervisor owns its connection and closes it on destruction.
// Thread-safety: all methods may be called concurrently from several threads (libvirt connections are
// thread-safe); MigrateLive and BlockCommitActive block their caller until the job ends.
// Failure modes: every call returns a Status; kUnavailable means the daemon could not be reached (retryable),
// kNotFound an unknown domain; libvirt's message is kept in the Status text. A connection that libvirtd closed
// (restarted, keepalive timed out) is opened again by the next call, at most once a second; a call that was
// running on it fails, and domain events in between are lost (WatchDomains' subscription moves along).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
  // Allow the switch to postcopy (VIR_MIGRATE_POSTCOPY); when and whether it happens is `switch_to_postcopy`'s
  // decision. Without it the migration stays precopy.
  bool postcopy = true;
  // Asked about every 100 ms while the migration runs (postcopy only), with the time since MigrateLive started,
  // on MigrateLive's calling thread. Once it has returned true MigrateLive asks libvirt to switch to postcopy at
  // every poll until libvirt accepts (it refuses until the first precopy pass and the storage mirror's first
  // sync are done; those refusals are expected and not errors). Empty: switch as soon as libvirt accepts.
  std::function<bool(Duration since_start)> switch_to_postcopy;
  // Memory and storage bandwidth cap in MiB/s during precopy; 0 = unlimited. libvirt 9.0 applies it to the
  // storage mirror too, and it cannot be changed once the migration runs.
  uint64_t precopy_bandwidth_mibs = 0;
  // Copy every disk to the destination (which must have images of the same size at the same paths).
  bool copy_storage_all = false;
  // Copy only the top layer of each disk (VIR_MIGRATE_NON_SHARED_INC): the destination must already have the
  // backing chain at the paths the domain XML names, and a qcow2 top image over it at the top's path.
  // Excludes copy_storage_all.
  bool copy_storage_incremental = false;
  // Make the domain persistent on the destination and undefine it on the source.
  bool move_definition = true;
  // How long to wait for the whole migration; it is aborted after that.
  std::chrono::seconds timeout{300};
  // Migrate with QEMU's native TLS (VIR_MIGRATE_TLS) for memory and the storage mirror, with qemu.conf's
  // migrate_tls_x509_* certificates at both ends.
  bool tls = false;
  // Asked every 100 ms until the postcopy switch is requested: true aborts the migration (virDomainAbortJob);
  // MigrateLive then returns kAborted and the domain stays on the source. Empty: never.
  std::function<bool()> cancel;
};

struct MigrationResult {
  Duration elapsed{0};                         // migrate call start to return, measured by the caller's clock
  std::optional<Duration> postcopy_requested_after;  // when switch_to_postcopy first said yes (empty: first poll)
  std::optional<Duration> postcopy_started_after;    // when libvirt accepted the switch, from the start
  // How long after the migrate call returned libvirt's job-completed event arrived (zero: before); empty when it
  // did not arrive within the wait (3 s), and then the figures below are empty too.
  std::optional<Duration> completed_event_lag;
  // From libvirt's job-completed event of the migration on the source (not another job's, e.g. a backup's end):
  std::optional<uint64_t> downtime_ms;
  std::optional<uint64_t> memory_bytes_processed;
  std::optional<uint64_t> disk_bytes_processed;
  std::optional<uint64_t> postcopy_page_requests;
};

// What libvirt reports about a migration once it has ended: its job-completed event on the source, or the
// completed-job statistics it keeps on a host. A field libvirt left out is empty.
struct MigrationStats {
  std::optional<uint64_t> downtime_ms;
  std::optional<uint64_t> memory_bytes_processed;
  std::optional<uint64_t> disk_bytes_processed;
  std::optional<uint64_t> postcopy_page_requests;
  // AwaitOutgoingMigration asked for the postcopy switch and libvirt accepted it (not from the event).
  bool postcopy_switch_accepted = false;
};

// A snapshot of the outgoing migration job of a domain (libvirt's job stats on the source). Fields libvirt
// does not report (yet) are 0.
struct MigrationProgress {
  bool active = false;  // an outgoing migration of the domain runs (a backup job does not count)
  uint64_t memory_remaining_bytes = 0;
  uint64_t memory_total_bytes = 0;
  uint64_t memory_dirty_rate_bytes_per_s = 0;  // the guest's page dirtying rate times the page size
  uint64_t disk_remaining_bytes = 0;            // storage still to mirror (copy_storage_*)
  uint64_t data_remaining_bytes = 0;            // memory + disk
};

// One disk of a disk-only external snapshot: from the snapshot on, the domain writes to a new qcow2 overlay at
// `overlay_path` whose backing file is the disk's current image, which stays frozen.
struct SnapshotOverlay {
  std::string target;        // <target dev=...>, e.g. "vda"
  std::string overlay_path;  // must not exist yet; libvirt creates it on the domain's host
};

struct NodeCapacity {
  int cpus = 0;                      // host CPUs (libvirt's node info)
  uint64_t memory_kib = 0;           // host memory
  int running_vcpus = 0;             // sum over running domains
  uint64_t running_memory_kib = 0;   // sum over running domains (their current memory)
};

enum class ImageFormat { kRaw, kQcow2 };

// A pull-mode backup (libvirt's virDomainBackupBegin): QEMU exports a frozen point-in-time view of each
// listed disk over NBD on TCP, export name = the disk's target ("vda"); for an incremental backup the
// export also carries the meta context "qemu:dirty-bitmap:backup-<target>" with the blocks written since
// `incremental_from`. Guest writes made while the export is open go to `<source>.vs-scratch` files that
// libvirt creates and deletes.
struct BackupDisk {
  std::string target;       // <target dev=...>, a <disk device='disk'> with a file source
  std::string source_path;  // its <source file=...>; the scratch file goes next to it
  // Gets a bitmap in the new checkpoint (qcow2 only: raw images cannot keep persistent bitmaps).
  bool join_checkpoint = true;
  // Exported with only the changes since `incremental_from` (else whole: backupmode='full').
  bool incremental = true;
};
struct PullBackupRequest {
  std::string domain;
  std::vector<BackupDisk> disks;
  std::string incremental_from;              // empty: full backup
  std::string new_checkpoint;                // empty: no checkpoint is created
  std::string listen_address;                // the NBD server's address, e.g. "10.77.0.11"
  int port = 0;                              // libvirt 9.0 needs an explicit TCP port
  // Serve the exports with TLS (<server tls='yes'>): QEMU's certificates and whether it verifies its clients'
  // are qemu.conf's backup_tls_x509_* settings; libvirt refuses the job when they are missing.
  bool tls = false;
};
inline constexpr std::string_view kScratchSuffix = ".vs-scratch";

// What the host can see of a guest doing work, for the check after a switchover (which of these count as
// progress, and why, is in shadowd/switchover/guest_check.h). The counters are QEMU's since its process started
// on this host, summed over every disk (block.N.*) and every interface (net.N.*) libvirt reports; a migrated
// domain's counters start again at zero on the destination, so compare samples of one host only.
enum class AgentPing {
  kNoChannel,  // the domain has no guest-agent channel (org.qemu.guest_agent.0)
  kAnswered,   // guest-ping was answered
  kSilent,     // it has a channel, but the agent did not answer (not connected, timed out, failed)
  kNotAsked,   // the domain does not run (libvirt refuses agent commands then); channel unknown
};
struct GuestActivity {
  DomainState state = DomainState::kNoState;
  uint64_t block_read_requests = 0;
  uint64_t block_write_requests = 0;
  uint64_t block_read_bytes = 0;
  uint64_t block_write_bytes = 0;
  uint64_t net_rx_packets = 0;  // received by the guest (libvirt reports interfaces from the guest's side)
  uint64_t net_tx_packets = 0;  // sent by the guest
  AgentPing agent = AgentPing::kNotAsked;
  std::string agent_error;  // kSilent, kNotAsked: why there was no answer
};

// A domain lifecycle or metadata change seen by libvirtd.
struct DomainEvent {
  enum class Kind { kDefined, kUndefined, kStarted, kStopped, kSuspended, kResumed, kMetadataChanged, kOther };
  Kind kind = Kind::kOther;
  std::string name;
  std::string uuid;
  int libvirt_detail = 0;  // libvirt's detail code (e.g. why it stopped), for logs
};
std::string_view DomainEventKindName(DomainEvent::Kind kind);

// Keeps a WatchDomains registration alive; destroying it stops the callbacks (and waits for a running one).
class Subscription {
 public:
  virtual ~Subscription() = default;
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
  // Pauses the vCPUs of a running domain (virDomainSuspend); QEMU completes in-flight block requests before it
  // returns, so a paused domain writes nothing more. OK if it is already paused; kFailedPrecondition when it
  // does not run; kNotFound for an unknown domain.
  virtual Status SuspendDomain(const std::string& name) = 0;
  // Resumes a paused domain (virDomainResume). OK if it already runs; kFailedPrecondition when it does not run.
  virtual Status ResumeDomain(const std::string& name) = 0;
  // The running domain's vCPU count, hot-plugged or unplugged (virDomainSetVcpusFlags, AFFECT_LIVE): at most its
  // <vcpu> maximum. kFailedPrecondition-like libvirt errors when it does not run or the count is out of range.
  virtual Status SetVcpusLive(const std::string& name, uint32_t vcpus) = 0;
  // The running domain's memory through its balloon (virDomainSetMemoryFlags, AFFECT_LIVE): at most its <memory>.
  // libvirt's error when the domain has no balloon or does not run.
  virtual Status SetMemoryLive(const std::string& name, uint64_t memory_kib) = 0;
  // Removes the definition with its checkpoint and snapshot metadata; OK if it does not exist.
  virtual Status UndefineDomain(const std::string& name) = 0;
  virtual StatusOr<DomainState> GetDomainState(const std::string& name) = 0;
  virtual StatusOr<std::string> GetDomainXml(const std::string& name) = 0;

  virtual StatusOr<NodeCapacity> GetNodeCapacity() = 0;

  // The <metadata> child element in namespace `ns_uri`, or nullopt when the domain has none.
  virtual StatusOr<std::optional<std::string>> GetMetadata(const std::string& name, const std::string& ns_uri) = 0;
  // Sets (or, with an empty `xml`, removes) that element, under prefix `key`, in the persistent definition and,
  // when the domain runs, in the live one. libvirt emits a metadata-change event; no hook runs.
  virtual Status SetMetadata(const std::string& name, const std::string& ns_uri, const std::string& key,
                             const std::string& xml) = 0;

  // Images on this libvirtd's host, through a transient directory storage pool over the image's folder (so it
  // works on a peer over qemu+tcp). CreateImage is idempotent: an existing image of the same virtual size is
  // kept (AlreadyExists if its size differs). DeleteImage is OK when the image is gone.
  virtual Status CreateImage(const std::string& path, uint64_t virtual_size_bytes, ImageFormat format) = 0;
  virtual Status DeleteImage(const std::string& path) = 0;
  virtual StatusOr<uint64_t> ImageVirtualSize(const std::string& path) = 0;

  // Starts a pull-mode backup (and the new checkpoint, atomically with it). kDataLoss when the bitmap of
  // `incremental_from` is unusable (QEMU was killed: its bitmaps reload as inconsistent), kNotFound when
  // that checkpoint does not exist; kAborted when another job runs on the domain.
  virtual Status BeginPullBackup(const PullBackupRequest& request) = 0;
  // The running backup job's XML, or nullopt when the domain has none.
  virtual StatusOr<std::optional<std::string>> GetBackupXml(const std::string& domain) = 0;
  // Ends the backup job (for pull mode this is how a backup finishes). OK when none runs.
  virtual Status EndBackup(const std::string& domain) = 0;
  // The domain's checkpoints, oldest first.
  virtual StatusOr<std::vector<std::string>> ListCheckpoints(const std::string& domain) = 0;
  // Deletes a checkpoint and its bitmaps; when QEMU lost the bitmaps (after a SIGKILL) only libvirt's
  // metadata is left, and that is deleted instead. OK when it does not exist.
  virtual Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) = 0;
  // Removes the persistent dirty bitmap `bitmap` of disk `target` of the running `domain` when libvirt has no
  // checkpoint of that name (one left in the image by another host: checkpoint metadata does not migrate, the
  // bitmaps do). libvirt has no call for that, and QMP would taint the domain, so the bitmap is adopted as a
  // checkpoint (redefined) and that checkpoint deleted, which removes the bitmap from every layer. kAlreadyExists
  // when this libvirt has a checkpoint of that name (it is in use here: not touched); otherwise libvirt's error.
  virtual Status DiscardForeignBitmap(const std::string& domain, const std::string& target,
                                      const std::string& bitmap) = 0;
  // Checkpoint metadata held only while a round starts (a Nova instance's: Nova undefines a stopped domain without
  // VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA, which libvirt refuses while the domain has checkpoints; docs/nova.md).
  // RedefineCheckpoint makes libvirt know checkpoint `name` again over the bitmaps of that name of disks `targets`
  // (REDEFINE; they must exist in QEMU, or the backup that uses it fails); kAlreadyExists when it is known.
  // DeleteCheckpointMetadata forgets it in libvirt only: its bitmaps stay. OK when libvirt has no such checkpoint.
  virtual Status RedefineCheckpoint(const std::string& domain, const std::string& name,
                                    const std::vector<std::string>& targets) = 0;
  virtual Status DeleteCheckpointMetadata(const std::string& domain, const std::string& name) = 0;

  // Calls `on_event` for every domain event of this connection until the Subscription is destroyed.
  // The callback runs on libvirt's event-loop thread (LibvirtRuntime): it must be quick and must not call back
  // into this Hypervisor synchronously (post the work to the daemon's own loop instead).
  virtual StatusOr<std::unique_ptr<Subscription>> WatchDomains(std::function<void(const DomainEvent&)> on_event) = 0;

  // Live-migrates `name` to the libvirtd at `dest_uri` (peer to peer) and returns what it measured.
  // kInvalidArgument when both copy_storage_all and copy_storage_incremental are set; kDeadlineExceeded when
  // it was aborted after options.timeout; otherwise libvirt's error (the domain then stays on the source).
  virtual StatusOr<MigrationResult> MigrateLive(const std::string& name, const std::string& dest_uri,
                                                const MigrationOptions& options) = 0;
  // The outgoing migration job of `domain`, meant to be polled from another thread while MigrateLive runs.
  // active=false when no migration runs. kNotFound once a migration that moved the definition finished.
  virtual StatusOr<MigrationProgress> GetMigrationProgress(const std::string& domain) = 0;
  // For a process that did not start the outgoing migration of `domain` (a restarted shadowd): waits up to
  // `timeout` for it to end and returns the figures of libvirt's job-completed event. libvirt sends that event
  // to the clients connected when the job ends and keeps nothing of it on the source once the domain has left
  // with its definition, so this is the only way to the figures of a migration another process started.
  // nullopt when no outgoing migration of `domain` runs (also when the domain is not here), when the job ends
  // without the event (failed or aborted: libvirt sends it only for a completed job) or at the timeout.
  // `switch_to_postcopy`: meanwhile ask libvirt for the postcopy switch at every look until it accepts (it
  // refuses while the storage mirror syncs, and always for a migration started without VIR_MIGRATE_POSTCOPY);
  // the stats then say whether it did (postcopy_switch_accepted).
  // Failure modes: libvirt's error for the lookup or the event registration.
  virtual StatusOr<std::optional<MigrationStats>> AwaitOutgoingMigration(const std::string& domain,
                                                                         Duration timeout,
                                                                         bool switch_to_postcopy) = 0;
  // The statistics libvirt keeps of `domain`'s last completed incoming migration on this host (completed-job
  // statistics, read without discarding them). Measured on libvirt 9.0: the destination keeps them (downtime
  // included) when the migration completed in precopy, and keeps none after a postcopy switch. nullopt when
  // there are none or the last completed job was not an incoming migration; kNotFound for an unknown domain.
  virtual StatusOr<std::optional<MigrationStats>> GetCompletedIncomingMigration(const std::string& domain) = 0;

  // One sample of what the host sees of `domain`'s guest doing work: its state, its block and interface
  // counters (virDomainListGetStats) and, only while it runs, one guest-ping to its QEMU guest agent that waits
  // at most `agent_timeout` (whole seconds, as libvirt counts them). Blocks up to about twice agent_timeout when
  // the agent is silent (libvirt first syncs with the agent, with the same timeout). A silent agent, a domain
  // without an agent channel or one that does not run are not errors: `agent` says which (agent_error why).
  // Failure modes: kInvalidArgument for agent_timeout < 1 s; kNotFound for an unknown domain (also when it
  // vanished during the call); kUnavailable when libvirtd cannot be reached; otherwise libvirt's error.
  virtual StatusOr<GuestActivity> GetGuestActivity(const std::string& domain, std::chrono::seconds agent_timeout) = 0;

  // Atomically (all disks or none) switches each listed disk of `domain` onto a new external qcow2 overlay
  // (virDomainSnapshotCreateXML, disk-only, no snapshot metadata is kept); the other disks of the domain are
  // left alone (snapshot='no'). On a running domain QEMU switches live (the guest keeps running).
  // Failure modes: kInvalidArgument for an empty list, a duplicate target, a target that is not a disk of the
  // domain or a relative overlay path; kAlreadyExists naming the path when an overlay file exists (it is never
  // reused: delete stale ones first); kNotFound for an unknown domain; otherwise libvirt's error, and then no
  // disk was switched.
  virtual Status CreateDiskOnlySnapshot(const std::string& domain, const std::vector<SnapshotOverlay>& overlays) = 0;
  // Commits the active (top) layer of disk `target` into its backing image and pivots the running domain onto
  // that backing image (active block commit, then pivot), waiting for both; the old top file is left on disk
  // for the caller to delete. kFailedPrecondition, naming the domain, when it does not run; kInvalidArgument
  // when the disk has no backing image; kDeadlineExceeded when the commit is not done within `timeout` (the
  // job is then cancelled and the domain stays on its top image); kAborted when the job vanished before it
  // was ready (cancelled by someone else, or an I/O error).
  virtual Status BlockCommitActive(const std::string& domain, const std::string& target,
                                   std::chrono::seconds timeout) = 0;
};

// Process-wide libvirt initialisation plus the thread that runs libvirt's default event loop (needed for
// domain events such as job-completed). Construct exactly one, in the composition root, before connecting;
// it must outlive every Hypervisor. Stopping it joins the thread. Start sets SIGPIPE to be ignored for the whole
// process: libvirt's client writes to its sockets with write(2), so a connection whose libvirtd closed its end
// (a restarted or crashed host, the server's keepalive) would otherwise kill the process instead of failing that
// one call with "Cannot write data" (virsh ignores SIGPIPE for the same reason).
class LibvirtRuntime {
 public:
  static StatusOr<std::unique_ptr<LibvirtRuntime>> Start();
  virtual ~LibvirtRuntime() = default;
  // Opens a connection to `uri` (e.g. qemu+tcp://10.77.0.11/system). `clock` must outlive the connection.
  virtual StatusOr<std::unique_ptr<Hypervisor>> Connect(const std::string& uri, Clock& clock) = 0;
};

}  // namespace vs::virt
