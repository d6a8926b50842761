// shadowd: the virt-shadow daemon of one host, and the project's one composition root. Everything with state
// is created here, in dependency order, and handed down by reference; nothing is global. Three stages:
//
//   Build   config, store (RocksDB), libvirt runtime, cluster (every host's libvirtd), controller, and start-up
//           recovery, in this order (it matters for convergence after a kill -9, see controller.h):
//             controller.Recover()      re-issue what every persisted record asks for;
//             cluster.Refresh()         capacity and shadow domains of every host;
//             replay the hook spool     events the hook left while shadowd was down, oldest first;
//             ReconcileLocalDomains     the local domains as they are now (newer than any spooled event);
//             SweepOrphans, RunPending  release shadows nobody accounts for; perform the queued work;
//             replication               settle rounds a crash left pending (as a shadow host), backup jobs
//                                       of ours and Nova instances' checkpoints left known (as a primary);
//           then the replication, switchover and notice parts, the membership and the crash promotions (their
//           libvirt connection). Nothing runs yet: an error here just returns.
//   Start   the threads and servers, each behind a stop guard (Daemon::Stop stops what started, in the order
//           of docs/threading.md): peer drains, membership (with membership = corosync), peer service, the
//           promotion thread (it resumes unfinished promotions first), replication worker, notice sources, metrics,
//           domain events, the hook socket, the control service, and last the
//           switchover coordinator (its first job resumes unfinished switchovers and a persisted drain, and asks
//           the loop).
//   Serve   the loop on the main thread until SIGTERM/SIGINT: every 500 ms timers, queued work and the
//           replication schedules; every refresh interval the cluster, draining peers, orphans, the spool,
//           forgotten replication state and the images left on former hosts.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/logger.h"
#include "common/private_paths.h"
#include "shadowd/cluster/corosync_membership.h"
#include "shadowd/cluster/domain_scan.h"
#include "shadowd/cluster/heartbeat_history.h"
#include "shadowd/failover/fencing.h"
#include "shadowd/cluster/libvirt_cluster.h"
#include "shadowd/cluster/membership_metrics.h"
#include "shadowd/cluster/peer_drain_watch.h"
#include "shadowd/controller/canonical_policy.h"
#include "shadowd/controller/controller.h"
#include "shadowd/daemon/config.h"
#include "shadowd/daemon/event_loop.h"
#include "shadowd/failover/fence_records.h"
#include "shadowd/failover/self_fence.h"
#include "shadowd/failover/libvirt_promotion_host.h"
#include "shadowd/failover/promotion_worker.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/hook_intake/hook_intake.h"
#include "shadowd/hook_intake/hook_listener.h"
#include "shadowd/metrics/metrics_server.h"
#include "shadowd/metrics/process_metrics.h"
#include "shadowd/nbd/qemu_img.h"
#include "shadowd/notice/beast_http_client.h"
#include "shadowd/notice/notice_sources.h"
#include "shadowd/replication/qemu_replica_storage.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/replication/replication_metrics.h"
#include "shadowd/replication/replication_worker.h"
#include "shadowd/replication/replicator.h"
#include "shadowd/rpc/peer_client.h"
#include "shadowd/rpc/servers.h"
#include "shadowd/spool/spool.h"
#include "shadowd/store/rocksdb_store.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/switchover/drain_state.h"
#include "shadowd/switchover/former_images.h"
#include "shadowd/switchover/libvirt_switchover_steps.h"
#include "shadowd/switchover/protected_vms.h"
#include "shadowd/switchover/switchover_coordinator.h"
#include "shadowd/switchover/switchover_metrics.h"
#include "shadowd/nova/nova_live_mover.h"
#include "shadowd/nova/nova_policy_watcher.h"
#include "shadowd/nova/nova_promotion_host.h"
#include "shadowd/nova/nova_reserving_peer_ops.h"
#include "shadowd/nova/openstack_http_api.h"
#include "shadowd/switchover/switchover_runner.h"
#include "shadowd/switchover/switchover_target.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::daemon {
namespace {

// Delivers every spooled hook event, oldest first; a delivered or unreadable event is removed.
void ReplaySpool(spool::Spool& spool, controller::ProtectionController& controller, const Logger& log) {
  auto listing = spool.List();
  if (!listing.ok()) return log.Failure("listing the hook spool", listing.status());
  for (const auto& skipped : listing->skipped) log.Write("spool", "skipped " + skipped);
  for (const auto& entry : listing->entries) {
    auto event = spool.Read(entry);
    if (event.ok()) {
      log.Failure(("replaying spooled " + event->operation() + " of " + event->domain_name()).c_str(),
          controller.HandleHookEvent(*event));
    } else {
      log.Failure(("unreadable spooled event " + entry.file_name).c_str(), event.status());
    }
    log.Failure("removing a replayed spool entry", spool.Remove(entry));
  }
}

// Work posted from libvirt's event thread: the domain as libvirt reports it now.
void OnDomainEvent(const virt::DomainEvent& event, cluster::LibvirtCluster& cluster,
                   controller::ProtectionController& controller, switchover::ArrivalRecords& arrivals,
                   const Logger& log) {
  using Kind = virt::DomainEvent::Kind;
  switch (event.kind) {
    case Kind::kStopped:
      // A VM that failed after its switchover is judged again once it runs anew (a read first: most stops have
      // no mark, and need no store write).
      if (auto failed = arrivals.GuestFailureOf(event.uuid); failed.ok() && failed->has_value()) {
        log.Failure("forgetting a guest failure", arrivals.ForgetGuestFailure(event.uuid));
      }
      return log.Failure("domain stopped", controller.OnDomainStopped(event.uuid));
    case Kind::kUndefined: return log.Failure("domain undefined", controller.OnDomainUndefined(event.uuid));
    case Kind::kStarted:
    case Kind::kDefined:
    case Kind::kResumed:
    case Kind::kMetadataChanged: {
      auto local = cluster.Local();
      if (!local.ok()) return log.Failure("local libvirtd", local.status());
      // Read now, not as the event said: a resume handled after the domain was paused again observes it paused,
      // which runs as the scan counts it (a paused VM keeps its shadow and its rounds).
      auto observed = cluster::ObserveDomain(**local, event.name);
      if (!observed.ok()) return;  // gone meanwhile
      if (event.kind == Kind::kMetadataChanged) {
        return log.Failure("metadata change", controller.OnMetadataChanged(observed->xml));
      }
      observed->uuid_hint = event.uuid;
      return log.Failure("domain observed", controller.OnDomainObserved(*observed));
    }
    default: return;
  }
}

// The VMs whose disks this host replicates: protected (shadow defined) and running here.
std::vector<replication::ReplicationSchedule> SchedulesFrom(const std::vector<controller::VmStatusView>& views) {
  std::vector<replication::ReplicationSchedule> schedules;
  for (const auto& view : views) {
    if (view.state != virtshadow::v1::PROTECTION_STATE_PROTECTED || !view.running || view.shadow_hosts.empty()) {
      continue;
    }
    auto policy = controller::ParseCanonicalPolicy(view.policy);
    const policy::Policy chosen = policy.ok() ? *policy : policy::Policy();
    replication::ReplicationSchedule schedule{
        {view.uuid, view.name, view.shadow_hosts.front()}, Duration(chosen.interval), chosen.priority};
    schedules.push_back(std::move(schedule));
  }
  return schedules;
}

// Replication state of VMs that are gone: the primary's records (and "vs-" checkpoints) of VMs without a
// protection record, and the replica records of shadows released on this host.
void ForgetUnreplicated(controller::ProtectionController& controller, replication::Replicator& replicator,
                        replication::ReplicaKeeper& keeper, virt::Hypervisor& local, const std::string& this_host,
                        const Logger& log) {
  auto views = controller.List();
  auto records = replicator.ListRecords();
  if (views.ok() && records.ok()) {
    for (const auto& record : *records) {
      const bool known = std::any_of(views->begin(), views->end(),
                                     [&](const auto& view) { return view.uuid == record.vm_uuid(); });
      if (!known) log.Failure(("forgetting the replication of " + record.vm_name()).c_str(),
                      replicator.Forget(record.vm_uuid(), record.vm_name()));
    }
  }
  auto in_use = [&](const std::vector<std::string>& paths) {
    return cluster::AnyUsedByNonShadow(local, this_host, paths);
  };
  if (auto forgotten = keeper.ForgetReleased(in_use); !forgotten.ok()) {
    log.Failure("forgetting released replicas", forgotten.status());
  }
}

// `result`, with `what` in front of its error.
template <typename T>
StatusOr<T> Named(StatusOr<T> result, std::string_view what) {
  if (!result.ok()) return result.status().Annotate(what);
  return result;
}

// Every part of shadowd. Build() creates them in dependency order (members are destroyed in reverse, after
// Stop()); Start() launches the threads and servers; Serve() runs the loop on the calling thread until Stop().
// Stop() ends whatever started, in the order of docs/threading.md, and runs on every exit path (the
// destructor), so an error halfway through Start leaves no thread behind.
class Daemon {
 public:
  Daemon(Config config, Clock& clock, const Logger& log)
      : config_(std::move(config)), hosts_(config_.Cluster()), clock_(clock), log_(log) {}
  ~Daemon() { Stop(); }

