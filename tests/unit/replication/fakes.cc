#include "tests/unit/replication/fakes.h"

#include <algorithm>
#include <filesystem>

#include "shadowd/replication/block_map.h"

namespace vs::replication::testing {

using virtshadow::v1::ApplyRoundReply;
using virtshadow::v1::ApplyRoundRequest;
using virtshadow::v1::FinishRoundRequest;
using virtshadow::v1::GetReplicaReply;
using virtshadow::v1::GetReplicaRequest;
using virtshadow::v1::ReplicaDigestsReply;
using virtshadow::v1::ReplicaDigestsRequest;

// ---- MemoryImage and helpers ----

std::byte MemoryImage::At(uint64_t offset) const {
  if (!backing || written[offset]) return bytes[offset];
  return offset < backing->size() ? backing->At(offset) : std::byte{0};
}

void MemoryImage::Put(uint64_t offset, std::byte value) {
  bytes[offset] = value;
  if (backing) written[offset] = true;
}

void MemoryImage::Resize(uint64_t size) {
  bytes.resize(size, std::byte{0});
  if (backing) written.resize(size, false);
}

std::vector<std::byte> MemoryImage::Contents() const {
  if (!backing) return bytes;
  std::vector<std::byte> out(size());
  for (uint64_t i = 0; i < out.size(); ++i) out[i] = At(i);
  return out;
}

std::vector<std::byte> Zeros(uint64_t size) { return std::vector<std::byte>(size); }

std::vector<std::byte> Pattern(uint64_t size, uint8_t seed) {
  std::vector<std::byte> out(size);
  for (uint64_t i = 0; i < size; ++i) out[i] = std::byte(static_cast<uint8_t>(1 + (i * 7 + seed * 31 + i / 251) % 255));
  return out;
}

std::vector<std::byte> DataInBlocks(uint64_t size, const std::vector<uint64_t>& blocks, uint8_t seed) {
  std::vector<std::byte> bytes(size);
  for (uint64_t b : blocks) {
    const uint64_t length = std::min(kBlockSize, size - b * kBlockSize);
    const auto fill = Pattern(length, static_cast<uint8_t>(b + seed));
    std::copy(fill.begin(), fill.end(), bytes.begin() + static_cast<std::ptrdiff_t>(b * kBlockSize));
  }
  return bytes;
}

std::vector<MappedExtent> AllocationExtents(const std::vector<std::byte>& bytes) {
  std::vector<MappedExtent> extents;
  for (uint64_t i = 0; i < bytes.size();) {
    const bool zero = bytes[i] == std::byte{0};
    uint64_t end = i;
    while (end < bytes.size() && (bytes[end] == std::byte{0}) == zero) ++end;
    extents.push_back({i, end - i, zero ? kNbdStateHole | kNbdStateZero : 0u});
    i = end;
  }
  return extents;
}

std::vector<MappedExtent> DirtyExtents(const std::set<uint64_t>& dirty, uint64_t size) {
  std::vector<MappedExtent> extents;
  for (uint64_t b = 0; b < BlockCount(size); ++b) {
    const uint32_t flags = dirty.count(b) ? kNbdStateDirty : 0;
    const uint64_t offset = b * kBlockSize;
    const uint64_t length = std::min(kBlockSize, size - offset);
    if (!extents.empty() && extents.back().flags == flags) {
      extents.back().length += length;
    } else {
      extents.push_back({offset, length, flags});
    }
  }
  return extents;
}

// ---- MemoryBlockDevice ----

MemoryBlockDevice::MemoryBlockDevice(std::shared_ptr<MemoryImage> image, Options options)
    : image_(std::move(image)), options_(std::move(options)), counts_(options_.counts ? options_.counts : &own_counts_) {}

void MemoryBlockDevice::SetMap(const std::string& context, std::vector<MappedExtent> extents) {
  fixed_maps_[context] = std::move(extents);
}

Status MemoryBlockDevice::CheckRange(std::string_view what, uint64_t offset, uint64_t length) const {
  if (offset > size() || length > size() - offset) {
    return InvalidArgument(std::string(what) + " of " + std::to_string(length) + " bytes at offset " +
                           std::to_string(offset) + " is outside " + options_.name + " (" + std::to_string(size()) +
                           " bytes)");
  }
  return Status::Ok();
}

StatusOr<std::vector<MappedExtent>> MemoryBlockDevice::Map(std::string_view meta_context) {
  const std::string context(meta_context);
  if (std::find(options_.meta_contexts.begin(), options_.meta_contexts.end(), context) ==
      options_.meta_contexts.end()) {
    return InvalidArgument("meta context " + context + " was not negotiated with " + options_.name);
  }
  if (auto fixed = fixed_maps_.find(context); fixed != fixed_maps_.end()) return fixed->second;
  if (context == kAllocationContext) return AllocationExtents(image_->Contents());
  if (auto dirty = options_.dirty.find(context); dirty != options_.dirty.end()) {
    return DirtyExtents(dirty->second, size());
  }
  return InvalidArgument(options_.name + " does not offer meta context " + context);
}

Status MemoryBlockDevice::Read(uint64_t offset, std::span<std::byte> out) {
  VS_RETURN_IF_ERROR(CheckRange("read", offset, out.size()));
  if (image_->backing) {
    for (uint64_t i = 0; i < out.size(); ++i) out[i] = image_->At(offset + i);
  } else {
    std::copy_n(image_->bytes.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
  }
  ++counts_->reads;
  counts_->bytes_read += out.size();
  return Status::Ok();
}

Status MemoryBlockDevice::Spend(std::string_view op) {
  if (options_.budget == nullptr || options_.budget->Admit(std::string(op) + " " + options_.name)) return Status::Ok();
  return Unavailable("simulated crash: " + std::string(op) + " " + options_.name + " never happened");
}

Status MemoryBlockDevice::Write(uint64_t offset, std::span<const std::byte> data) {
  if (!options_.writable) return InvalidArgument(options_.name + " is read-only");
  VS_RETURN_IF_ERROR(CheckRange("write", offset, data.size()));
  VS_RETURN_IF_ERROR(Spend("Write"));
  std::vector<std::byte> copy(data.begin(), data.end());
  if (options_.on_write) options_.on_write(offset, copy);
  for (uint64_t i = 0; i < copy.size(); ++i) image_->Put(offset + i, copy[i]);
  ++counts_->writes;
  counts_->bytes_written += copy.size();
  return Status::Ok();
}

Status MemoryBlockDevice::Zero(uint64_t offset, uint64_t length) {
  if (!options_.writable) return InvalidArgument(options_.name + " is read-only");
  VS_RETURN_IF_ERROR(CheckRange("zero", offset, length));
  VS_RETURN_IF_ERROR(Spend("Zero"));
  for (uint64_t i = 0; i < length; ++i) image_->Put(offset + i, std::byte{0});
  ++counts_->zeroes;
  counts_->bytes_zeroed += length;
  return Status::Ok();
}

Status MemoryBlockDevice::Flush() {
  VS_RETURN_IF_ERROR(Spend("Flush"));
  ++counts_->flushes;
  return Status::Ok();
}

// ---- FakeReplicaStorage ----

Status FakeReplicaStorage::Fault(std::string_view op, const std::string& path) {
  return fault ? fault(op, path) : Status::Ok();
}

Status FakeReplicaStorage::Effect(std::string_view op, const std::string& path) {
  VS_RETURN_IF_ERROR(Fault(op, path));
  if (budget == nullptr || budget->Admit(std::string(op) + " " + path)) return Status::Ok();
  return Unavailable("simulated crash: " + std::string(op) + " " + path + " never happened");
}

void FakeReplicaStorage::LosePower() {
  for (const std::string& path : unsynced_) images.erase(path);
  unsynced_.clear();
}

StatusOr<std::shared_ptr<MemoryImage>> FakeReplicaStorage::Find(const std::string& path) const {
  auto it = images.find(path);
  if (it == images.end()) return NotFound("no image at " + path);
  return it->second;
}

std::vector<std::byte> FakeReplicaStorage::Contents(const std::string& path) const {
  auto it = images.find(path);
  return it == images.end() ? std::vector<std::byte>() : it->second->Contents();
}

StatusOr<std::optional<ImageState>> FakeReplicaStorage::Inspect(const std::string& path) {
  VS_RETURN_IF_ERROR(Fault("Inspect", path));
  auto it = images.find(path);
  if (it == images.end()) return std::optional<ImageState>();
  return std::optional<ImageState>(ImageState{it->second->format, it->second->size()});
}

Status FakeReplicaStorage::Create(const std::string& path, const std::string& format, uint64_t size) {
  VS_RETURN_IF_ERROR(Effect("Create", path));
  if (Has(path)) return AlreadyExists("an image exists at " + path);
  auto image = std::make_shared<MemoryImage>();
  image->format = format;
  image->bytes.resize(size);
  images[path] = image;
  unsynced_.insert(path);
  return Status::Ok();
}

Status FakeReplicaStorage::Resize(const std::string& path, const std::string& format, uint64_t size) {
  VS_RETURN_IF_ERROR(Effect("Resize", path));
  VS_ASSIGN_OR_RETURN(auto image, Find(path));
  if (image->format != format) return InvalidArgument(path + " is " + image->format + ", not " + format);
  image->Resize(size);
  return Status::Ok();
}

Status FakeReplicaStorage::CreateOverlay(const std::string& overlay, const std::string& base,
                                         const std::string& base_format) {
  VS_RETURN_IF_ERROR(Effect("CreateOverlay", overlay));
  if (Has(overlay)) return AlreadyExists("an image exists at " + overlay);
  VS_ASSIGN_OR_RETURN(auto backing, Find(base));
  if (backing->format != base_format) return InvalidArgument(base + " is " + backing->format + ", not " + base_format);
  auto image = std::make_shared<MemoryImage>();
  image->format = "qcow2";
  image->backing = backing;
  image->backing_path = base;
  image->bytes.resize(backing->size());
  image->written.resize(backing->size(), false);
  images[overlay] = image;
  unsynced_.insert(overlay);
  return Status::Ok();
}

Status FakeReplicaStorage::Commit(const std::string& overlay) {
  VS_RETURN_IF_ERROR(Effect("Commit", overlay));
  VS_ASSIGN_OR_RETURN(auto image, Find(overlay));
  if (!image->backing) return InvalidArgument(overlay + " has no backing file");
  VS_ASSIGN_OR_RETURN(auto base, Find(image->backing_path));
  if (base != image->backing) return NotFound("the backing file of " + overlay + " was replaced");
  for (uint64_t i = 0; i < image->size() && i < base->size(); ++i) {
    if (image->written[i]) base->Put(i, image->bytes[i]);
  }
  commits.push_back(overlay);
  return Status::Ok();
}

Status FakeReplicaStorage::Remove(const std::string& path) {
  VS_RETURN_IF_ERROR(Effect("Remove", path));
  images.erase(path);
  unsynced_.erase(path);
  return Status::Ok();
}

Status FakeReplicaStorage::SyncDirectory(const std::string& directory) {
  VS_RETURN_IF_ERROR(Effect("SyncDirectory", directory));
  std::erase_if(unsynced_, [&directory](const std::string& path) {
    const std::string parent = std::filesystem::path(path).parent_path().string();
    return (parent.empty() ? "." : parent) == directory;
  });
  return Status::Ok();
}

StatusOr<std::unique_ptr<BlockDevice>> FakeReplicaStorage::OpenImage(const std::string& path,
                                                                     const std::string& format, bool writable) {
  VS_RETURN_IF_ERROR(Fault("OpenImage", path));
  VS_ASSIGN_OR_RETURN(auto image, Find(path));
  if (image->format != format) return InvalidArgument(path + " is " + image->format + ", not " + format);
  MemoryBlockDevice::Options options;
  options.name = path;
  options.meta_contexts = {std::string(kAllocationContext)};
  options.writable = writable;
  options.budget = writable ? budget : nullptr;
  if (on_write) {
    options.on_write = [this, path](uint64_t offset, std::vector<std::byte>& data) { on_write(path, offset, data); };
  }
  return std::unique_ptr<BlockDevice>(std::make_unique<MemoryBlockDevice>(image, std::move(options)));
}

StatusOr<std::unique_ptr<BlockDevice>> FakeReplicaStorage::ConnectExport(const std::string& uri,
                                                                         const std::vector<std::string>& meta_contexts) {
  VS_RETURN_IF_ERROR(Fault("ConnectExport", uri));
  return exports_(uri, meta_contexts, export_io);
}

// ---- BudgetStore ----

Status BudgetStore::Write(const store::WriteBatch& batch) {
  const std::string first = batch.ops().empty() ? "" : batch.ops().front().key;
  if (!budget_.Admit("StoreWrite " + first)) return Unavailable("simulated crash: the store write never happened");
  return target_.Write(batch);
}

// ---- FakeBackupHypervisor ----

FakeBackupHypervisor::Domain& FakeBackupHypervisor::AddDomain(const std::string& name, const std::string& uuid) {
  Domain& domain = domains[name];
  domain.uuid = uuid;
  return domain;
}

std::shared_ptr<MemoryImage> FakeBackupHypervisor::AddDisk(const std::string& domain, const std::string& target,
                                                           const std::string& path, const std::string& format,
                                                           uint64_t size) {
  auto image = std::make_shared<MemoryImage>();
  image->format = format;
  image->bytes.resize(size);
  domains.at(domain).disks.push_back({target, path, format, image});
  return image;
}

void FakeBackupHypervisor::GuestWrite(const std::string& domain, const std::string& target, uint64_t offset,
                                      const std::vector<std::byte>& data) {
  Domain& d = domains.at(domain);
  for (Disk& disk : d.disks) {
    if (disk.target != target) continue;
    if (offset + data.size() > disk.live->size()) disk.live->Resize(offset + data.size());
    std::copy(data.begin(), data.end(), disk.live->bytes.begin() + static_cast<std::ptrdiff_t>(offset));
    if (!d.checkpoints.empty() && !data.empty()) {
      auto bitmap = d.checkpoints.back().bitmaps.find(target);
      if (bitmap != d.checkpoints.back().bitmaps.end()) {
        for (uint64_t b = offset / kBlockSize; b <= (offset + data.size() - 1) / kBlockSize; ++b) bitmap->second.insert(b);
      }
    }
    return;
  }
}

void FakeBackupHypervisor::KillQemu(const std::string& domain) {
  for (Checkpoint& checkpoint : domains.at(domain).checkpoints) checkpoint.broken = true;
}

void FakeBackupHypervisor::AddForeignCheckpoint(const std::string& domain, const std::string& name) {
  Domain& d = domains.at(domain);
  Checkpoint checkpoint{name, {}, false};
  for (const Disk& disk : d.disks) {
    if (disk.format == "qcow2") checkpoint.bitmaps[disk.target];
  }
  d.checkpoints.push_back(std::move(checkpoint));
}

std::vector<std::byte> FakeBackupHypervisor::LastFrozen(const std::string& domain, const std::string& target) const {
  const Domain& d = domains.at(domain);
  auto it = d.last_frozen.find(target);
  return it == d.last_frozen.end() ? std::vector<std::byte>() : it->second->bytes;
}

StatusOr<FakeBackupHypervisor::Domain*> FakeBackupHypervisor::Find(const std::string& name) {
  auto it = domains.find(name);
  if (it == domains.end()) return NotFound("domain '" + name + "' on " + uri_ + ": Domain not found");
  return &it->second;
}

StatusOr<std::string> FakeBackupHypervisor::GetDomainXml(const std::string& name) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  std::string xml = "<domain type='kvm'><name>" + name + "</name><uuid>" + domain->uuid + "</uuid>";
  if (!domain->metadata_xml.empty()) xml += "<metadata>" + domain->metadata_xml + "</metadata>";
  xml += "<memory unit='KiB'>1048576</memory><vcpu>2</vcpu><devices>";
  for (const Disk& disk : domain->disks) {
    xml += "<disk type='file' device='disk'><driver name='qemu' type='" + disk.format + "'/><source file='" +
           disk.path + "'/>";
    for (const Backing& layer : disk.backing) {
      xml += "<backingStore type='file'><format type='" + layer.format + "'/><source file='" + layer.path + "'/>";
    }
    if (!disk.backing.empty()) xml += "<backingStore/>";
    for (size_t i = 0; i < disk.backing.size(); ++i) xml += "</backingStore>";
    xml += "<target dev='" + disk.target + "' bus='virtio'/></disk>";
  }
  xml += domain->extra_devices_xml + "</devices></domain>";
  return xml;
}

StatusOr<std::vector<std::string>> FakeBackupHypervisor::ListDomainNames() {
  std::vector<std::string> names;
  for (const auto& [name, domain] : domains) names.push_back(name);
  return names;
}

Status FakeBackupHypervisor::UndefineDomain(const std::string& name) {
  if (domains.erase(name) != 0) undefined.push_back(name);
  return Status::Ok();
}

StatusOr<virt::DomainState> FakeBackupHypervisor::GetDomainState(const std::string& name) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  return domain->state;
}

