// The libvirt implementation of Hypervisor and LibvirtRuntime. The only file that calls libvirt's API.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "common/thread_annotations.h"
#include "shadowd/virt/hypervisor.h"
#include "shadowd/virt/libvirt_error.h"
#include "shadowd/virt/libvirtd_probe.h"

namespace vs::virt {

std::string_view DomainStateName(DomainState state) {
  switch (state) {
    case DomainState::kNoState: return "nostate";
    case DomainState::kRunning: return "running";
    case DomainState::kBlocked: return "blocked";
    case DomainState::kPaused: return "paused";
    case DomainState::kShutdown: return "shutdown";
    case DomainState::kShutoff: return "shut off";
    case DomainState::kCrashed: return "crashed";
    case DomainState::kSuspended: return "pmsuspended";
  }
  return "unknown";
}

std::string_view DomainEventKindName(DomainEvent::Kind kind) {
  switch (kind) {
    case DomainEvent::Kind::kDefined: return "defined";
    case DomainEvent::Kind::kUndefined: return "undefined";
    case DomainEvent::Kind::kStarted: return "started";
    case DomainEvent::Kind::kStopped: return "stopped";
    case DomainEvent::Kind::kSuspended: return "suspended";
    case DomainEvent::Kind::kResumed: return "resumed";
    case DomainEvent::Kind::kMetadataChanged: return "metadata-changed";
    case DomainEvent::Kind::kOther: return "other";
  }
  return "unknown";
}

namespace {

using DomainHandle = std::unique_ptr<virDomain, decltype(&virDomainFree)>;

// How long a successful MigrateLive waits for libvirt's job-completed event after the migrate call returned.
constexpr Duration kCompletedEventWait = std::chrono::seconds(3);

// What the job-completed event of one migration carried; filled on the event-loop thread.
struct JobCompletion {
  explicit JobCompletion(Clock& clock) : clock(clock) {}
  Clock& clock;
  Mutex mu;
  CondVar cv;
  bool arrived VS_GUARDED_BY(mu) = false;
  MonoTime arrived_at VS_GUARDED_BY(mu);
  MigrationStats stats VS_GUARDED_BY(mu);
};

std::optional<uint64_t> TypedULLong(virTypedParameterPtr params, int nparams, const char* field) {
  unsigned long long v = 0;
  if (virTypedParamsGetULLong(params, nparams, field, &v) == 1) return v;
  return std::nullopt;
}

// The same fields in the job-completed event and in virDomainGetJobStats.
MigrationStats StatsFromParams(virTypedParameterPtr params, int nparams) {
  auto get = [&](const char* field) { return TypedULLong(params, nparams, field); };
  return {.downtime_ms = get(VIR_DOMAIN_JOB_DOWNTIME),
          .memory_bytes_processed = get(VIR_DOMAIN_JOB_MEMORY_PROCESSED),
          .disk_bytes_processed = get(VIR_DOMAIN_JOB_DISK_PROCESSED),
          .postcopy_page_requests = get(VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS)};
}

// Takes only an outgoing migration's event: libvirt sends the same event when any async job of the domain ends,
// and the end of the final round's pull backup (operation 9, "backup", with neither downtime nor memory figures)
// was seen arriving after MigrateLive had registered, where it stood in for the migration's figures (all 0).
void OnJobCompleted(virConnectPtr, virDomainPtr, virTypedParameterPtr params, int nparams, void* opaque) {
  int operation = VIR_DOMAIN_JOB_OPERATION_UNKNOWN;
  if (virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &operation) != 1 ||
      operation != VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT) {
    return;
  }
  auto* completion = static_cast<JobCompletion*>(opaque);
  MutexLock lock(completion->mu);
  completion->stats = StatsFromParams(params, nparams);
  completion->arrived = true;
  completion->arrived_at = completion->clock.Now();
  completion->cv.notify_all();
}

DomainState StateFromLibvirt(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING: return DomainState::kRunning;
    case VIR_DOMAIN_BLOCKED: return DomainState::kBlocked;
    case VIR_DOMAIN_PAUSED: return DomainState::kPaused;
    case VIR_DOMAIN_SHUTDOWN: return DomainState::kShutdown;
    case VIR_DOMAIN_SHUTOFF: return DomainState::kShutoff;
    case VIR_DOMAIN_CRASHED: return DomainState::kCrashed;
    case VIR_DOMAIN_PMSUSPENDED: return DomainState::kSuspended;
    default: return DomainState::kNoState;
  }
}

// The sum of "<prefix>.N.<field>" over N < "<prefix>.count" in one bulk-stats record; a field libvirt leaves
// out (a cdrom without media, an interface type without counters) counts as 0.
uint64_t SumStat(const virDomainStatsRecord& record, const char* prefix, const char* field) {
  unsigned count = 0;
  const std::string count_field = std::string(prefix) + ".count";
  if (virTypedParamsGetUInt(record.params, record.nparams, count_field.c_str(), &count) != 1) return 0;
  uint64_t sum = 0;
  for (unsigned i = 0; i < count; ++i) {
    const std::string name = std::string(prefix) + "." + std::to_string(i) + "." + field;
    sum += TypedULLong(record.params, record.nparams, name.c_str()).value_or(0);
  }
  return sum;
}

using PoolHandle = std::unique_ptr<virStoragePool, decltype(&virStoragePoolFree)>;
using VolumeHandle = std::unique_ptr<virStorageVol, decltype(&virStorageVolFree)>;

std::string Dirname(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}
std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

class LibvirtSubscription;

// A connection that is opened again when libvirt says it is dead (libvirtd restarted, a keepalive timed out):
// before, a long-lived connection failed every call with "client socket is closed" until shadowd restarted
// (seen in the lab). At most one reopen per kReopenInterval, so that calls to a dead host fail at once instead
// of each dialling it, and only to a libvirtd that answers within it. The domain-event subscriptions follow to
// the new connection. Shared (shared_ptr) by the
// Hypervisor and its subscriptions, whichever is destroyed last. Thread-safe.
class Connection {
 public:
  using Ref = std::unique_ptr<virConnect, int (*)(virConnectPtr)>;
  static constexpr Duration kReopenInterval = std::chrono::seconds(1);

  Connection(std::string uri, virConnectPtr conn, Clock& clock) : uri_(std::move(uri)), clock_(clock), conn_(conn) {}
  ~Connection() { virConnectClose(conn_); }

  // The live connection (reopened first if it died), referenced for as long as the caller holds it.
  Ref Get() VS_EXCLUDES(mu_);
  // Registers `subscription`'s callbacks on the current connection and keeps it for the reopens to come.
  Status Attach(LibvirtSubscription* subscription) VS_EXCLUDES(mu_);
  void Remove(LibvirtSubscription* subscription) VS_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    subscriptions_.erase(subscription);
  }

 private:
  const std::string uri_;
  Clock& clock_;
  Mutex mu_;
  virConnectPtr conn_ VS_GUARDED_BY(mu_);
  std::optional<MonoTime> next_reopen_ VS_GUARDED_BY(mu_);
  std::set<LibvirtSubscription*> subscriptions_ VS_GUARDED_BY(mu_);
};