  Status Build();
  Status Start();
  void Serve();
  // The first call stops everything; later ones return at once. Never from the loop thread (the coordinator's
  // running switchover may wait on the loop until it ends).
  void Stop();

 private:
  Status BuildController();
  Status BuildReplication();
  Status BuildSwitchover();
  Status BuildMembership();
  Status BuildPromotion();
  std::vector<metrics::MetricsSource> MetricsSources();
  // The loop's tick, at least every 500 ms; `next_refresh` is when the cluster is read again.
  void Tick(MonoTime& next_refresh);
  // Gives up the shadows on hosts gone (past the wait for their self-fence), and has the switchovers they made to
  // this host and left unfinished completed here.
  void GiveUpShadowsOnGoneHosts();
  // Brings the records in line with the local domains as they are now (changed while shadowd was down); until
  // that worked once, every refresh tries again.
  void ReconcileLocalDomains();
  // Where the VM was promoted after this host fenced it (fences_ says so), if it was.
  std::optional<std::string> PromotedElsewhere(const std::string& vm_uuid) const;
  // Ends the protection records of this host's VMs that its self-fence found promoted elsewhere.
  void EndProtectionOfPromotedElsewhere();

  const Config config_;
  const cluster::ClusterHosts hosts_;  // this host and its peers, from config_
  Clock& clock_;
  const Logger& log_;

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<virt::LibvirtRuntime> runtime_;
  std::unique_ptr<cluster::LibvirtCluster> cluster_;
  std::unique_ptr<controller::ProtectionController> controller_;
  std::unique_ptr<spool::Spool> spool_;
  bool local_domains_reconciled_ = false;  // on the loop's thread only (and before it runs)
  EventLoop loop_;
  // Replication and switchovers block on libvirt for long stretches: each has a connection of its own.
  std::unique_ptr<virt::Hypervisor> replication_libvirt_;
  std::unique_ptr<virt::Hypervisor> switchover_libvirt_;
  std::unique_ptr<replication::ReplicaStorage> storage_;
  std::unique_ptr<replication::ReplicaKeeper> keeper_;
  std::optional<rpc::PeerTls> peer_tls_;  // [tls] peer = mutual: this host's certificates, for both peer ends
  std::unique_ptr<rpc::GrpcPeerClient> peer_client_;
  std::unique_ptr<switchover::DrainState> drain_;
  std::unique_ptr<cluster::PeerDrainWatch> peer_drains_;
  std::unique_ptr<replication::Replicator> replicator_;
  std::unique_ptr<replication::ReplicationWorker> replication_worker_;
  std::unique_ptr<switchover::ArrivalRecords> arrivals_;
  std::unique_ptr<nbd::QemuImg> switchover_images_;  // the target's qemu-img, 60 s per call
  std::unique_ptr<switchover::SwitchoverTarget> switchover_target_;
  switchover::WarmUpGate warm_up_;
  std::unique_ptr<switchover::LibvirtSwitchoverSteps> switchover_steps_;
  switchover::SwitchoverTally switchover_tally_;  // counted by the runner, read by the metrics
  std::unique_ptr<switchover::SwitchoverRunner> switchover_runner_;
  std::unique_ptr<switchover::ControllerOnLoop> controller_on_loop_;
  std::unique_ptr<switchover::SwitchoverCoordinator> switchovers_;
  notice::BeastHttpClient http_client_;
  // OpenStack (only with a [nova] section, docs/nova.md): the client; which policy Nova's records name for each
  // Nova instance here (its own thread); the PeerOps that reserves each Nova shadow's room in Placement; the live
  // mover through which a Nova instance's switchover migrates.
  std::unique_ptr<nova::OpenStackHttpApi> openstack_;
  std::unique_ptr<nova::NovaPolicyWatcher> nova_policies_;
  std::unique_ptr<nova::NovaReservingPeerOps> nova_peers_;
  std::unique_ptr<nova::NovaLiveMover> nova_mover_;
  std::unique_ptr<notice::NoticeSources> notice_sources_;
  // Membership (only with [shadowd] membership = corosync): Corosync's view on a thread of its own, every host's
  // heartbeat history in the store, and what feeds the one into the other.
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<cluster::HeartbeatHistory> heartbeats_;
  std::unique_ptr<cluster::MembershipRecorder> membership_recorder_;
  // Self-fencing (with membership = corosync): the records (read by the hook's verdict, status, hosts and the
  // metrics whatever the membership), and the thread that fences on a quorum loss and reconciles after the
  // heal, with a libvirt connection of its own so that no other thread's call holds up a pause.
  std::unique_ptr<failover::FenceRecords> fences_;
  std::unique_ptr<virt::Hypervisor> fence_libvirt_;
  std::unique_ptr<failover::SelfFence> self_fence_;
  // Crash promotion of the shadows held here (docs/failover.md): its own libvirt connection and thread.
  std::unique_ptr<virt::Hypervisor> promotion_libvirt_;
  std::unique_ptr<failover::LibvirtPromotionHost> promotion_host_;
  std::unique_ptr<nova::NovaPromotionHost> nova_promotion_host_;  // with [nova]: wraps promotion_host_
  std::unique_ptr<failover::Promotions> promotions_;
  std::unique_ptr<failover::PromotionWorker> promotion_worker_;
  // What shadowd does with a hook event, for the hook socket and the control service alike.
  std::unique_ptr<hook_intake::HookIntake> hook_intake_;

