// In-memory stand-ins for everything replication talks to, so that the round protocol (block_map,
// ReplicaKeeper, Replicator) is tested without QEMU, libvirt, libnbd or a network:
//   MemoryImage          - an image file's bytes; an overlay reads through to its backing image.
//   MemoryBlockDevice    - a BlockDevice over a MemoryImage whose Map() answers are derived from the
//                          bytes ("base:allocation") and from a dirty set (the backup's dirty bitmap),
//                          or set explicitly; counts its I/O.
//   FakeReplicaStorage   - ReplicaStorage over MemoryImages; ConnectExport is handed to a resolver.
//   FakeBackupHypervisor - the backup/checkpoint part of virt::Hypervisor for running domains whose
//                          disks are MemoryImages: frozen exports, per-checkpoint dirty bitmaps, QEMU
//                          kills that make bitmaps inconsistent; also the little more the switchover
//                          target asks of its host's libvirtd (listing, states, metadata links, backing
//                          chains, undefine, active block commit, foreign bitmaps, node capacity).
//   InProcessPeer        - a ReplicaPeer calling a ReplicaKeeper directly, with injectable failures.
//   CrashBudget, BudgetStore - the controller's crash tests' cut: every effect (file operation, store
//                          write) after the first N fails without happening.
// Faults are injected through hooks; SimulatedCrash thrown from a hook models a kill -9 at that point
// (the code under test gets no chance to clean up; only what it already persisted survives).
// FakeReplicaStorage::LosePower models a power cut on top: created files whose directory was not
// synced since are gone.
//
// Test-only; not thread-safe. Objects handed out by reference (images, counters) live as long as
// the fake that owns them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shadowd/replication/block_device.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/replication/replica_peer.h"
#include "shadowd/replication/replica_storage.h"
#include "shadowd/store/store.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::replication::testing {

// Thrown by a fault hook to model the process being killed at that instant.
struct SimulatedCrash {};

// Counts effects; once `remaining` reaches 0, every further effect fails without happening: from the
// outside, the process is dead from that point on (as tests/unit/controller/fakes.h's CrashBudget).
struct CrashBudget {
  int remaining = std::numeric_limits<int>::max();
  int used = 0;
  int refused = 0;
  std::vector<std::string> effects;  // every effect that happened, "<Op> <path>", in order
  bool Admit(std::string effect) {
    if (remaining == 0) {
      ++refused;
      return false;
    }
    --remaining;
    ++used;
    effects.push_back(std::move(effect));
    return true;
  }
};

// A Store whose writes spend the crash budget (each as "StoreWrite <first key>").
class BudgetStore final : public store::Store {
 public:
  BudgetStore(store::Store& target, CrashBudget& budget) : target_(target), budget_(budget) {}
  StatusOr<std::optional<std::string>> Get(std::string_view key) const override { return target_.Get(key); }
  Status Write(const store::WriteBatch& batch) override;
  StatusOr<std::vector<store::Entry>> Scan(std::string_view prefix) const override { return target_.Scan(prefix); }
  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override {
    return target_.ScanKeys(prefix);
  }

 private:
  store::Store& target_;
  CrashBudget& budget_;
};

struct MemoryImage {
  std::string format;  // "qcow2" or "raw"
  std::vector<std::byte> bytes;
  // Overlay only: the image it reads through to, and per byte whether the overlay holds its own data.
  std::shared_ptr<MemoryImage> backing;
  std::string backing_path;
  std::vector<bool> written;

  uint64_t size() const { return bytes.size(); }
  std::byte At(uint64_t offset) const;
  void Put(uint64_t offset, std::byte value);
  void Resize(uint64_t size);
  // What a reader of the image sees, backing included.
  std::vector<std::byte> Contents() const;
};