Status FakeBackupHypervisor::DiscardForeignBitmap(const std::string& name, const std::string& target,
                                                  const std::string& bitmap) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  discarded_bitmaps.push_back(name + " " + target + " " + bitmap);
  for (auto it = domain->checkpoints.begin(); it != domain->checkpoints.end(); ++it) {
    if (it->name != bitmap) continue;
    if (!it->hidden) return AlreadyExists("domain checkpoint '" + bitmap + "' already exists");
    it->bitmaps.erase(target);  // a hidden checkpoint's bitmap: adopted and deleted
    if (it->bitmaps.empty()) domain->checkpoints.erase(it);
    return Status::Ok();
  }
  return Status::Ok();
}

Status FakeBackupHypervisor::BlockCommitActive(const std::string& name, const std::string& target,
                                               std::chrono::seconds) {
  block_commits.push_back(name + " " + target);
  if (block_commit_fault) VS_RETURN_IF_ERROR(block_commit_fault(name, target));
  if (block_commits_without_pivot > 0) {
    --block_commits_without_pivot;
    return Status::Ok();
  }
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  if (domain->state != virt::DomainState::kRunning) {
    return FailedPrecondition("domain '" + name + "' is not running");
  }
  for (Disk& disk : domain->disks) {
    if (disk.target != target) continue;
    if (disk.backing.empty()) return InvalidArgument("disk '" + target + "' of '" + name + "' has no backing image");
    disk.path = disk.backing.front().path;
    disk.format = disk.backing.front().format;
    disk.backing.erase(disk.backing.begin());
    return Status::Ok();
  }
  return InvalidArgument("domain '" + name + "' has no disk '" + target + "'");
}