  // What Start() started (the parts above start their own threads in Start and stop them in their destructors
  // too; Stop() orders them).
  std::unique_ptr<rpc::RunningServer> peer_server_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<virt::Subscription> domain_events_;
  std::unique_ptr<hook_intake::HookListener> hook_listener_;
  std::unique_ptr<rpc::RunningServer> control_server_;
  std::once_flag stopped_;
};

Status Daemon::Build() {
  // What shadowd keeps on disk (domain XMLs, which may carry secrets, in the store and the spool) is root's
  // alone: each directory is created 0700 or tightened to it, and refused if another user owns it
  // (common/private_paths.h). The control socket's directory is made so where the socket is created.
  for (const std::string& dir : {config_.store_path, config_.spool_path, config_.fence_dir}) {
    VS_RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  }
  VS_ASSIGN_OR_RETURN(store_, Named(store::OpenRocksDbStore(config_.store_path, {}), "opening the store"));
  VS_RETURN_IF_ERROR(BuildController());
  VS_RETURN_IF_ERROR(BuildReplication());
  VS_RETURN_IF_ERROR(BuildSwitchover());
  VS_RETURN_IF_ERROR(BuildMembership());
  VS_RETURN_IF_ERROR(BuildPromotion());
  hook_intake_ = std::make_unique<hook_intake::HookIntake>(
      loop_, *controller_, fences_.get(), log_.For(""),
      [this](const std::string& vm_uuid) { return switchover_target_->OnIncomingMigration(vm_uuid); });
  return Status::Ok();
}

Status Daemon::BuildPromotion() {
  VS_ASSIGN_OR_RETURN(promotion_libvirt_, Named(runtime_->Connect(config_.local_libvirt_uri, clock_),
                                                "the local libvirtd (promotion)"));
  promotion_host_ = std::make_unique<failover::LibvirtPromotionHost>(*promotion_libvirt_, *keeper_, config_.this_host);
  failover::PromotionHost* promotion_host = promotion_host_.get();
  if (openstack_) {
    // A Nova instance is promoted through Nova's evacuate, which finds the replica in its instance directory.
    nova_promotion_host_ = std::make_unique<nova::NovaPromotionHost>(
        *promotion_host_, *openstack_, *store_, clock_, nova::NovaPromotionSettings{.this_host = config_.this_host},
        log_.For("promotion"));
    promotion_host = nova_promotion_host_.get();
  }
  promotions_ = std::make_unique<failover::Promotions>(*store_, clock_, *promotion_host,
                                                       failover::PromotionSettings{.this_host = config_.this_host},
                                                       log_.For("promotion"));
  promotion_worker_ = std::make_unique<failover::PromotionWorker>(
      *promotions_,
      [this] {
        // Without a membership nothing is known of the other hosts: no promotion is decided (unfinished ones
        // still complete).
        return heartbeats_ ? heartbeats_->View() : cluster::MembershipView{};
      },
      [this](const std::string& host, const std::string& vm_uuid) -> StatusOr<bool> {
        const cluster::HostConfig* config = hosts_.Find(host);
        if (config == nullptr) return NotFound("host " + host + " is not configured");
        return failover::DestroyOnPrimary(*runtime_, clock_, config->uri, vm_uuid, std::chrono::seconds(1));
      },
      log_.For("promotion"));
  return Status::Ok();
}

Status Daemon::BuildMembership() {
  fences_ = std::make_unique<failover::FenceRecords>(
      *store_, config_.fence_dir, [this](const Status& status) { log_.Failure("fence markers", status); });
  if (config_.membership != Config::Membership::kCorosync) return Status::Ok();
  heartbeats_ = std::make_unique<cluster::HeartbeatHistory>(*store_, clock_, hosts_);
  VS_RETURN_IF_ERROR(heartbeats_->Load().Annotate("loading the heartbeat history"));
  membership_ = std::make_unique<cluster::CorosyncMembership>(
      cluster::CorosyncOptions{}, [this](const std::string& line) { log_.Write("membership", line); });
  VS_ASSIGN_OR_RETURN(fence_libvirt_, Named(runtime_->Connect(config_.local_libvirt_uri, clock_),
                                            "the local libvirtd (self-fence)"));
  failover::SelfFenceOptions fence_options{
      .hosts = hosts_,
      .action = config_.fence_action == Config::FenceAction::kDestroy
                    ? virtshadow::v1::FenceRecord::FENCE_ACTION_DESTROY
                    : virtshadow::v1::FenceRecord::FENCE_ACTION_PAUSE};
  self_fence_ = std::make_unique<failover::SelfFence>(
      fence_options,
      failover::SelfFence::Parts{*store_, *fences_, *fence_libvirt_, *peer_client_, clock_},
      [this](const std::string& line) { log_.Write("failover", line); });
  // The self-fence sees each change first: the history's store write must not delay a fence.
  membership_recorder_ = std::make_unique<cluster::MembershipRecorder>(
      *membership_, *heartbeats_, [this](const Status& status) { log_.Failure("membership change", status); },
      [this](const cluster::MembershipSnapshot& snapshot) { self_fence_->OnMembership(snapshot); });
  return Status::Ok();
}

Status Daemon::BuildController() {
  VS_ASSIGN_OR_RETURN(runtime_, Named(virt::LibvirtRuntime::Start(), "libvirt"));
  cluster_ = std::make_unique<cluster::LibvirtCluster>(hosts_, config_.local_libvirt_uri, *runtime_,
                                                       clock_);
  controller::PeerOps* peers = cluster_.get();
  if (config_.nova) {
    openstack_ = std::make_unique<nova::OpenStackHttpApi>(*config_.nova, http_client_, clock_);
    nova_policies_ = std::make_unique<nova::NovaPolicyWatcher>(
        *openstack_, nova::NovaPolicyWatcherOptions{.nova = *config_.nova, .named_policies = config_.policies},
        clock_,
        [this](const std::string& vm_uuid) {
          loop_.Post([this, vm_uuid] {
            log_.Failure("Nova's policy of " + vm_uuid, controller_->OnExternalPolicyChanged(vm_uuid));
          });
        },
        log_.For("nova"));
    nova_peers_ = std::make_unique<nova::NovaReservingPeerOps>(*cluster_, *openstack_, log_.For("nova"));
    nova_mover_ = std::make_unique<nova::NovaLiveMover>(*openstack_, clock_, log_.For("nova"));
    peers = nova_peers_.get();
  }
  controller::ControllerOptions options{
      .this_host = config_.this_host, .grace_period = config_.grace, .placement = {},
      .report = [this](const std::string& vm, const std::string& m) { log_.Write("VM " + vm, m); },
      .promoted_elsewhere = [this](const std::string& vm_uuid) { return PromotedElsewhere(vm_uuid); },
      .external_policy = [this](const std::string& vm_uuid,
                                const policy::DomainFacts& facts) -> std::optional<controller::ExternalPolicy> {
        if (!nova_policies_) return std::nullopt;
        return nova_policies_->Lookup(vm_uuid, facts);
      }};
  controller_ = std::make_unique<controller::ProtectionController>(options, *store_, *peers, *cluster_, *cluster_,
                                                                   clock_);
  spool_ = std::make_unique<spool::Spool>(config_.spool_path, clock_);

  log_.Failure("recovering records", controller_->Recover());
  cluster_->Refresh();
  ReplaySpool(*spool_, *controller_, log_);
  VS_RETURN_IF_ERROR(Named(cluster_->Local(), "the local libvirtd").status());
  ReconcileLocalDomains();
  if (auto shadows = cluster_->Shadows(); shadows.ok()) {
    log_.Failure("orphan sweep", controller_->SweepOrphans(*shadows));
  }
  log_.Failure("start-up work", controller_->RunPending());
  return Status::Ok();
}

Status Daemon::BuildReplication() {
  VS_ASSIGN_OR_RETURN(replication_libvirt_, Named(runtime_->Connect(config_.local_libvirt_uri, clock_),
                                                  "the local libvirtd (replication)"));
  // [tls] nbd = mutual: exports are read with this host's QEMU client certificate (scripts/pki.sh installs it).
  VS_ASSIGN_OR_RETURN(storage_, replication::NewQemuReplicaStorage(
                                    clock_, config_.nbd_tls ? config_.tls_pki + "/qemu" : std::string()));
  keeper_ = std::make_unique<replication::ReplicaKeeper>(
      *store_, *storage_,
      [this](const std::string& vm_uuid, const std::vector<std::string>& paths) {
        return cluster::CheckShadowOwnsReplicas(*replication_libvirt_, config_.this_host, vm_uuid, paths);
      },
      clock_);
  log_.Failure("settling replica rounds", keeper_->Recover());
  if (config_.peer_tls) {
    VS_ASSIGN_OR_RETURN(peer_tls_, rpc::LoadPeerTls(config_.tls_pki));
  }
  peer_client_ = std::make_unique<rpc::GrpcPeerClient>(hosts_, clock_, peer_tls_);
  drain_ = std::make_unique<switchover::DrainState>(*store_);
  log_.Failure("loading the drain state", drain_->Load());
  peer_drains_ = std::make_unique<cluster::PeerDrainWatch>(
      hosts_.Peers(),
      [this](const std::string& host) -> StatusOr<bool> {
        VS_ASSIGN_OR_RETURN(virtshadow::v1::HostStateReply state, peer_client_->HostState(host));
        return state.draining();
      },
      config_.refresh);
  cluster_->SetDrainProbe([this](const std::string& host) {
    // A peer whose shadowd is down is judged by its libvirtd alone.
    return host == config_.this_host ? drain_->Current().has_value() : peer_drains_->Draining(host);
  });
  cluster_->SetAbsentProbe([this](const std::string& host) {
    // Only a known membership says a host is gone (membership = none, or Corosync not answered yet: libvirtd
    // alone decides, as before). heartbeats_ is built after this, but the probe only runs on the loop.
    // A host whose shadowd alone is away (restarting) stays a candidate, judged by its libvirtd as before.
    return heartbeats_ && host != config_.this_host && cluster::LeftWithItsCorosync(heartbeats_->View(), host);
  });
  const cluster::HostConfig& this_host = *config_.FindHost(config_.this_host);
  replicator_ = std::make_unique<replication::Replicator>(
      *replication_libvirt_, *peer_client_, *storage_, *store_, clock_,
      replication::ReplicatorOptions{.this_host = config_.this_host, .nbd_address = this_host.address,
                                     .nbd_tls = config_.nbd_tls});
  if (auto names = replication_libvirt_->ListDomainNames(); names.ok()) {
    log_.Failure("settling backups and checkpoints a crash left", replicator_->Recover(*names));
  }
  replication_worker_ = std::make_unique<replication::ReplicationWorker>(
      *replicator_, clock_,
      replication::WorkerOptions{.concurrency = config_.round_concurrency,
                                 .first_export_port = static_cast<uint16_t>(config_.nbd_port)},
      log_.For(""));
  return Status::Ok();
}

Status Daemon::BuildSwitchover() {
  VS_ASSIGN_OR_RETURN(switchover_libvirt_, Named(runtime_->Connect(config_.local_libvirt_uri, clock_),
                                                 "the local libvirtd (switchover)"));
  arrivals_ = std::make_unique<switchover::ArrivalRecords>(*store_, clock_);
  switchover_images_ = std::make_unique<nbd::QemuImg>(clock_, std::chrono::seconds(60));
  switchover_target_ = std::make_unique<switchover::SwitchoverTarget>(
      *replication_libvirt_, *keeper_, *arrivals_, *drain_, *replication_worker_, *switchover_images_,
      config_.this_host, clock_, log_.For("switchover target"));
  switchover_steps_ = std::make_unique<switchover::LibvirtSwitchoverSteps>(
      hosts_, config_.switchover, *runtime_, *switchover_libvirt_, *peer_client_, *replication_worker_,
      warm_up_, clock_,
      [this](const std::string& vm_uuid, const std::string& host) {
        loop_.Post([this, vm_uuid, host] {
          log_.Failure("ending the record of a switched VM", controller_->OnSwitchedOver(vm_uuid, host));
        });
      },
      nova_mover_.get());
  switchover_runner_ = std::make_unique<switchover::SwitchoverRunner>(*store_, *switchover_steps_, clock_,
                                                                      log_.For(""), &switchover_tally_);
  controller_on_loop_ = std::make_unique<switchover::ControllerOnLoop>(loop_, *controller_);
  switchovers_ = std::make_unique<switchover::SwitchoverCoordinator>(
      config_.this_host, config_.switchover,
      switchover::SwitchoverCoordinator::Parts{
          .vms = *controller_on_loop_, .runner = *switchover_runner_, .local = *switchover_libvirt_,
          .peer = *peer_client_, .drain = *drain_, .arrivals = *arrivals_, .rounds = *replication_worker_,
          .warm_up = warm_up_, .clock = clock_,
          .on_promoted_home =
              [this](const std::string& vm_uuid, const std::string& home) {
                return promotions_->EndAfterFailback(vm_uuid, home);  // built after this, called only later
              },
          .complete_left_behind =
              [this](const std::string& gone_host) { return switchover_target_->CompleteLeftBehind(gone_host); }},
      log_.For(""), [this](const notice::Notice& notice) {
        // Azure waits for the approval (or its NotBefore time): once everything moved, let it proceed.
        if (notice.source == notice::Notice::Source::kAzure) {
          log_.Failure("approving the Azure event", notice_sources_->ApproveAzure(notice.id));
        }
      });
  notice_sources_ = std::make_unique<notice::NoticeSources>(
      config_.notice, http_client_, clock_, [this](const notice::Notice& notice) { switchovers_->OnNotice(notice); },
      log_.For("notice"));
  return Status::Ok();
}

// What /metrics shows, one source per part; each is read on the metrics server's thread (every part read here
// is thread-safe), and one that fails is left out of that scrape alone.
std::vector<metrics::MetricsSource> Daemon::MetricsSources() {
  using Families = StatusOr<std::vector<metrics::MetricFamily>>;
  std::vector<metrics::MetricsSource> sources = {
      {"replication",
       [this]() -> Families {
         VS_ASSIGN_OR_RETURN(auto replicated, replicator_->ListRecords());
         VS_ASSIGN_OR_RETURN(auto held, keeper_->List());
         std::vector<metrics::MetricFamily> families =
             replication::ReplicationMetrics(replicated, held, clock_.WallNow());
         for (auto& family : replication::QueueMetrics(replication_worker_->Queue(), replication_worker_->Targets(),
                                                       replication_worker_->concurrency())) {
           families.push_back(std::move(family));
         }
         return families;
       }},
      {"switchover",
       [this]() -> Families {
         VS_ASSIGN_OR_RETURN(auto records, switchover_runner_->List());
         VS_ASSIGN_OR_RETURN(auto guest_failed, arrivals_->GuestFailures());
         auto families = switchover_tally_.Families();
         for (auto& family : switchover::SwitchoverMetrics(records)) families.push_back(std::move(family));
         families.push_back(replication::GuestFailedMetric(guest_failed));
         return families;
       }},
      {"drain",
       [this]() -> Families {
         // The replication worker's targets are the protected VMs running here: those a drain moves.
         return switchover::DrainMetrics(drain_->Current(), replication_worker_->Targets().size());
       }},
      {"fencing",
       [this]() -> Families {
         VS_ASSIGN_OR_RETURN(auto fenced, fences_->List());
         return failover::FenceMetrics(fenced);
       }},
      {"process", [] { return metrics::ProcessMetrics(); }},
  };
  if (heartbeats_) {
    sources.push_back({"membership", [this]() -> Families { return cluster::MembershipMetrics(heartbeats_->View()); }});
  }
  return sources;
}

Status Daemon::Start() {
  peer_drains_->Start();
  if (nova_policies_) nova_policies_->Start();
  if (self_fence_) self_fence_->Start([this] { return membership_->Current(); });
  if (membership_recorder_) membership_recorder_->Start();
  VS_ASSIGN_OR_RETURN(peer_server_, rpc::StartPeerServer(hosts_.PeerTarget(*hosts_.Find(hosts_.this_host)), *keeper_,
                                                         *switchover_target_, *promotions_, self_fence_.get(),
                                                         rpc::PeerGuard(hosts_, rpc::LookUpOnThisHost(
                                                                                    *replication_libvirt_,
                                                                                    config_.this_host, *keeper_,
                                                                                    *arrivals_),
                                                                   config_.nbd_tls),
                                                         peer_tls_, hosts_, log_.For("peer service")));
  promotion_worker_->Start();
  replication_worker_->Start();
  log_.Failure("starting the notice sources", notice_sources_->Start());
  if (!config_.metrics_listen.empty()) {
    VS_ASSIGN_OR_RETURN(metrics_server_, Named(metrics::MetricsServer::Start(config_.metrics_listen, MetricsSources(),
                                                                             log_.For("metrics")),
                                               "metrics endpoint"));
  }
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * local, Named(cluster_->Local(), "the local libvirtd"));
  VS_ASSIGN_OR_RETURN(domain_events_, Named(local->WatchDomains([this](const virt::DomainEvent& event) {
                        loop_.Post([this, event] { OnDomainEvent(event, *cluster_, *controller_, *arrivals_, log_); });
                      }), "watching domain events"));
  // Before the control socket, whose appearance tells that shadowd serves (the lab waits for it): by then the
  // hook's socket answers too.
  VS_ASSIGN_OR_RETURN(hook_listener_, hook_intake::HookListener::Start(
                                          config_.hook_socket_path,
                                          [this](const virtshadow::v1::HookEvent& event) {
                                            return hook_intake_->Take(event);
                                          },
                                          clock_, log_.For(""), {}));
  VS_ASSIGN_OR_RETURN(control_server_,
                      rpc::StartControlServer(config_.socket_path, hosts_, config_.drain_deadline,
                                              rpc::ShadowService::Parts{
                                                  .loop = loop_, .controller = *controller_, .cluster = *cluster_,
                                                  .replicator = *replicator_, .replication = *replication_worker_,
                                                  .switchovers = *switchovers_, .runner = *switchover_runner_,
                                                  .drain = *drain_, .target = *switchover_target_,
                                                  .arrivals = *arrivals_, .clock = clock_,
                                                  .hook_intake = *hook_intake_,
                                                  .heartbeats = heartbeats_.get(),
                                                  .fences = fences_.get(),
                                                  .promotions = promotions_.get(),
                                                  .promotion_worker = promotion_worker_.get()},
                                              log_.For("")));
  log_.Write("", "host " + config_.this_host + " serving on " + config_.socket_path + " and, for the hook, " +
                      config_.hook_socket_path);
  // Last of all, once nothing can fail any more: its first job (resuming switchovers and a persisted drain)
  // asks the loop. Notices and calls that came before are queued behind that job.
  switchovers_->Start();
  return Status::Ok();
}