// Opens `uri` with the keepalive that notices a dead peer within ~15 s instead of hanging on TCP timeouts.
virConnectPtr OpenConnection(const std::string& uri) {
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn != nullptr && virConnectSetKeepAlive(conn, 5, 3) < 0) virResetLastError();
  return conn;
}

// One WatchDomains registration: two libvirt callbacks (lifecycle, metadata change) sharing one sink, moved to
// the new connection when Connection reopens it (events in between are lost: the daemon's refresh covers them).
class LibvirtSubscription final : public Subscription {
 public:
  LibvirtSubscription(std::shared_ptr<Connection> connection, std::function<void(const DomainEvent&)> sink)
      : connection_(std::move(connection)), sink_(std::move(sink)) {}
  ~LibvirtSubscription() override {
    connection_->Remove(this);
    {
      MutexLock lock(registration_mu_);
      Deregister();
    }
    MutexLock lock(mu_);  // waits for a callback in progress
    sink_ = nullptr;
  }
  Status Register() { return connection_->Attach(this); }
  // Called by Connection, under its lock: the callbacks move to `conn` (from the dead one, if any).
  Status MoveTo(virConnectPtr conn) {
    MutexLock lock(registration_mu_);
    Deregister();
    Status registered = RegisterOn(conn);
    if (!registered.ok()) Deregister();
    return registered;
  }

 private:
  static DomainEvent Describe(virDomainPtr dom, DomainEvent::Kind kind, int detail) {
    DomainEvent event{.kind = kind, .name = virDomainGetName(dom), .uuid = "", .libvirt_detail = detail};
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) == 0) event.uuid = uuid;
    return event;
  }
  static int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
    DomainEvent::Kind kind = DomainEvent::Kind::kOther;
    switch (event) {
      case VIR_DOMAIN_EVENT_DEFINED: kind = DomainEvent::Kind::kDefined; break;
      case VIR_DOMAIN_EVENT_UNDEFINED: kind = DomainEvent::Kind::kUndefined; break;
      case VIR_DOMAIN_EVENT_STARTED: kind = DomainEvent::Kind::kStarted; break;
      case VIR_DOMAIN_EVENT_STOPPED: kind = DomainEvent::Kind::kStopped; break;
      case VIR_DOMAIN_EVENT_SUSPENDED: kind = DomainEvent::Kind::kSuspended; break;
      case VIR_DOMAIN_EVENT_RESUMED: kind = DomainEvent::Kind::kResumed; break;
      default: break;
    }
    static_cast<LibvirtSubscription*>(opaque)->Deliver(Describe(dom, kind, detail));
    return 0;
  }
  static void OnMetadata(virConnectPtr, virDomainPtr dom, int type, const char*, void* opaque) {
    static_cast<LibvirtSubscription*>(opaque)->Deliver(Describe(dom, DomainEvent::Kind::kMetadataChanged, type));
  }
  void Deliver(const DomainEvent& event) {
    MutexLock lock(mu_);
    if (sink_) sink_(event);
  }
  Status RegisterOn(virConnectPtr conn) VS_REQUIRES(registration_mu_) {
    virConnectRef(conn);
    registered_on_ = conn;
    int lifecycle = virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                     VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle), this, nullptr);
    if (lifecycle < 0) return LastLibvirtError("watching domain lifecycle events");
    callback_ids_.push_back(lifecycle);
    int metadata = virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
                                                    VIR_DOMAIN_EVENT_CALLBACK(OnMetadata), this, nullptr);
    if (metadata < 0) return LastLibvirtError("watching domain metadata changes");
    callback_ids_.push_back(metadata);
    return Status::Ok();
  }
  void Deregister() VS_REQUIRES(registration_mu_) {
    if (registered_on_ == nullptr) return;
    for (int id : callback_ids_) {
      if (virConnectDomainEventDeregisterAny(registered_on_, id) < 0) virResetLastError();
    }
    callback_ids_.clear();
    virConnectClose(registered_on_);  // the reference RegisterOn took
    registered_on_ = nullptr;
  }

  const std::shared_ptr<Connection> connection_;
  Mutex mu_;
  std::function<void(const DomainEvent&)> sink_ VS_GUARDED_BY(mu_);
  Mutex registration_mu_;
  virConnectPtr registered_on_ VS_GUARDED_BY(registration_mu_) = nullptr;
  std::vector<int> callback_ids_ VS_GUARDED_BY(registration_mu_);
};

Status Connection::Attach(LibvirtSubscription* subscription) {
  MutexLock lock(mu_);
  VS_RETURN_IF_ERROR(subscription->MoveTo(conn_));
  subscriptions_.insert(subscription);
  return Status::Ok();
}

Connection::Ref Connection::Get() {
  MutexLock lock(mu_);
  if (virConnectIsAlive(conn_) != 1) {
    virResetLastError();
    const MonoTime now = clock_.Now();
    if (!next_reopen_ || now >= *next_reopen_) {
      next_reopen_ = now + kReopenInterval;
      // libvirt's connect has no timeout (libvirtd_probe.h): a dead remote would hold every caller here.
      virConnectPtr fresh = LibvirtdAnswers(uri_, kReopenInterval).ok() ? OpenConnection(uri_) : nullptr;
      if (fresh != nullptr) {
        virConnectClose(conn_);
        conn_ = fresh;
        for (LibvirtSubscription* subscription : subscriptions_) subscription->MoveTo(conn_).IgnoreError();
      } else {
        virResetLastError();  // the call on the dead connection reports the failure
      }
    }
  }
  virConnectRef(conn_);
  return Ref(conn_, &virConnectClose);
}

class LibvirtHypervisor final : public Hypervisor {
 public:
  LibvirtHypervisor(std::string uri, virConnectPtr conn, Clock& clock)
      : uri_(uri), connection_(std::make_shared<Connection>(std::move(uri), conn, clock)), clock_(clock) {}

  const std::string& uri() const override { return uri_; }

  StatusOr<std::string> Hostname() override {
    const Connection::Ref conn = Conn();
    char* name = virConnectGetHostname(conn.get());
    if (name == nullptr) return LastLibvirtError("hostname of " + uri_);
    std::string result(name);
    free(name);
    return result;
  }