Status FakeBackupHypervisor::BeginPullBackup(const virt::PullBackupRequest& request) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(request.domain));
  if (fault) VS_RETURN_IF_ERROR(fault("BeginPullBackup", request.domain));
  if (domain->job || domain->foreign_job_xml) return Aborted("domain " + request.domain + " already has a backup job");
  if (request.disks.empty()) return InvalidArgument("backup of " + request.domain + " names no disk");
  size_t from = domain->checkpoints.size();
  if (!request.incremental_from.empty()) {
    for (size_t i = 0; i < domain->checkpoints.size(); ++i) {
      // libvirt needs the checkpoint's metadata to start from it.
      if (domain->checkpoints[i].name == request.incremental_from && !domain->checkpoints[i].hidden) from = i;
    }
    if (from == domain->checkpoints.size()) {
      return NotFound("no domain checkpoint with matching name '" + request.incremental_from + "'");
    }
    for (size_t i = from; i < domain->checkpoints.size(); ++i) {
      if (domain->checkpoints[i].broken) {
        return DataLoss("checkpoint inconsistent: missing or broken bitmap '" + domain->checkpoints[i].name + "'");
      }
    }
  }
  for (const Checkpoint& checkpoint : domain->checkpoints) {
    if (!request.new_checkpoint.empty() && checkpoint.name == request.new_checkpoint) {
      return AlreadyExists("domain checkpoint '" + request.new_checkpoint + "' already exists");
    }
  }
  Job job{request, {}};
  Checkpoint created{request.new_checkpoint, {}, false};
  for (const virt::BackupDisk& wanted : request.disks) {
    const Disk* disk = nullptr;
    for (const Disk& d : domain->disks) {
      if (d.target == wanted.target) disk = &d;
    }
    if (disk == nullptr || disk->path != wanted.source_path) {
      return InvalidArgument("domain " + request.domain + " has no disk " + wanted.target + " at " + wanted.source_path);
    }
    if (wanted.join_checkpoint && disk->format != "qcow2") {
      return InvalidArgument("checkpoint bitmaps need qcow2; disk " + wanted.target + " is " + disk->format);
    }
    Export out;
    out.frozen = std::make_shared<MemoryImage>();
    out.frozen->format = disk->format;
    out.frozen->bytes = disk->live->bytes;
    if (wanted.incremental && !request.incremental_from.empty()) {
      std::set<uint64_t> dirty;
      for (size_t i = from; i < domain->checkpoints.size(); ++i) {
        auto bitmap = domain->checkpoints[i].bitmaps.find(wanted.target);
        if (bitmap == domain->checkpoints[i].bitmaps.end()) {
          if (i == from) {
            return DataLoss("checkpoint inconsistent: disk " + wanted.target + " has no bitmap in '" +
                            request.incremental_from + "'");
          }
          continue;
        }
        dirty.insert(bitmap->second.begin(), bitmap->second.end());
      }
      out.dirty = std::move(dirty);
    }
    if (wanted.join_checkpoint) created.bitmaps[wanted.target];
    job.exports[wanted.target] = std::move(out);
  }
  for (auto& [target, out] : job.exports) domain->last_frozen[target] = out.frozen;
  if (!request.new_checkpoint.empty()) domain->checkpoints.push_back(std::move(created));
  domain->job = std::move(job);
  backups.push_back(request);
  return Status::Ok();
}