void Daemon::Serve() {
  MonoTime next_refresh = clock_.Now() + config_.refresh;
  loop_.Run(std::chrono::milliseconds(500), [&] { Tick(next_refresh); });
}

void Daemon::Tick(MonoTime& next_refresh) {
  log_.Failure("timers", controller_->OnTimer());
  // Members' last seen advances between changes; a change whose write failed is recorded now.
  if (membership_recorder_) log_.Failure("heartbeat history", membership_recorder_->Tick());
  if (clock_.Now() >= next_refresh) {
    next_refresh = clock_.Now() + config_.refresh;
    if (cluster_->Refresh()) log_.Failure("capacity change", controller_->OnCapacityChanged());
    if (!local_domains_reconciled_) ReconcileLocalDomains();
    if (heartbeats_) GiveUpShadowsOnGoneHosts();
    EndProtectionOfPromotedElsewhere();
    for (const std::string& peer : hosts_.Peers()) {
      if (cluster_->IsDraining(peer)) {
        log_.Failure("moving shadows off a draining host", controller_->OnHostLeaving(peer, "draining"));
      }
    }
    if (auto shadows = cluster_->Shadows(); shadows.ok()) {
      log_.Failure("orphan sweep", controller_->SweepOrphans(*shadows));
    }
    ReplaySpool(*spool_, *controller_, log_);
    ForgetUnreplicated(*controller_, *replicator_, *keeper_, *replication_libvirt_, config_.this_host, log_);
    switchover::SettleFormerImages(*arrivals_, *controller_, *cluster_, config_.grace, clock_, log_.For(""));
  }
  log_.Failure("queued work", controller_->RunPending());
  if (auto views = controller_->List(); views.ok()) replication_worker_->SetTargets(SchedulesFrom(*views));
}