  StatusOr<std::vector<std::string>> ListDomainNames() override {
    virDomainPtr* domains = nullptr;
    const Connection::Ref conn = Conn();
    int n = virConnectListAllDomains(conn.get(), &domains, 0);
    if (n < 0) return LastLibvirtError("listing domains on " + uri_);
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      names.emplace_back(virDomainGetName(domains[i]));
      virDomainFree(domains[i]);
    }
    free(domains);
    return names;
  }

  StatusOr<std::string> DefineDomain(const std::string& xml) override {
    const Connection::Ref conn = Conn();
    virDomainPtr dom = virDomainDefineXMLFlags(conn.get(), xml.c_str(), VIR_DOMAIN_DEFINE_VALIDATE);
    if (dom == nullptr) return LastLibvirtError("defining a domain on " + uri_);
    std::string name = virDomainGetName(dom);
    virDomainFree(dom);
    return name;
  }

  Status StartDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    if (virDomainCreate(dom.get()) < 0) return LastLibvirtError("starting " + name + " on " + uri_);
    return Status::Ok();
  }

  Status SetVcpusLive(const std::string& name, uint32_t vcpus) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    if (virDomainSetVcpusFlags(dom.get(), vcpus, VIR_DOMAIN_AFFECT_LIVE) < 0) {
      return LastLibvirtError("setting " + name + " to " + std::to_string(vcpus) + " vCPUs live on " + uri_);
    }
    return Status::Ok();
  }

  Status SetMemoryLive(const std::string& name, uint64_t memory_kib) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    if (virDomainSetMemoryFlags(dom.get(), memory_kib, VIR_DOMAIN_AFFECT_LIVE) < 0) {
      return LastLibvirtError("setting " + name + "'s balloon to " + std::to_string(memory_kib) + " KiB on " + uri_);
    }
    return Status::Ok();
  }

  Status DestroyDomain(const std::string& name) override {
    auto dom = Lookup(name);
    if (!dom.ok()) return dom.status().code() == Code::kNotFound ? Status::Ok() : dom.status();
    if (virDomainIsActive(dom->get()) != 1) return Status::Ok();
    if (virDomainDestroy(dom->get()) < 0) return LastLibvirtError("destroying " + name + " on " + uri_);
    return Status::Ok();
  }

  Status SuspendDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    int state = 0, reason = 0;
    if (virDomainGetState(dom.get(), &state, &reason, 0) < 0) {
      return LastLibvirtError("state of " + name + " on " + uri_);
    }
    if (state == VIR_DOMAIN_PAUSED) return Status::Ok();
    if (virDomainIsActive(dom.get()) != 1) return FailedPrecondition(name + " does not run on " + uri_);
    if (virDomainSuspend(dom.get()) < 0) return LastLibvirtError("pausing " + name + " on " + uri_);
    return Status::Ok();
  }

  Status ResumeDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    int state = 0, reason = 0;
    if (virDomainGetState(dom.get(), &state, &reason, 0) < 0) {
      return LastLibvirtError("state of " + name + " on " + uri_);
    }
    if (state != VIR_DOMAIN_PAUSED) {
      if (virDomainIsActive(dom.get()) == 1) return Status::Ok();
      return FailedPrecondition(name + " does not run on " + uri_);
    }
    if (virDomainResume(dom.get()) < 0) return LastLibvirtError("resuming " + name + " on " + uri_);
    return Status::Ok();
  }

  Status UndefineDomain(const std::string& name) override {
    auto dom = Lookup(name);
    if (!dom.ok()) return dom.status().code() == Code::kNotFound ? Status::Ok() : dom.status();
    unsigned flags = VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                     VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_NVRAM;
    if (virDomainUndefineFlags(dom->get(), flags) < 0) {
      return LastLibvirtError("undefining " + name + " on " + uri_);
    }
    return Status::Ok();
  }

  StatusOr<DomainState> GetDomainState(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    int state = 0, reason = 0;
    if (virDomainGetState(dom.get(), &state, &reason, 0) < 0) {
      return LastLibvirtError("state of " + name + " on " + uri_);
    }
    return StateFromLibvirt(state);
  }

  StatusOr<std::string> GetDomainXml(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    char* xml = virDomainGetXMLDesc(dom.get(), 0);
    if (xml == nullptr) return LastLibvirtError("XML of " + name + " on " + uri_);
    std::string result(xml);
    free(xml);
    return result;
  }

  StatusOr<NodeCapacity> GetNodeCapacity() override {
    virNodeInfo info;
    const Connection::Ref conn = Conn();
    if (virNodeGetInfo(conn.get(), &info) < 0) return LastLibvirtError("node info of " + uri_);
    NodeCapacity capacity{.cpus = static_cast<int>(info.cpus), .memory_kib = info.memory};
    virDomainPtr* domains = nullptr;
    int n = virConnectListAllDomains(conn.get(), &domains, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) return LastLibvirtError("listing running domains on " + uri_);
    for (int i = 0; i < n; ++i) {
      virDomainInfo dom_info;
      if (virDomainGetInfo(domains[i], &dom_info) == 0) {
        capacity.running_vcpus += dom_info.nrVirtCpu;
        capacity.running_memory_kib += dom_info.memory;
      } else {
        virResetLastError();  // it stopped meanwhile
      }
      virDomainFree(domains[i]);
    }
    free(domains);
    return capacity;
  }

  StatusOr<std::optional<std::string>> GetMetadata(const std::string& name, const std::string& ns_uri) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    char* xml = virDomainGetMetadata(dom.get(), VIR_DOMAIN_METADATA_ELEMENT, ns_uri.c_str(), VIR_DOMAIN_AFFECT_CURRENT);
    if (xml == nullptr) {
      Status err = LastLibvirtError("metadata " + ns_uri + " of " + name);
      if (err.code() == Code::kNotFound) return std::optional<std::string>();
      return err;
    }
    std::string result(xml);
    free(xml);
    return std::optional<std::string>(std::move(result));
  }

  Status SetMetadata(const std::string& name, const std::string& ns_uri, const std::string& key,
                     const std::string& xml) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainIsActive(dom.get()) == 1) flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainIsPersistent(dom.get()) != 1) flags &= ~VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainSetMetadata(dom.get(), VIR_DOMAIN_METADATA_ELEMENT, xml.empty() ? nullptr : xml.c_str(),
                             xml.empty() ? nullptr : key.c_str(), ns_uri.c_str(), flags) < 0) {
      return LastLibvirtError("setting metadata " + ns_uri + " of " + name);
    }
    return Status::Ok();
  }

  Status CreateImage(const std::string& path, uint64_t virtual_size_bytes, ImageFormat format) override {
    // A missing folder is made: a replica lives at the primary's path, and some layouts keep each VM's images in a
    // folder of its own (Nova's instance directory), which the shadow host does not have yet.
    VS_ASSIGN_OR_RETURN(PoolHandle pool, PoolFor(path, /*build=*/true));
    if (auto existing = LookupVolume(path); existing.ok()) {
      virStorageVolInfo info;
      if (virStorageVolGetInfo(existing->get(), &info) < 0) return LastLibvirtError("size of " + path);
      if (info.capacity == virtual_size_bytes) return Status::Ok();
      return AlreadyExists(path + " exists on " + uri_ + " with virtual size " + std::to_string(info.capacity) +
                           " bytes, not " + std::to_string(virtual_size_bytes));
    }
    std::string xml = "<volume><name>" + XmlEscape(Basename(path)) + "</name><capacity unit='bytes'>" +
                      std::to_string(virtual_size_bytes) + "</capacity><target><format type='" +
                      (format == ImageFormat::kQcow2 ? "qcow2'/><compat>1.1</compat>" : "raw'/>") +
                      "</target></volume>";
    // compat 1.1 (qcow2 v3): a replica becomes the VM's disk after a switchover, and persistent dirty
    // bitmaps (the next replication chain) cannot be stored in v2 images, libvirt's default here.
    virStorageVolPtr vol = virStorageVolCreateXML(pool.get(), xml.c_str(), 0);
    if (vol == nullptr) return LastLibvirtError("creating " + path + " on " + uri_);
    virStorageVolFree(vol);
    return Status::Ok();
  }

  Status DeleteImage(const std::string& path) override {
    auto pool = PoolFor(path);
    if (!pool.ok()) return pool.status().code() == Code::kNotFound ? Status::Ok() : pool.status();
    auto vol = LookupVolume(path);
    if (!vol.ok()) return vol.status().code() == Code::kNotFound ? Status::Ok() : vol.status();
    if (virStorageVolDelete(vol->get(), 0) < 0) return LastLibvirtError("deleting " + path + " on " + uri_);
    return RemoveInstanceFolderIfEmpty(Dirname(path), std::move(*pool));
  }

  // A folder named by a UUID is one VM's own (Nova's instance directory, made by CreateImage for a replica): once
  // its last image is gone it is removed too, or Nova would refuse to live-migrate the VM to this host later
  // (DestinationDiskExists). Any other folder stays. libvirt deletes only an inactive pool's folder: the transient
  // pool goes, a persistent one over the folder is defined, deleted (rmdir) and undefined.
  Status RemoveInstanceFolderIfEmpty(const std::string& dir, PoolHandle pool) {
    if (!LooksLikeUuid(Basename(dir))) return Status::Ok();
    if (virStoragePoolRefresh(pool.get(), 0) < 0 || virStoragePoolNumOfVolumes(pool.get()) != 0) {
      virResetLastError();
      return Status::Ok();  // something else is there: it stays
    }
    if (virStoragePoolDestroy(pool.get()) < 0) return LastLibvirtError("releasing the pool of " + dir);
    const std::string xml = "<pool type='dir'><name>virt-shadow-rm-" + Basename(dir) + "</name><target><path>" +
                            XmlEscape(dir) + "</path></target></pool>";
    PoolHandle defined(virStoragePoolDefineXML(Conn().get(), xml.c_str(), 0), &virStoragePoolFree);
    if (defined == nullptr) return LastLibvirtError("removing the empty folder " + dir + " on " + uri_);
    Status removed = virStoragePoolDelete(defined.get(), 0) < 0
                         ? LastLibvirtError("removing the empty folder " + dir + " on " + uri_)
                         : Status::Ok();
    if (virStoragePoolUndefine(defined.get()) < 0) virResetLastError();
    return removed;
  }

  static bool LooksLikeUuid(const std::string& name) {
    if (name.size() != 36) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? name[i] != '-' : !std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
    }
    return true;
  }

  StatusOr<uint64_t> ImageVirtualSize(const std::string& path) override {
    VS_ASSIGN_OR_RETURN(PoolHandle pool, PoolFor(path));
    VS_ASSIGN_OR_RETURN(VolumeHandle vol, LookupVolume(path));
    virStorageVolInfo info;
    if (virStorageVolGetInfo(vol.get(), &info) < 0) return LastLibvirtError("size of " + path + " on " + uri_);
    return static_cast<uint64_t>(info.capacity);
  }

  Status BeginPullBackup(const PullBackupRequest& request) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(request.domain));
    std::string backup = "<domainbackup mode='pull'>";
    if (!request.incremental_from.empty()) {
      backup += "<incremental>" + XmlEscape(request.incremental_from) + "</incremental>";
    }
    backup += "<server transport='tcp' name='" + XmlEscape(request.listen_address) + "' port='" +
              std::to_string(request.port) + "'" + (request.tls ? " tls='yes'" : "") + "/><disks>";
    std::string checkpoint = "<domaincheckpoint><name>" + XmlEscape(request.new_checkpoint) + "</name><disks>";
    for (const BackupDisk& disk : request.disks) {
      const bool whole = !disk.incremental && !request.incremental_from.empty();
      backup += "<disk name='" + XmlEscape(disk.target) + "' backup='yes' type='file'" +
                (whole ? " backupmode='full'" : "") + "><scratch file='" +
                XmlEscape(disk.source_path + std::string(kScratchSuffix)) + "'/></disk>";
      checkpoint += "<disk name='" + XmlEscape(disk.target) + "' checkpoint='" + (disk.join_checkpoint ? "bitmap" : "no") + "'/>";
    }
    backup += "</disks></domainbackup>";
    checkpoint += "</disks></domaincheckpoint>";
    const char* checkpoint_xml = request.new_checkpoint.empty() ? nullptr : checkpoint.c_str();
    if (virDomainBackupBegin(dom.get(), backup.c_str(), checkpoint_xml, 0) < 0) {
      return LastLibvirtError("pull backup of " + request.domain + " on " + uri_);
    }
    return Status::Ok();
  }

  StatusOr<std::optional<std::string>> GetBackupXml(const std::string& domain) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    char* xml = virDomainBackupGetXMLDesc(dom.get(), 0);
    if (xml == nullptr) {
      virErrorPtr err = virGetLastError();
      if (err != nullptr && err->code == VIR_ERR_NO_DOMAIN_BACKUP) {
        virResetLastError();
        return std::optional<std::string>();
      }
      return LastLibvirtError("backup job of " + domain + " on " + uri_);
    }
    std::string result(xml);
    free(xml);
    return std::optional<std::string>(std::move(result));
  }

  Status EndBackup(const std::string& domain) override {
    VS_ASSIGN_OR_RETURN(std::optional<std::string> running, GetBackupXml(domain));
    if (!running) return Status::Ok();
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    if (virDomainAbortJob(dom.get()) < 0) {
      Status err = LastLibvirtError("ending the backup of " + domain + " on " + uri_);
      // It may have ended by itself in between.
      auto again = GetBackupXml(domain);
      if (again.ok() && !*again) return Status::Ok();
      return err;
    }
    return Status::Ok();
  }

  StatusOr<std::vector<std::string>> ListCheckpoints(const std::string& domain) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    virDomainCheckpointPtr* checkpoints = nullptr;
    int n = virDomainListAllCheckpoints(dom.get(), &checkpoints, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    if (n < 0) return LastLibvirtError("checkpoints of " + domain + " on " + uri_);
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      names.emplace_back(virDomainCheckpointGetName(checkpoints[i]));
      virDomainCheckpointFree(checkpoints[i]);
    }
    free(checkpoints);
    return names;
  }

  Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    virDomainCheckpointPtr cp = virDomainCheckpointLookupByName(dom.get(), checkpoint.c_str(), 0);
    if (cp == nullptr) {
      Status err = LastLibvirtError("checkpoint " + checkpoint + " of " + domain);
      return err.code() == Code::kNotFound ? Status::Ok() : err;
    }
    std::unique_ptr<virDomainCheckpoint, decltype(&virDomainCheckpointFree)> handle(cp, &virDomainCheckpointFree);
    if (virDomainCheckpointDelete(cp, 0) == 0) return Status::Ok();
    Status err = LastLibvirtError("deleting checkpoint " + checkpoint + " of " + domain + " on " + uri_);
    // After QEMU was killed its bitmaps are gone ("bitmap not found in backing chain"): drop the metadata.
    if (virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) == 0) return Status::Ok();
    return err;
  }

  Status DiscardForeignBitmap(const std::string& domain, const std::string& target,
                              const std::string& bitmap) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    const std::string what = "bitmap " + bitmap + " of disk " + target + " of " + domain + " on " + uri_;
    if (virDomainCheckpointPtr existing = virDomainCheckpointLookupByName(dom.get(), bitmap.c_str(), 0)) {
      virDomainCheckpointFree(existing);
      return AlreadyExists(what + ": libvirt has a checkpoint of that name here; it is not a foreign bitmap");
    }
    virResetLastError();
    // Names come from the image (qemu-img info): only plain ones are put into XML.
    auto plain = [](const std::string& text) {
      return !text.empty() && text.find_first_of("<>&'\"") == std::string::npos;
    };
    if (!plain(bitmap) || !plain(target)) return InvalidArgument(what + ": not a plain name");
    const std::string xml = "<domaincheckpoint><name>" + bitmap + "</name><creationTime>1</creationTime><disks>"
                            "<disk name='" + target + "' checkpoint='bitmap' bitmap='" + bitmap +
                            "'/></disks></domaincheckpoint>";
    virDomainCheckpointPtr adopted =
        virDomainCheckpointCreateXML(dom.get(), xml.c_str(), VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE);
    if (adopted == nullptr) return LastLibvirtError("adopting the " + what + " as a checkpoint");
    std::unique_ptr<virDomainCheckpoint, decltype(&virDomainCheckpointFree)> handle(adopted, &virDomainCheckpointFree);
    if (virDomainCheckpointDelete(adopted, 0) == 0) return Status::Ok();
    Status err = LastLibvirtError("removing the " + what);
    // Leave no checkpoint behind that names a bitmap QEMU could not remove.
    if (virDomainCheckpointDelete(adopted, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0) virResetLastError();
    return err;
  }

  Status RedefineCheckpoint(const std::string& domain, const std::string& name,
                            const std::vector<std::string>& targets) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    const std::string what = "checkpoint " + name + " of " + domain + " on " + uri_;
    if (virDomainCheckpointPtr existing = virDomainCheckpointLookupByName(dom.get(), name.c_str(), 0)) {
      virDomainCheckpointFree(existing);
      return AlreadyExists(what + ": libvirt knows it");
    }
    virResetLastError();
    std::string xml = "<domaincheckpoint><name>" + XmlEscape(name) + "</name><creationTime>1</creationTime><disks>";
    for (const std::string& target : targets) {
      xml += "<disk name='" + XmlEscape(target) + "' checkpoint='bitmap' bitmap='" + XmlEscape(name) + "'/>";
    }
    xml += "</disks></domaincheckpoint>";
    virDomainCheckpointPtr redefined =
        virDomainCheckpointCreateXML(dom.get(), xml.c_str(), VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE);
    if (redefined == nullptr) return LastLibvirtError("redefining the " + what);
    virDomainCheckpointFree(redefined);
    return Status::Ok();
  }

  Status DeleteCheckpointMetadata(const std::string& domain, const std::string& name) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    virDomainCheckpointPtr checkpoint = virDomainCheckpointLookupByName(dom.get(), name.c_str(), 0);
    if (checkpoint == nullptr) {
      virResetLastError();
      return Status::Ok();
    }
    std::unique_ptr<virDomainCheckpoint, decltype(&virDomainCheckpointFree)> handle(checkpoint,
                                                                                    &virDomainCheckpointFree);
    if (virDomainCheckpointDelete(checkpoint, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0) {
      return LastLibvirtError("forgetting checkpoint " + name + " of " + domain + " on " + uri_);
    }
    return Status::Ok();
  }

  StatusOr<std::unique_ptr<Subscription>> WatchDomains(std::function<void(const DomainEvent&)> on_event) override {
    auto subscription = std::make_unique<LibvirtSubscription>(connection_, std::move(on_event));
    VS_RETURN_IF_ERROR(subscription->Register());
    return std::unique_ptr<Subscription>(std::move(subscription));
  }

  // Sequence: register for the source's job-completed event; start virDomainMigrateToURI3 on a worker thread;
  // meanwhile, every 100 ms, ask the caller whether to switch and, once it said yes, ask libvirt for postcopy
  // until it accepts (it refuses while the storage mirror is still syncing or before the first precopy pass);
  // the worker's return ends the migration.
  StatusOr<MigrationResult> MigrateLive(const std::string& name, const std::string& dest_uri,
                                        const MigrationOptions& options) override {
    if (options.copy_storage_all && options.copy_storage_incremental) {
      return InvalidArgument("migration of " + name + ": copy_storage_all and copy_storage_incremental exclude "
                             "each other; set at most one");
    }
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(name));
    // The domain's own connection: the registration and its removal must use the same one.
    virConnectPtr const conn = virDomainGetConnect(dom.get());
    JobCompletion completion(clock_);
    int callback_id = virConnectDomainEventRegisterAny(
        conn, dom.get(), VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
        VIR_DOMAIN_EVENT_CALLBACK(OnJobCompleted), &completion, nullptr);
    if (callback_id < 0) return LastLibvirtError("watching the migration job of " + name);

    unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER;
    if (options.postcopy) flags |= VIR_MIGRATE_POSTCOPY;
    if (options.copy_storage_all) flags |= VIR_MIGRATE_NON_SHARED_DISK;
    if (options.copy_storage_incremental) flags |= VIR_MIGRATE_NON_SHARED_INC;
    if (options.move_definition) flags |= VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE;
    if (options.tls) flags |= VIR_MIGRATE_TLS;
    virTypedParameterPtr params = nullptr;
    int nparams = 0, maxparams = 0;
    if (options.precopy_bandwidth_mibs > 0 &&
        virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
                                options.precopy_bandwidth_mibs) < 0) {
      virConnectDomainEventDeregisterAny(conn, callback_id);
      return LastLibvirtError("migration parameters");
    }

    const MonoTime start = clock_.Now();
    std::promise<Status> migrated;
    std::future<Status> migrated_future = migrated.get_future();
    std::thread worker([&] {
      int rc = virDomainMigrateToURI3(dom.get(), dest_uri.c_str(), params, nparams, flags);
      migrated.set_value(rc == 0 ? Status::Ok()
                                 : LastLibvirtError("migrating " + name + " from " + uri_ + " to " + dest_uri));
    });

    MigrationResult result;
    bool aborted = false;
    bool cancelled = false;
    while (migrated_future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (!aborted && !result.postcopy_requested_after && options.cancel && options.cancel()) {
        aborted = cancelled = true;
        if (virDomainAbortJob(dom.get()) < 0) virResetLastError();
      }
      if (options.postcopy && !result.postcopy_requested_after &&
          (!options.switch_to_postcopy || options.switch_to_postcopy(clock_.Now() - start))) {
        result.postcopy_requested_after = clock_.Now() - start;
      }
      if (result.postcopy_requested_after && !result.postcopy_started_after) {
        if (virDomainMigrateStartPostCopy(dom.get(), 0) == 0) {
          result.postcopy_started_after = clock_.Now() - start;
        } else {
          virResetLastError();  // refusals before the switch is possible are expected
        }
      }
      if (!aborted && clock_.Now() - start > options.timeout) {
        aborted = true;
        if (virDomainAbortJob(dom.get()) < 0) virResetLastError();
      }
    }
    worker.join();
    virTypedParamsFree(params, nparams);
    Status status = migrated_future.get();
    result.elapsed = clock_.Now() - start;

    if (status.ok()) {
      // The event trails the API's return by milliseconds (libvirtd's main loop relays it after the reply).
      const MonoTime returned_at = clock_.Now();
      MutexLock lock(completion.mu);
      const auto until = std::chrono::steady_clock::now() + kCompletedEventWait;
      while (!completion.arrived) {
        if (completion.cv.wait_until(completion.mu, until) == std::cv_status::timeout) break;
      }
      if (completion.arrived) result.completed_event_lag = std::max(Duration::zero(), completion.arrived_at - returned_at);
      result.downtime_ms = completion.stats.downtime_ms;
      result.memory_bytes_processed = completion.stats.memory_bytes_processed;
      result.disk_bytes_processed = completion.stats.disk_bytes_processed;
      result.postcopy_page_requests = completion.stats.postcopy_page_requests;
    }
    {
      // Deregister under the completion lock so a late callback cannot touch `completion` after return.
      MutexLock lock(completion.mu);
      if (virConnectDomainEventDeregisterAny(conn, callback_id) < 0) virResetLastError();
    }
    if (cancelled && !status.ok()) {
      return Aborted("migration of " + name + " was cancelled before its postcopy switch; it stays on " + uri_);
    }
    if (aborted && !status.ok()) {
      return DeadlineExceeded("migration of " + name + " did not finish within " +
                              std::to_string(options.timeout.count()) + " s and was aborted");
    }
    if (!status.ok()) return status;
    return result;
  }

  StatusOr<MigrationProgress> GetMigrationProgress(const std::string& domain) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    int type = VIR_DOMAIN_JOB_NONE;
    virTypedParameterPtr params = nullptr;
    int nparams = 0;
    if (virDomainGetJobStats(dom.get(), &type, &params, &nparams, 0) < 0) {
      return LastLibvirtError("job of " + domain + " on " + uri_);
    }
    MigrationProgress progress;
    int operation = 0;
    progress.active = type != VIR_DOMAIN_JOB_NONE &&
                      virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &operation) == 1 &&
                      operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
    if (progress.active) {
      auto get = [&](const char* field) { return TypedULLong(params, nparams, field).value_or(0); };
      progress.memory_remaining_bytes = get(VIR_DOMAIN_JOB_MEMORY_REMAINING);
      progress.memory_total_bytes = get(VIR_DOMAIN_JOB_MEMORY_TOTAL);
      progress.memory_dirty_rate_bytes_per_s =
          get(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE) * get(VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE);
      progress.disk_remaining_bytes = get(VIR_DOMAIN_JOB_DISK_REMAINING);
      progress.data_remaining_bytes = get(VIR_DOMAIN_JOB_DATA_REMAINING);
    }
    virTypedParamsFree(params, nparams);
    return progress;
  }

  // Registered for the event before the job is looked at, so that a job ending in between still delivers its
  // figures. A job seen running and then gone is given a moment for its event, which trails the job's end.
  StatusOr<std::optional<MigrationStats>> AwaitOutgoingMigration(const std::string& domain, Duration timeout,
                                                                 bool switch_to_postcopy) override {
    StatusOr<DomainHandle> dom = Lookup(domain);
    if (!dom.ok()) {
      if (dom.status().code() == Code::kNotFound) return std::optional<MigrationStats>();
      return dom.status();
    }
    virConnectPtr const conn = virDomainGetConnect(dom->get());  // as in MigrateLive
    JobCompletion completion(clock_);
    const int callback_id = virConnectDomainEventRegisterAny(
        conn, dom->get(), VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, VIR_DOMAIN_EVENT_CALLBACK(OnJobCompleted),
        &completion, nullptr);
    if (callback_id < 0) return LastLibvirtError("watching the migration job of " + domain + " on " + uri_);
    constexpr Duration kEventGrace = std::chrono::seconds(3);
    const MonoTime give_up = clock_.Now() + timeout;
    bool seen_running = false;
    bool switch_accepted = false;
    std::optional<MonoTime> gone_since;
    std::optional<MigrationStats> stats;
    while (true) {
      {
        MutexLock lock(completion.mu);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (!completion.arrived) {
          if (completion.cv.wait_until(completion.mu, until) == std::cv_status::timeout) break;
        }
        if (completion.arrived) {
          stats = completion.stats;
          stats->postcopy_switch_accepted = switch_accepted;
          break;
        }
      }
      StatusOr<MigrationProgress> progress = GetMigrationProgress(domain);
      if (progress.ok() && progress->active) {
        seen_running = true;
        gone_since.reset();
        if (switch_to_postcopy && !switch_accepted) {
          if (virDomainMigrateStartPostCopy(dom->get(), 0) == 0) {
            switch_accepted = true;
          } else {
            virResetLastError();  // not yet possible (the mirror syncs), or never (no postcopy flag): keep waiting
          }
        }
      } else if (!seen_running) {
        break;  // no migration to wait for
      } else if (!gone_since) {
        gone_since = clock_.Now();
      } else if (clock_.Now() - *gone_since >= kEventGrace) {
        break;  // ended without the event: it failed
      }
      if (clock_.Now() >= give_up) break;
    }
    {
      // Deregister under the completion lock so a late callback cannot touch `completion` after return.
      MutexLock lock(completion.mu);
      if (virConnectDomainEventDeregisterAny(conn, callback_id) < 0) virResetLastError();
    }
    return stats;
  }

  StatusOr<std::optional<MigrationStats>> GetCompletedIncomingMigration(const std::string& domain) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    int type = VIR_DOMAIN_JOB_NONE;
    virTypedParameterPtr params = nullptr;
    int nparams = 0;
    // KEEP_COMPLETED: without it libvirt discards the statistics once read.
    if (virDomainGetJobStats(dom.get(), &type, &params, &nparams,
                             VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0) {
      return LastLibvirtError("completed job of " + domain + " on " + uri_);
    }
    int operation = 0;
    std::optional<MigrationStats> stats;
    if (type == VIR_DOMAIN_JOB_COMPLETED &&
        virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &operation) == 1 &&
        operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) {
      stats = StatsFromParams(params, nparams);
    }
    virTypedParamsFree(params, nparams);
    return stats;
  }

  // Three calls, not one: the state first (libvirt refuses agent commands unless the domain runs), the counters
  // (one bulk-stats record), then the ping. Whether the domain has an agent channel is read from the ping's
  // refusal (VIR_ERR_ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured", which libvirt reports only
  // when no org.qemu.guest_agent.0 channel is defined) rather than from a parse of the domain XML.
  StatusOr<GuestActivity> GetGuestActivity(const std::string& domain, std::chrono::seconds agent_timeout) override {
    const std::string where = domain + " on " + uri_;
    if (agent_timeout < std::chrono::seconds(1)) {
      return InvalidArgument("activity of " + where + ": the agent timeout must be at least 1 s (libvirt counts "
                             "whole seconds), not " + std::to_string(agent_timeout.count()) + " s");
    }
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    GuestActivity activity;
    int state = 0, reason = 0;
    if (virDomainGetState(dom.get(), &state, &reason, 0) < 0) return LastLibvirtError("state of " + where);
    activity.state = StateFromLibvirt(state);

    virDomainPtr domains[] = {dom.get(), nullptr};
    virDomainStatsRecordPtr* records = nullptr;
    const int n = virDomainListGetStats(domains, VIR_DOMAIN_STATS_BLOCK | VIR_DOMAIN_STATS_INTERFACE, &records, 0);
    if (n < 0) return LastLibvirtError("block and interface counters of " + where);
    if (n != 1) {
      // Zeros here would read as counters that went backwards; say what happened instead.
      virDomainStatsRecordListFree(records);
      return NotFound("block and interface counters of " + where + ": libvirt returned " + std::to_string(n) +
                      " records for the domain (did it vanish?)");
    }
    const virDomainStatsRecord& record = *records[0];
    activity.block_read_requests = SumStat(record, "block", "rd.reqs");
    activity.block_write_requests = SumStat(record, "block", "wr.reqs");
    activity.block_read_bytes = SumStat(record, "block", "rd.bytes");
    activity.block_write_bytes = SumStat(record, "block", "wr.bytes");
    activity.net_rx_packets = SumStat(record, "net", "rx.pkts");
    activity.net_tx_packets = SumStat(record, "net", "tx.pkts");
    virDomainStatsRecordListFree(records);

    if (state != VIR_DOMAIN_RUNNING) {
      activity.agent = AgentPing::kNotAsked;
      activity.agent_error = "the domain is " + std::string(DomainStateName(activity.state)) + ", not running";
      return activity;
    }
    const int timeout_s = static_cast<int>(std::min<int64_t>(agent_timeout.count(), std::numeric_limits<int>::max()));
    char* reply = virDomainQemuAgentCommand(dom.get(), R"({"execute":"guest-ping"})", timeout_s, 0);
    if (reply != nullptr) {
      free(reply);
      activity.agent = AgentPing::kAnswered;
      return activity;
    }
    virErrorPtr err = virGetLastError();
    const int code = err != nullptr ? err->code : VIR_ERR_OK;
    Status silent = LastLibvirtError("guest-ping to the agent of " + where);
    if (code == VIR_ERR_ARGUMENT_UNSUPPORTED) {
      activity.agent = AgentPing::kNoChannel;
      return activity;
    }
    // The domain or the connection going away is the caller's problem, not the agent's silence. Errors of the
    // agent's own socket (VIR_ERR_SYSTEM_ERROR, which LastLibvirtError reads as kUnavailable) are silence.
    if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_NO_CONNECT || code == VIR_ERR_RPC) return silent;
    activity.agent = AgentPing::kSilent;
    activity.agent_error = silent.message();
    return activity;
  }

  // Every other disk is listed as snapshot='no': left out, libvirt would give it an external overlay with a
  // generated name too. The targets come from the block stats, so no domain XML is parsed here.
  Status CreateDiskOnlySnapshot(const std::string& domain, const std::vector<SnapshotOverlay>& overlays) override {
    const std::string what = "disk-only snapshot of " + domain + " on " + uri_;
    if (overlays.empty()) return InvalidArgument(what + ": no disk to snapshot; list at least one overlay");
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    VS_ASSIGN_OR_RETURN(std::vector<std::string> targets, DiskTargets(dom.get(), domain));
    std::set<std::string> listed;
    for (const SnapshotOverlay& overlay : overlays) {
      if (std::find(targets.begin(), targets.end(), overlay.target) == targets.end()) {
        std::string known;
        for (const auto& t : targets) known += (known.empty() ? "" : ", ") + t;
        return InvalidArgument(what + ": '" + overlay.target + "' is not a disk of the domain (its disks: " +
                               known + ")");
      }
      if (!listed.insert(overlay.target).second) {
        return InvalidArgument(what + ": disk '" + overlay.target + "' is listed twice");
      }
      if (overlay.overlay_path.empty() || overlay.overlay_path.front() != '/') {
        return InvalidArgument(what + ": the overlay path of disk '" + overlay.target + "' must be absolute, not '" +
                               overlay.overlay_path + "'");
      }
    }
    std::string xml = "<domainsnapshot><name>vs-switchover-" + std::to_string(ToUnixMillis(clock_.WallNow())) +
                      "</name><disks>";
    for (const std::string& target : targets) {
      auto overlay = std::find_if(overlays.begin(), overlays.end(), [&](const auto& o) { return o.target == target; });
      if (overlay == overlays.end()) {
        xml += "<disk name='" + XmlEscape(target) + "' snapshot='no'/>";
      } else {
        xml += "<disk name='" + XmlEscape(target) + "' snapshot='external' type='file'><driver type='qcow2'/>"
               "<source file='" + XmlEscape(overlay->overlay_path) + "'/></disk>";
      }
    }
    xml += "</disks></domainsnapshot>";
    const unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
                           VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    virDomainSnapshotPtr snapshot = virDomainSnapshotCreateXML(dom.get(), xml.c_str(), flags);
    if (snapshot == nullptr) {
      Status err = LastLibvirtError(what);
      // libvirt refuses an existing file with a generic "config unsupported"; say which file is in the way.
      for (const SnapshotOverlay& overlay : overlays) {
        if (ImageExists(overlay.overlay_path)) {
          return AlreadyExists(what + ": the overlay " + overlay.overlay_path + " of disk '" + overlay.target +
                               "' exists; overlays are never reused, delete it first");
        }
      }
      return err;
    }
    virDomainSnapshotFree(snapshot);
    return Status::Ok();
  }

  // Polls the block job (libvirt reports cur == end for an active commit only once QEMU says it is ready to
  // pivot) rather than waiting for the ready event: 50 ms of latency is nothing next to the copy.
  Status BlockCommitActive(const std::string& domain, const std::string& target,
                           std::chrono::seconds timeout) override {
    VS_ASSIGN_OR_RETURN(DomainHandle dom, Lookup(domain));
    const std::string what = "active block commit of disk '" + target + "' of " + domain + " on " + uri_;
    const int running = virDomainIsActive(dom.get());
    if (running < 0) return LastLibvirtError(what);
    if (running == 0) return FailedPrecondition(what + ": " + domain + " does not run; start it first");
    // Shallow: into the top's own backing image only. Without it libvirt commits into the bottom of the chain, which
    // for an image over a shared base (Nova's instance disk over _base/<hash>) writes the VM's data into the base
    // that other VMs read (seen in the lab: a rolled-back switchover of a Nova instance left it on the base).
    if (virDomainBlockCommit(dom.get(), target.c_str(), nullptr, nullptr, 0,
                             VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | VIR_DOMAIN_BLOCK_COMMIT_SHALLOW) < 0) {
      return LastLibvirtError(what);
    }
    const MonoTime deadline = clock_.Now() + timeout;
    auto cancel = [&] {
      if (virDomainBlockJobAbort(dom.get(), target.c_str(), 0) < 0) virResetLastError();
    };
    for (;;) {
      virDomainBlockJobInfo info;
      const int rc = virDomainGetBlockJobInfo(dom.get(), target.c_str(), &info, 0);
      if (rc < 0) {
        Status err = LastLibvirtError(what);
        cancel();
        return err;
      }
      if (rc == 0) {
        return Aborted(what + ": the job ended before it was ready to pivot (cancelled by someone else, or an "
                              "I/O error; see libvirtd's log)");
      }
      if (info.cur == info.end) break;
      if (clock_.Now() >= deadline) {
        cancel();
        return DeadlineExceeded(what + ": not ready within " + std::to_string(timeout.count()) + " s (" +
                                std::to_string(info.cur) + " of " + std::to_string(info.end) +
                                " bytes); cancelled, the domain stays on its top image");
      }
      clock_.SleepFor(std::chrono::milliseconds(50));
    }
    if (virDomainBlockJobAbort(dom.get(), target.c_str(), VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
      Status err = LastLibvirtError("pivoting the " + what);
      cancel();
      return err;
    }
    // The pivot may complete after the call returns: done once the disk has no job left.
    for (;;) {
      virDomainBlockJobInfo info;
      const int rc = virDomainGetBlockJobInfo(dom.get(), target.c_str(), &info, 0);
      if (rc < 0) return LastLibvirtError("pivoting the " + what);
      if (rc == 0) return Status::Ok();
      if (clock_.Now() >= deadline) {
        return DeadlineExceeded(what + ": the pivot was requested but had not finished after " +
                                std::to_string(timeout.count()) + " s");
      }
      clock_.SleepFor(std::chrono::milliseconds(50));
    }
  }

 private:
  // The target names of the domain's disks (every <disk>, cdroms included), from its block stats.
  StatusOr<std::vector<std::string>> DiskTargets(virDomainPtr dom, const std::string& name) {
    virDomainPtr domains[] = {dom, nullptr};
    virDomainStatsRecordPtr* records = nullptr;
    const int n = virDomainListGetStats(domains, VIR_DOMAIN_STATS_BLOCK, &records, 0);
    if (n < 0) return LastLibvirtError("disks of " + name + " on " + uri_);
    std::vector<std::string> targets;
    if (n == 1) {
      unsigned count = 0;
      virTypedParamsGetUInt(records[0]->params, records[0]->nparams, "block.count", &count);
      for (unsigned i = 0; i < count; ++i) {
        const char* target = nullptr;
        const std::string field = "block." + std::to_string(i) + ".name";
        if (virTypedParamsGetString(records[0]->params, records[0]->nparams, field.c_str(), &target) == 1) {
          targets.emplace_back(target);
        }
      }
    }
    virDomainStatsRecordListFree(records);
    return targets;
  }

  // Whether an image exists at `path` on this libvirtd's host; a failing look-up counts as "no".
  bool ImageExists(const std::string& path) {
    if (!PoolFor(path).ok()) return false;
    return LookupVolume(path).ok();
  }

  // The (transient, refreshed) directory pool over `path`'s folder, created on first use. NotFound when the
  // folder does not exist on that host, unless `build`: then the folder is made.
  StatusOr<PoolHandle> PoolFor(const std::string& path, bool build = false) {
    const std::string dir = Dirname(path);
    const Connection::Ref conn = Conn();
    virStoragePoolPtr pool = virStoragePoolLookupByTargetPath(conn.get(), dir.c_str());
    if (pool == nullptr) {
      virResetLastError();
      std::string name = "virt-shadow-" + std::to_string(std::hash<std::string>{}(dir));
      std::string xml = "<pool type='dir'><name>" + name + "</name><target><path>" + XmlEscape(dir) +
                        "</path></target></pool>";
      pool = virStoragePoolCreateXML(conn.get(), xml.c_str(), build ? VIR_STORAGE_POOL_CREATE_WITH_BUILD : 0);
      if (pool == nullptr) {
        Status err = LastLibvirtError("storage pool for " + dir + " on " + uri_);
        // A concurrent caller may have created it first.
        pool = virStoragePoolLookupByTargetPath(conn.get(), dir.c_str());
        if (pool == nullptr) return err;
      }
    }
    PoolHandle handle(pool, &virStoragePoolFree);
    if (virStoragePoolRefresh(pool, 0) < 0) return LastLibvirtError("refreshing the pool of " + dir);
    return handle;
  }

  StatusOr<VolumeHandle> LookupVolume(const std::string& path) {
    const Connection::Ref conn = Conn();
    virStorageVolPtr vol = virStorageVolLookupByPath(conn.get(), path.c_str());
    if (vol == nullptr) return LastLibvirtError("image " + path + " on " + uri_);
    return VolumeHandle(vol, &virStorageVolFree);
  }

  StatusOr<DomainHandle> Lookup(const std::string& name) {
    const Connection::Ref conn = Conn();
    virDomainPtr dom = virDomainLookupByName(conn.get(), name.c_str());
    if (dom == nullptr) return LastLibvirtError("domain '" + name + "' on " + uri_);
    return DomainHandle(dom, &virDomainFree);
  }

  // Kept in a local until the error (if any) is read: releasing the reference is a libvirt call, and every
  // libvirt call clears the thread's last error.
  Connection::Ref Conn() { return connection_->Get(); }

  const std::string uri_;
  const std::shared_ptr<Connection> connection_;
  Clock& clock_;
};