StatusOr<std::optional<std::string>> FakeBackupHypervisor::GetBackupXml(const std::string& name) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  if (domain->foreign_job_xml) return std::optional<std::string>(*domain->foreign_job_xml);
  if (!domain->job) return std::optional<std::string>();
  std::string xml = "<domainbackup mode='pull'><disks>";
  for (const virt::BackupDisk& disk : domain->job->request.disks) {
    xml += "<disk name='" + disk.target + "' backup='yes' type='file'><scratch file='" + disk.source_path +
           std::string(virt::kScratchSuffix) + "'/></disk>";
  }
  return std::optional<std::string>(xml + "</disks></domainbackup>");
}

Status FakeBackupHypervisor::EndBackup(const std::string& name) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  ++end_backup_calls;
  if (fault) VS_RETURN_IF_ERROR(fault("EndBackup", name));
  domain->job.reset();
  domain->foreign_job_xml.reset();
  return Status::Ok();
}

StatusOr<std::vector<std::string>> FakeBackupHypervisor::ListCheckpoints(const std::string& name) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  std::vector<std::string> names;
  for (const Checkpoint& checkpoint : domain->checkpoints) {
    if (!checkpoint.hidden) names.push_back(checkpoint.name);
  }
  return names;
}

Status FakeBackupHypervisor::RedefineCheckpoint(const std::string& name, const std::string& checkpoint,
                                                const std::vector<std::string>&) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  for (Checkpoint& known : domain->checkpoints) {
    if (known.name != checkpoint) continue;
    if (!known.hidden) return AlreadyExists("domain checkpoint '" + checkpoint + "' already exists");
    known.hidden = false;
    return Status::Ok();
  }
  // No such bitmaps: libvirt accepts the definition; the backup that uses it fails.
  domain->checkpoints.push_back({.name = checkpoint, .bitmaps = {}, .broken = true});
  return Status::Ok();
}