void Daemon::ReconcileLocalDomains() {
  StatusOr<virt::Hypervisor*> local = cluster_->Local();
  StatusOr<std::vector<controller::DomainObservation>> domains =
      local.ok() ? cluster::ObserveDomains(**local) : StatusOr<std::vector<controller::DomainObservation>>(local.status());
  Status reconciled = domains.ok() ? controller_->ReconcileLocalDomains(*domains) : domains.status();
  log_.Failure("reconciling local domains (tried again at the next refresh)", reconciled);
  local_domains_reconciled_ = domains.ok();
}

// A shadow host gone as long as a failed primary must be before its shadow is promoted (failover::FenceTiming:
// one definition of "gone" for every host failure) loses its shadows; each VM gets a new one elsewhere.
void Daemon::GiveUpShadowsOnGoneHosts() {
  const cluster::MembershipView view = heartbeats_->View();
  const Duration wait = failover::FenceTiming{}.WithDetection(view.failure_detection).SurvivorWait();
  for (const std::string& host : cluster::HostsGoneFor(view, clock_.WallNow(), wait)) {
    if (host == config_.this_host) continue;
    log_.Failure("giving up the shadows on a host that left the membership",
                 controller_->OnHostLost(host, "it left the quorate membership"));
    // A VM it switched over here before it went may still run on its tops: nobody else will complete that.
    if (auto unfinished = arrivals_->UnfinishedFrom(host); unfinished.ok() && !unfinished->empty()) {
      switchovers_->CompleteArrivalsFrom(host);
    }
  }
}