// `size` bytes of zeros, or filled with a pattern derived from `seed` (never a zero byte).
std::vector<std::byte> Zeros(uint64_t size);
std::vector<std::byte> Pattern(uint64_t size, uint8_t seed);
// `size` bytes with data (a pattern seeded by the block number plus `seed`) in `blocks` only.
std::vector<std::byte> DataInBlocks(uint64_t size, const std::vector<uint64_t>& blocks, uint8_t seed = 0);

// "base:allocation" as QEMU would answer it for `bytes`: runs of zero bytes are holes reading as
// zeros, the rest data. Byte-exact, so extents are not block aligned.
std::vector<MappedExtent> AllocationExtents(const std::vector<std::byte>& bytes);
// A dirty-bitmap context: the blocks in `dirty` flagged, runs merged, the last extent ending at `size`.
std::vector<MappedExtent> DirtyExtents(const std::set<uint64_t>& dirty, uint64_t size);

// Atomic: the primary reads its export on a second thread while the shadow host copies (replicator.cc), and the
// tests watch the counts from a hook on the first.
struct IoCounts {
  std::atomic<uint64_t> reads = 0;
  std::atomic<uint64_t> bytes_read = 0;
  std::atomic<uint64_t> writes = 0;
  std::atomic<uint64_t> bytes_written = 0;
  std::atomic<uint64_t> zeroes = 0;
  std::atomic<uint64_t> bytes_zeroed = 0;
  std::atomic<uint64_t> flushes = 0;
};

class MemoryBlockDevice final : public BlockDevice {
 public:
  struct Options {
    std::string name = "memory";               // for error messages
    std::vector<std::string> meta_contexts;    // negotiated at open: Map() refuses any other
    std::map<std::string, std::set<uint64_t>> dirty;  // context -> dirty blocks
    bool writable = true;
    IoCounts* counts = nullptr;                // optional; must outlive the device
    CrashBudget* budget = nullptr;             // optional; Write, Zero and Flush spend it
    // Sees (and may change, or throw SimulatedCrash on) every write before it lands.
    std::function<void(uint64_t offset, std::vector<std::byte>& data)> on_write;
  };
  MemoryBlockDevice(std::shared_ptr<MemoryImage> image, Options options);

  // Makes Map(context) return `extents` verbatim (for malformed answers).
  void SetMap(const std::string& context, std::vector<MappedExtent> extents);
  const IoCounts& counts() const { return *counts_; }

  uint64_t size() const override { return image_->size(); }
  StatusOr<std::vector<MappedExtent>> Map(std::string_view meta_context) override;
  Status Read(uint64_t offset, std::span<std::byte> out) override;
  Status Write(uint64_t offset, std::span<const std::byte> data) override;
  Status Zero(uint64_t offset, uint64_t length) override;
  Status Flush() override;

 private:
  Status CheckRange(std::string_view what, uint64_t offset, uint64_t length) const;
  Status Spend(std::string_view op);

  std::shared_ptr<MemoryImage> image_;
  Options options_;
  IoCounts own_counts_;
  IoCounts* counts_;
  std::map<std::string, std::vector<MappedExtent>> fixed_maps_;
};

class FakeReplicaStorage final : public ReplicaStorage {
 public:
  using ExportResolver = std::function<StatusOr<std::unique_ptr<BlockDevice>>(
      const std::string& uri, const std::vector<std::string>& meta_contexts, IoCounts& counts)>;
  explicit FakeReplicaStorage(ExportResolver exports) : exports_(std::move(exports)) {}

  // Files on this host, by path.
  std::map<std::string, std::shared_ptr<MemoryImage>> images;
  // Called first by every operation with its name ("Inspect", "Create", "Resize", "CreateOverlay",
  // "Commit", "Remove", "SyncDirectory", "OpenImage", "ConnectExport") and path/uri: a non-OK Status
  // fails the operation.
  std::function<Status(std::string_view op, const std::string& path)> fault;
  // Sees every write into an image opened here (the path is the image's).
  std::function<void(const std::string& path, uint64_t offset, std::vector<std::byte>& data)> on_write;
  // Optional, must outlive this: spent by every operation that changes a file (Create, Resize,
  // CreateOverlay, Commit, Remove, SyncDirectory; Write, Zero, Flush of images opened here).
  CrashBudget* budget = nullptr;
  IoCounts export_io;  // reads from exports connected here
  std::vector<std::string> commits;  // overlay paths, in call order