class LibvirtRuntimeImpl final : public LibvirtRuntime {
 public:
  LibvirtRuntimeImpl() {
    loop_ = std::thread([this] {
      while (!stop_) {
        if (virEventRunDefaultImpl() < 0) virResetLastError();
      }
    });
    // A periodic no-op timer wakes the loop so that it notices stop_.
    timer_ = virEventAddTimeout(200, [](int, void*) {}, nullptr, nullptr);
  }
  ~LibvirtRuntimeImpl() override {
    stop_ = true;
    loop_.join();
    if (timer_ >= 0) virEventRemoveTimeout(timer_);
  }

  StatusOr<std::unique_ptr<Hypervisor>> Connect(const std::string& uri, Clock& clock) override {
    virConnectPtr conn = OpenConnection(uri);
    if (conn == nullptr) {
      Status err = LastLibvirtError("connecting to " + uri);
      // Every failure to open a connection is "cannot reach that libvirtd" to the caller.
      return Unavailable(err.message());
    }
    return std::unique_ptr<Hypervisor>(new LibvirtHypervisor(uri, conn, clock));
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread loop_;
  int timer_ = -1;
};

}  // namespace

StatusOr<std::unique_ptr<LibvirtRuntime>> LibvirtRuntime::Start() {
  // A write to a connection that libvirtd closed must fail that call (EPIPE), not kill the process.
  if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) return Internal("ignoring SIGPIPE for libvirt's client sockets");
  if (virInitialize() < 0) return LastLibvirtError("initialising libvirt");
  // Errors reach callers as Status values; libvirt's default handler would also print each one to stderr,
  // including the expected refusals while waiting for the postcopy switch.
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  if (virEventRegisterDefaultImpl() < 0) return LastLibvirtError("registering libvirt's event loop");
  return std::unique_ptr<LibvirtRuntime>(new LibvirtRuntimeImpl());
}

}  // namespace vs::virt