std::optional<std::string> Daemon::PromotedElsewhere(const std::string& vm_uuid) const {
  if (!fences_) return std::nullopt;  // built after the controller; asked on the loop only
  auto fence = fences_->Get(vm_uuid);
  if (!fence.ok() || !fence->has_value()) return std::nullopt;
  if ((*fence)->state() != virtshadow::v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE) return std::nullopt;
  return (*fence)->promoted_host();
}

void Daemon::EndProtectionOfPromotedElsewhere() {
  if (!fences_) return;
  auto fences = fences_->List();
  if (!fences.ok()) return log_.Failure("reading the fence records", fences.status());
  for (const auto& fence : *fences) {
    if (fence.state() != virtshadow::v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE) continue;
    log_.Failure("ending the protection of a VM promoted elsewhere",
                 controller_->OnSwitchedOver(fence.vm_uuid(), fence.promoted_host(), /*promoted=*/true));
  }
}

void Daemon::Stop() {
  std::call_once(stopped_, [this] {
    // The servers first: in-flight CLI calls wait on the loop (Executor::Call), so it keeps running for them. The
    // hook socket's exchanges only Post to the loop; one cut off is spooled by its hook.
    if (hook_listener_) hook_listener_->Shutdown();
    if (control_server_) control_server_->Shutdown();
    if (peer_server_) peer_server_->Shutdown();
    domain_events_.reset();
    // Before the loop: a running switchover still asks the controller through the loop until it ends.
    if (notice_sources_) notice_sources_->Stop();
    if (switchovers_) switchovers_->Stop();
    if (nova_policies_) nova_policies_->Stop();  // it posts to the loop
    loop_.Stop();
    metrics_server_.reset();
    if (replication_worker_) replication_worker_->Stop();
    if (peer_drains_) peer_drains_->Stop();
    // It reads the heartbeat history, so before the membership; a promotion step in flight ends first.
    if (promotion_worker_) promotion_worker_->Stop();
    // Last: its listener writes only the heartbeat history (the store); leaving the group tells the peers.
    if (membership_recorder_) membership_recorder_->Stop();
    // After the membership: no listener call reaches it any more. Joins a fence in progress.
    if (self_fence_) self_fence_->Stop();
  });
}