  std::vector<std::byte> Contents(const std::string& path) const;
  bool Has(const std::string& path) const { return images.count(path) != 0; }
  // A power cut: the files created by Create or CreateOverlay since the last SyncDirectory of their
  // directory are gone (data written into surviving files stays: writers flush).
  void LosePower();

  StatusOr<std::optional<ImageState>> Inspect(const std::string& path) override;
  Status Create(const std::string& path, const std::string& format, uint64_t size) override;
  Status Resize(const std::string& path, const std::string& format, uint64_t size) override;
  Status CreateOverlay(const std::string& overlay, const std::string& base, const std::string& base_format) override;
  Status Commit(const std::string& overlay) override;
  Status Remove(const std::string& path) override;
  Status SyncDirectory(const std::string& directory) override;
  StatusOr<std::unique_ptr<BlockDevice>> OpenImage(const std::string& path, const std::string& format,
                                                   bool writable) override;
  StatusOr<std::unique_ptr<BlockDevice>> ConnectExport(const std::string& uri,
                                                       const std::vector<std::string>& meta_contexts) override;

 private:
  Status Fault(std::string_view op, const std::string& path);
  // Fault, then spends the budget for an operation that changes a file.
  Status Effect(std::string_view op, const std::string& path);
  StatusOr<std::shared_ptr<MemoryImage>> Find(const std::string& path) const;

  ExportResolver exports_;
  std::set<std::string> unsynced_;  // created, directory not synced since
};

// The backup and checkpoint API of one libvirtd, plus the domain XML of its domains, their listing and
// states, undefining them, the active block commit (which pivots a disk onto its first backing file), the
// removal of foreign bitmaps and the node's capacity. Other Hypervisor methods fail with Internal.
class FakeBackupHypervisor final : public virt::Hypervisor {
 public:
  struct Backing {
    std::string path;
    std::string format;
  };
  struct Disk {
    std::string target;
    std::string path;
    std::string format;
    std::shared_ptr<MemoryImage> live;
    std::vector<Backing> backing;  // the files beneath `path`, nearest first (<backingStore> in the XML)
  };
  struct Checkpoint {
    std::string name;
    // target -> blocks written after this checkpoint and before the next one (disks that joined it).
    std::map<std::string, std::set<uint64_t>> bitmaps;
    bool broken = false;  // QEMU was killed: the bitmaps reloaded as inconsistent
    bool hidden = false;  // DeleteCheckpointMetadata: the bitmaps are there, libvirt does not list it
  };
  struct Export {
    std::shared_ptr<MemoryImage> frozen;
    std::optional<std::set<uint64_t>> dirty;  // incremental exports only
  };
  struct Job {
    virt::PullBackupRequest request;
    std::map<std::string, Export> exports;  // by target
  };
  struct Domain {
    std::string uuid;
    std::vector<Disk> disks;
    std::string extra_devices_xml;  // more <devices> children, verbatim
    std::vector<Checkpoint> checkpoints;  // oldest first
    std::optional<Job> job;
    std::optional<std::string> foreign_job_xml;  // a backup job someone else started
    std::map<std::string, std::shared_ptr<MemoryImage>> last_frozen;  // by target, outlives the job
    virt::DomainState state = virt::DomainState::kRunning;
    std::string metadata_xml;  // the children of <metadata>, verbatim (e.g. a shadow's shadow-of link)
  };