Status FakeBackupHypervisor::DeleteCheckpointMetadata(const std::string& name, const std::string& checkpoint) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  for (Checkpoint& known : domain->checkpoints) {
    if (known.name == checkpoint) known.hidden = true;
  }
  return Status::Ok();
}

Status FakeBackupHypervisor::DeleteCheckpoint(const std::string& name, const std::string& checkpoint) {
  VS_ASSIGN_OR_RETURN(Domain * domain, Find(name));
  auto& list = domain->checkpoints;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].name != checkpoint) continue;
    // Like libvirt: the deleted checkpoint's changes merge into its parent's bitmaps, so the parent
    // still describes everything written since it.
    if (i > 0) {
      Checkpoint& parent = list[i - 1];
      parent.broken |= list[i].broken;
      for (auto& [target, blocks] : list[i].bitmaps) {
        auto into = parent.bitmaps.find(target);
        if (into != parent.bitmaps.end()) into->second.insert(blocks.begin(), blocks.end());
      }
    }
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    return Status::Ok();
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<BlockDevice>> FakeBackupHypervisor::ConnectExport(
    const std::string& uri, const std::vector<std::string>& meta_contexts, IoCounts& counts) {
  constexpr std::string_view kScheme = "nbd://";
  const size_t slash = uri.find('/', kScheme.size());
  const size_t colon = uri.rfind(':', slash);
  if (uri.rfind(kScheme, 0) != 0 || slash == std::string::npos || colon == std::string::npos || colon < kScheme.size()) {
    return InvalidArgument("'" + uri + "' is not an nbd://HOST:PORT/EXPORT URI");
  }
  std::string host = uri.substr(kScheme.size(), colon - kScheme.size());
  if (host.find(':') != std::string::npos) {
    if (host.front() != '[' || host.back() != ']') {
      return InvalidArgument("'" + uri + "' is not a valid URI: an IPv6 address must be in brackets");
    }
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = uri.substr(colon + 1, slash - colon - 1);
  const std::string target = uri.substr(slash + 1);
  for (auto& [name, domain] : domains) {
    if (!domain.job || domain.job->request.listen_address != host ||
        std::to_string(domain.job->request.port) != port) {
      continue;
    }
    auto it = domain.job->exports.find(target);
    if (it == domain.job->exports.end()) continue;
    MemoryBlockDevice::Options options;
    options.name = uri;
    options.writable = false;
    options.counts = &counts;
    const std::string dirty_context = std::string(kDirtyContextPrefix) + target;
    for (const std::string& context : meta_contexts) {
      if (context == kAllocationContext) {
        options.meta_contexts.push_back(context);
      } else if (context == dirty_context && it->second.dirty) {
        options.meta_contexts.push_back(context);
        options.dirty[context] = *it->second.dirty;
      }
    }
    return std::unique_ptr<BlockDevice>(std::make_unique<MemoryBlockDevice>(it->second.frozen, std::move(options)));
  }
  return Unavailable("no NBD server exports " + uri);
}

// ---- InProcessPeer ----

Status InProcessPeer::Before(std::string_view method, const std::string& host) {
  calls.emplace_back(method);
  if (host != host_) return Unavailable("no shadowd at " + host + " (the peer is " + host_ + ")");
  if (keeper == nullptr) return Unavailable("shadowd on " + host_ + " is down");
  return fault ? fault(method, false) : Status::Ok();
}

Status InProcessPeer::After(std::string_view method) { return fault ? fault(method, true) : Status::Ok(); }

StatusOr<GetReplicaReply> InProcessPeer::GetReplica(const std::string& host, const GetReplicaRequest& request) {
  VS_RETURN_IF_ERROR(Before("GetReplica", host));
  auto reply = keeper->GetReplica(request);
  VS_RETURN_IF_ERROR(After("GetReplica"));
  return reply;
}

StatusOr<ApplyRoundReply> InProcessPeer::ApplyRound(const std::string& host, const ApplyRoundRequest& request) {
  VS_RETURN_IF_ERROR(Before("ApplyRound", host));
  auto reply = keeper->ApplyRound(request);
  VS_RETURN_IF_ERROR(After("ApplyRound"));
  if (reply.ok() && edit_apply_reply) edit_apply_reply(*reply);
  return reply;
}

Status InProcessPeer::FinishRound(const std::string& host, const FinishRoundRequest& request) {
  VS_RETURN_IF_ERROR(Before("FinishRound", host));
  Status status = keeper->FinishRound(request);
  VS_RETURN_IF_ERROR(After("FinishRound"));
  return status;
}

StatusOr<ReplicaDigestsReply> InProcessPeer::ReplicaDigests(const std::string& host,
                                                            const ReplicaDigestsRequest& request) {
  VS_RETURN_IF_ERROR(Before("ReplicaDigests", host));
  auto reply = keeper->ReplicaDigests(request);
  VS_RETURN_IF_ERROR(After("ReplicaDigests"));
  return reply;
}

}  // namespace vs::replication::testing