// `shadowd --check-config`: the configuration read and checked as shadowd would at its start, nothing started.
int CheckConfig(const std::string& config_path) {
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "shadowd: configuration is not valid: %s\n", config.status().ToString().c_str());
    return 2;
  }
  std::printf("%s: valid\n%s", config_path.c_str(), DescribeConfig(*config).c_str());
  return 0;
}

int Run(const std::string& config_path) {
  // Signals are taken by one thread with sigwait, so no handler runs in the middle of other code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Clock> clock = NewRealClock();
  const Logger log(*clock, stderr);
  auto config = LoadConfig(config_path);
  if (!config.ok()) return log.Failure("configuration", config.status()), 2;
  Daemon daemon(std::move(*config), *clock, log);
  if (Status built = daemon.Build(); !built.ok()) return log.Failure("starting", built), 1;
  if (Status started = daemon.Start(); !started.ok()) return log.Failure("starting", started), 1;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log.Write("", "signal " + std::to_string(sig) + ", stopping");
    daemon.Stop();
  });
  daemon.Serve();
  signal_thread.join();
  return 0;
}

}  // namespace
}  // namespace vs::daemon

int main(int argc, char** argv) {
  // Before anything creates a file: every file and directory shadowd makes from here on is owner-only, so that
  // no local user reads the records. RocksDB creates its files 0644 less the mask (tests/unit/store checks they
  // come out 0600); the fence markers, the socket and what qemu-img and qemu-nbd create (they inherit the mask;
  // libvirt gives QEMU its images by relabelling them) follow too. The directories are also made 0700
  // (Daemon::Build), which covers files an older shadowd left readable.
  ::umask(vs::kPrivateUmask);
  std::string config_path = "/etc/virt-shadow/shadowd.conf";
  bool check_config = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--check-config") {
      check_config = true;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: shadowd [--config PATH] [--check-config]\n\n"
                  "The virt-shadow daemon of one host. Runs in the foreground; stop it with SIGTERM.\n"
                  "  --config PATH    configuration (default /etc/virt-shadow/shadowd.conf); see shadowd(8)\n"
                  "  --check-config   check the configuration, print what it sets up and exit (0 valid, 2 not)\n");
      return 0;
    } else {
      std::fprintf(stderr, "shadowd: unknown argument '%s'; see shadowd --help\n", arg.c_str());
      return 2;
    }
  }
  if (check_config) return vs::daemon::CheckConfig(config_path);
  return vs::daemon::Run(config_path);
}