  std::map<std::string, Domain> domains;
  std::vector<virt::PullBackupRequest> backups;  // every BeginPullBackup that succeeded
  int end_backup_calls = 0;                      // every EndBackup of an existing domain, failed ones too
  // Called first by BeginPullBackup and EndBackup (once the domain is found) with the method name and the
  // domain: a non-OK Status fails the call without effect.
  std::function<Status(std::string_view method, const std::string& domain)> fault;
  virt::NodeCapacity capacity;                   // what GetNodeCapacity answers
  std::vector<std::string> undefined;            // every domain UndefineDomain removed, in order
  std::vector<std::string> block_commits;        // "<domain> <target>" for every BlockCommitActive call
  std::vector<std::string> discarded_bitmaps;    // "<domain> <target> <bitmap>" for every DiscardForeignBitmap
  // Called first by BlockCommitActive: a non-OK Status fails the commit, which then changes nothing.
  std::function<Status(const std::string& domain, const std::string& target)> block_commit_fault;
  // That many BlockCommitActive calls (after the fault) succeed but change nothing: a pivot that did not take.
  int block_commits_without_pivot = 0;

  // Test setup and guest activity.
  Domain& AddDomain(const std::string& name, const std::string& uuid);
  std::shared_ptr<MemoryImage> AddDisk(const std::string& domain, const std::string& target, const std::string& path,
                                       const std::string& format, uint64_t size);
  // A guest write: changes the live disk (growing it when the write ends past it, like a resize
  // followed by a write) and marks the blocks in the newest checkpoint's bitmap.
  void GuestWrite(const std::string& domain, const std::string& target, uint64_t offset,
                  const std::vector<std::byte>& data);
  // QEMU was SIGKILLed and restarted: every persistent bitmap reloads as inconsistent.
  void KillQemu(const std::string& domain);
  // A checkpoint someone else made (joined by every qcow2 disk).
  void AddForeignCheckpoint(const std::string& domain, const std::string& name);
  std::vector<std::byte> LastFrozen(const std::string& domain, const std::string& target) const;

  // What libvirt's NBD server answers at "nbd://ADDRESS:PORT/TARGET".
  StatusOr<std::unique_ptr<BlockDevice>> ConnectExport(const std::string& uri,
                                                       const std::vector<std::string>& meta_contexts,
                                                       IoCounts& counts);

  const std::string& uri() const override { return uri_; }
  StatusOr<std::string> Hostname() override { return Unused("Hostname"); }
  StatusOr<std::vector<std::string>> ListDomainNames() override;
  StatusOr<std::string> DefineDomain(const std::string&) override { return Unused("DefineDomain"); }
  Status StartDomain(const std::string&) override { return Unused("StartDomain"); }
  Status DestroyDomain(const std::string&) override { return Unused("DestroyDomain"); }
  Status SuspendDomain(const std::string&) override { return Unused("SuspendDomain"); }
  Status ResumeDomain(const std::string&) override { return Unused("ResumeDomain"); }
  Status SetVcpusLive(const std::string&, uint32_t) override { return Unused("SetVcpusLive"); }
  Status SetMemoryLive(const std::string&, uint64_t) override { return Unused("SetMemoryLive"); }
  Status UndefineDomain(const std::string& name) override;
  StatusOr<virt::DomainState> GetDomainState(const std::string& name) override;
  StatusOr<std::string> GetDomainXml(const std::string& name) override;
  StatusOr<virt::NodeCapacity> GetNodeCapacity() override { return capacity; }
  StatusOr<std::optional<std::string>> GetMetadata(const std::string&, const std::string&) override {
    return Unused("GetMetadata");
  }
  Status SetMetadata(const std::string&, const std::string&, const std::string&, const std::string&) override {
    return Unused("SetMetadata");
  }
  Status CreateImage(const std::string&, uint64_t, virt::ImageFormat) override { return Unused("CreateImage"); }
  Status DeleteImage(const std::string&) override { return Unused("DeleteImage"); }
  StatusOr<uint64_t> ImageVirtualSize(const std::string&) override { return Unused("ImageVirtualSize"); }
  Status BeginPullBackup(const virt::PullBackupRequest& request) override;
  StatusOr<std::optional<std::string>> GetBackupXml(const std::string& domain) override;
  Status EndBackup(const std::string& domain) override;
  StatusOr<std::vector<std::string>> ListCheckpoints(const std::string& domain) override;
  Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) override;
  Status RedefineCheckpoint(const std::string& domain, const std::string& name,
                            const std::vector<std::string>& targets) override;
  Status DeleteCheckpointMetadata(const std::string& domain, const std::string& name) override;
  // Records the call; AlreadyExists when the domain has a checkpoint of that name (libvirt's answer).
  Status DiscardForeignBitmap(const std::string& domain, const std::string& target,
                              const std::string& bitmap) override;
  StatusOr<std::unique_ptr<virt::Subscription>> WatchDomains(std::function<void(const virt::DomainEvent&)>) override {
    return Unused("WatchDomains");
  }
  StatusOr<virt::MigrationResult> MigrateLive(const std::string&, const std::string&,
                                              const virt::MigrationOptions&) override {
    return Unused("MigrateLive");
  }
  StatusOr<virt::MigrationProgress> GetMigrationProgress(const std::string&) override {
    return Unused("GetMigrationProgress");
  }
  StatusOr<std::optional<virt::MigrationStats>> AwaitOutgoingMigration(const std::string&, Duration, bool) override {
    return Unused("AwaitOutgoingMigration");
  }
  StatusOr<std::optional<virt::MigrationStats>> GetCompletedIncomingMigration(const std::string&) override {
    return Unused("GetCompletedIncomingMigration");
  }
  StatusOr<virt::GuestActivity> GetGuestActivity(const std::string&, std::chrono::seconds) override {
    return Unused("GetGuestActivity");
  }
  Status CreateDiskOnlySnapshot(const std::string&, const std::vector<virt::SnapshotOverlay>&) override {
    return Unused("CreateDiskOnlySnapshot");
  }
  // Pivots disk `target` onto its first backing file (the top stays in `backing` of nobody: the caller
  // deletes it). FailedPrecondition when the domain does not run, InvalidArgument without a backing file.
  Status BlockCommitActive(const std::string& domain, const std::string& target, std::chrono::seconds) override;

 private:
  static Status Unused(const std::string& method) { return Internal(method + " is not part of the backup fake"); }
  StatusOr<Domain*> Find(const std::string& name);

  std::string uri_ = "fake+backup:///";
};

// ReplicaPeer calling a ReplicaKeeper in this process. `keeper` may be swapped between (or, from a
// fault hook, during) calls to model a restarted shadowd.
class InProcessPeer final : public ReplicaPeer {
 public:
  explicit InProcessPeer(std::string host) : host_(std::move(host)) {}

  ReplicaKeeper* keeper = nullptr;
  // Called with the method name before the call reaches the keeper (after=false) and after it
  // returned (after=true); a non-OK Status is returned to the caller instead (after=true: the keeper
  // did the work, the reply was lost).
  std::function<Status(std::string_view method, bool after)> fault;
  // Rewrites ApplyRound's reply on its way back: a shadow host answering what it should not.
  std::function<void(virtshadow::v1::ApplyRoundReply&)> edit_apply_reply;
  std::vector<std::string> calls;

  StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const std::string& host,
                                                       const virtshadow::v1::GetReplicaRequest& request) override;
  StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const std::string& host,
                                                       const virtshadow::v1::ApplyRoundRequest& request) override;
  Status FinishRound(const std::string& host, const virtshadow::v1::FinishRoundRequest& request) override;
  StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(
      const std::string& host, const virtshadow::v1::ReplicaDigestsRequest& request) override;

 private:
  Status Before(std::string_view method, const std::string& host);
  Status After(std::string_view method);

  std::string host_;
};

}  // namespace vs::replication::testing
