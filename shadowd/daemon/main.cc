// shadowd: the virt-shadow daemon of one host, and the project's one composition root. Everything with state
// is created here, in dependency order, and handed down by reference; nothing is global.
//
// Start-up (the order matters for convergence after a kill -9, see controller.h):
//   1. config, store (RocksDB), libvirt runtime, cluster (every host's libvirtd), controller;
//   2. controller.Recover()            re-issue what every persisted record asks for;
//   3. cluster.Refresh()               capacity and shadow domains of every host;
//   4. replay the hook spool           events the hook left while shadowd was down, oldest first;
//   5. ReconcileLocalDomains           the local domains as they are now (newer than any spooled event);
//   6. SweepOrphans, RunPending        release shadows nobody accounts for; perform the queued work;
//   7. replication: settle rounds a crash left pending (as a shadow host) and backup jobs of ours (as a primary);
//      serve the peer service on this host's address, start the replication worker and the metrics endpoint;
//   8. switchovers: resume unfinished ones (and a drain in progress), start the notice sources (shadowd/notice);
//   9. watch libvirt's domain events and serve gRPC (hook + CLI); then the loop ticks every 500 ms:
//      timers, spool, periodic refresh (capacity grew -> retry unprotected VMs; orphan sweep), queued work,
//      and hands the protected, running VMs to the replication worker.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "common/logger.h"
#include "shadowd/controller/canonical_policy.h"
#include "shadowd/controller/controller.h"
#include "shadowd/daemon/config.h"
#include "shadowd/daemon/drain_state.h"
#include "shadowd/daemon/event_loop.h"
#include "shadowd/daemon/former_images.h"
#include "shadowd/daemon/libvirt_cluster.h"
#include "shadowd/daemon/peer_drain_watch.h"
#include "shadowd/daemon/peer_service.h"
#include "shadowd/daemon/replication_metrics.h"
#include "shadowd/daemon/replication_worker.h"
#include "shadowd/daemon/service.h"
#include "shadowd/daemon/switchover_coordinator.h"
#include "shadowd/daemon/switchover_steps.h"
#include "shadowd/daemon/switchover_target.h"
#include "shadowd/metrics/http_endpoint.h"
#include "shadowd/notice/beast_http_client.h"
#include "shadowd/notice/notice_sources.h"
#include "shadowd/replication/qemu_replica_storage.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/replication/replicator.h"
#include "shadowd/spool/spool.h"
#include "shadowd/store/rocksdb_store.h"
#include "shadowd/switchover/switchover_runner.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::daemon {
namespace {

StatusOr<std::vector<controller::DomainObservation>> ObserveLocalDomains(virt::Hypervisor& local) {
  VS_ASSIGN_OR_RETURN(std::vector<std::string> names, local.ListDomainNames());
  std::vector<controller::DomainObservation> domains;
  for (const auto& name : names) {
    auto xml = local.GetDomainXml(name);
    auto state = local.GetDomainState(name);
    if (!xml.ok() || !state.ok()) continue;  // undefined meanwhile; its event follows
    domains.push_back({.xml = *xml, .running = *state == virt::DomainState::kRunning ||
                                                *state == virt::DomainState::kPaused,
                       .uuid_hint = "", .name_hint = name});
  }
  return domains;
}

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
void OnDomainEvent(const virt::DomainEvent& event, LibvirtCluster& cluster,
                   controller::ProtectionController& controller, SwitchoverTarget& switchover_target,
                   const Logger& log) {
  using Kind = virt::DomainEvent::Kind;
  switch (event.kind) {
    case Kind::kStopped:
      // A VM that failed after its switchover is judged again once it runs anew (a read first: most stops have
      // no mark, and need no store write).
      if (auto failed = switchover_target.GuestFailureOf(event.uuid); failed.ok() && failed->has_value()) {
        log.Failure("forgetting a guest failure", switchover_target.ForgetGuestFailure(event.uuid));
      }
      return log.Failure("domain stopped", controller.OnDomainStopped(event.uuid));
    case Kind::kUndefined: return log.Failure("domain undefined", controller.OnDomainUndefined(event.uuid));
    case Kind::kStarted:
    case Kind::kDefined:
    case Kind::kResumed:
    case Kind::kMetadataChanged: {
      auto local = cluster.Local();
      if (!local.ok()) return log.Failure("local libvirtd", local.status());
      auto xml = (*local)->GetDomainXml(event.name);
      auto state = (*local)->GetDomainState(event.name);
      if (!xml.ok() || !state.ok()) return;  // gone meanwhile
      if (event.kind == Kind::kMetadataChanged) {
        return log.Failure("metadata change", controller.OnMetadataChanged(*xml));
      }
      return log.Failure("domain observed", controller.OnDomainObserved(
                                        {.xml = *xml, .running = *state == virt::DomainState::kRunning,
                                         .uuid_hint = event.uuid, .name_hint = event.name}));
    }
    default: return;
  }
}

// The VMs whose disks this host replicates: protected (shadow defined) and running here.
std::vector<ReplicationSchedule> SchedulesFrom(const std::vector<controller::VmStatusView>& views) {
  std::vector<ReplicationSchedule> schedules;
  for (const auto& view : views) {
    if (view.state != virtshadow::v1::PROTECTION_STATE_PROTECTED || !view.running || view.shadow_hosts.empty()) {
      continue;
    }
    auto policy = controller::ParseCanonicalPolicy(view.policy);
    ReplicationSchedule schedule{{view.uuid, view.name, view.shadow_hosts.front()}, {}};
    schedule.interval = policy.ok() ? Duration(policy->interval) : Duration(policy::Policy().interval);
    schedules.push_back(std::move(schedule));
  }
  return schedules;
}

// Replication state of VMs that are gone: the primary's records (and "vs-" checkpoints) of VMs without a
// protection record, and the replica records of shadows released on this host.
void ForgetUnreplicated(controller::ProtectionController& controller, replication::Replicator& replicator,
                        replication::ReplicaKeeper& keeper, const Logger& log) {
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
  if (auto forgotten = keeper.ForgetReleased(); !forgotten.ok()) {
    log.Failure("forgetting released replicas", forgotten.status());
  }
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
  for (const auto& dir : {std::filesystem::path(config->store_path).parent_path(),
                          std::filesystem::path(config->spool_path),
                          std::filesystem::path(config->socket_path).parent_path()}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
  }
  auto store = store::OpenRocksDbStore(config->store_path, {});
  if (!store.ok()) return log.Failure("opening the store", store.status()), 1;
  auto runtime = virt::LibvirtRuntime::Start();
  if (!runtime.ok()) return log.Failure("libvirt", runtime.status()), 1;
  LibvirtCluster cluster(*config, **runtime, *clock);
  controller::ControllerOptions options{.this_host = config->this_host, .grace_period = config->grace,
                                        .placement = {}, .report = [&log](const std::string& vm, const std::string& m) {
                                          log.Write("VM " + vm, m);
                                        }};
  controller::ProtectionController controller(options, **store, cluster, cluster, cluster, *clock);
  spool::Spool spool(config->spool_path, *clock);
  EventLoop loop;

  log.Failure("recovering records", controller.Recover());
  cluster.Refresh();
  ReplaySpool(spool, controller, log);
  auto local = cluster.Local();
  if (!local.ok()) return log.Failure("the local libvirtd", local.status()), 1;
  auto domains = ObserveLocalDomains(**local);
  if (domains.ok()) log.Failure("reconciling local domains", controller.ReconcileLocalDomains(*domains));
  if (auto shadows = cluster.Shadows(); shadows.ok()) log.Failure("orphan sweep", controller.SweepOrphans(*shadows));
  log.Failure("start-up work", controller.RunPending());

  // Replication runs off the loop thread, on its own libvirt connection (connections are thread-safe).
  auto replication_libvirt = (*runtime)->Connect(config->local_libvirt_uri, *clock);
  if (!replication_libvirt.ok()) {
    return log.Failure("the local libvirtd (replication)", replication_libvirt.status()), 1;
  }
  std::unique_ptr<replication::ReplicaStorage> storage = replication::NewQemuReplicaStorage(*clock);
  replication::ReplicaKeeper keeper(
      **store, *storage,
      [&](const std::string& vm_uuid, const std::vector<std::string>& paths) {
        return CheckShadowOwnsReplicas(**replication_libvirt, config->this_host, vm_uuid, paths);
      },
      *clock);
  log.Failure("settling replica rounds", keeper.Recover());
  GrpcReplicaPeer peer_client(*config, *clock);
  DrainState drain(**store);
  log.Failure("loading the drain state", drain.Load());
  std::vector<std::string> peers;
  for (const HostConfig& host : config->hosts) {
    if (host.name != config->this_host) peers.push_back(host.name);
  }
  PeerDrainWatch peer_drains(
      peers,
      [&](const std::string& host) -> StatusOr<bool> {
        VS_ASSIGN_OR_RETURN(virtshadow::v1::HostStateReply state, peer_client.HostState(host));
        return state.draining();
      },
      config->refresh);
  peer_drains.Start();
  cluster.SetDrainProbe([&](const std::string& host) {
    // A peer whose shadowd is down is judged by its libvirtd alone.
    return host == config->this_host ? drain.Current().has_value() : peer_drains.Draining(host);
  });
  const HostConfig& this_host = *config->FindHost(config->this_host);
  replication::Replicator replicator(**replication_libvirt, peer_client, *storage, **store, *clock,
                                     {.this_host = config->this_host, .nbd_address = this_host.address,
                                      .nbd_port = config->nbd_port});
  if (auto names = (*local)->ListDomainNames(); names.ok()) {
    log.Failure("ending stale backups", replicator.Recover(*names));
  }
  ReplicationWorker replication_worker(replicator, *clock, log.For(""));
  SwitchoverTarget switchover_target(**replication_libvirt, keeper, **store, drain, replication_worker,
                                     config->this_host, *clock, log.For("switchover target"));
  PeerService peer_service(keeper, switchover_target);
  grpc::ServerBuilder peer_builder;
  peer_builder.AddListeningPort(config->PeerTarget(this_host), grpc::InsecureServerCredentials());
  peer_builder.SetMaxReceiveMessageSize(256 << 20);
  peer_builder.SetMaxSendMessageSize(256 << 20);
  peer_builder.RegisterService(&peer_service);
  std::unique_ptr<grpc::Server> peer_server = peer_builder.BuildAndStart();
  if (!peer_server) {
    return log.Failure("peer service", Unavailable("cannot listen on " + config->PeerTarget(this_host))), 1;
  }
  replication_worker.Start();

  // Switchovers run on their own libvirt connection too (a migration blocks its caller for its whole length).
  auto switchover_libvirt = (*runtime)->Connect(config->local_libvirt_uri, *clock);
  if (!switchover_libvirt.ok()) return log.Failure("the local libvirtd (switchover)", switchover_libvirt.status()), 1;
  WarmUpGate warm_up;
  auto on_switched = [&](const std::string& vm_uuid, const std::string& host) {
    loop.Post([&controller, &log, vm_uuid, host] {
      log.Failure("ending the record of a switched VM", controller.OnSwitchedOver(vm_uuid, host));
    });
  };
  LibvirtSwitchoverSteps switchover_steps(*config, **runtime, **switchover_libvirt, peer_client, replication_worker,
                                          replicator, warm_up, *clock, on_switched);
  switchover::SwitchoverRunner switchover_runner(**store, switchover_steps, *clock, log.For(""));
  notice::BeastHttpClient http_client;
  std::unique_ptr<notice::NoticeSources> notice_sources;
  SwitchoverCoordinator switchovers(
      *config,
      {.loop = loop, .controller = controller, .runner = switchover_runner, .local = **switchover_libvirt,
       .peer = peer_client, .drain = drain, .target = switchover_target, .worker = replication_worker,
       .replicator = replicator, .warm_up = warm_up, .clock = *clock},
      log.For(""),
      [&](const notice::Notice& notice) {
        // Azure waits for the approval (or its NotBefore time): once everything moved, let it proceed.
        if (notice.source == notice::Notice::Source::kAzure && notice_sources) {
          log.Failure("approving the Azure event", notice_sources->ApproveAzure(notice.id));
        }
      });
  notice_sources = std::make_unique<notice::NoticeSources>(
      config->notice, http_client, *clock, [&](const notice::Notice& notice) { switchovers.OnNotice(notice); },
      log.For("notice"));
  log.Failure("starting the notice sources", notice_sources->Start());
  std::unique_ptr<metrics::MetricsHttpEndpoint> metrics_endpoint;
  if (!config->metrics_listen.empty()) {
    auto endpoint = metrics::MetricsHttpEndpoint::Start(config->metrics_listen, [&]() -> StatusOr<std::string> {
      VS_ASSIGN_OR_RETURN(auto replicated, replicator.ListRecords());
      VS_ASSIGN_OR_RETURN(auto held, keeper.List());
      VS_ASSIGN_OR_RETURN(auto guest_failed, switchover_target.GuestFailures());
      auto families = ReplicationMetrics(replicated, held, clock->WallNow());
      families.push_back(GuestFailedMetric(guest_failed));
      return metrics::RenderPrometheusText(families);
    });
    if (!endpoint.ok()) return log.Failure("metrics endpoint", endpoint.status()), 1;
    metrics_endpoint = std::move(*endpoint);
  }

  auto watch = (*local)->WatchDomains([&](const virt::DomainEvent& event) {
    loop.Post([&, event] { OnDomainEvent(event, cluster, controller, switchover_target, log); });
  });
  if (!watch.ok()) return log.Failure("watching domain events", watch.status()), 1;

  ShadowService service(*config, loop, controller, cluster, replicator, replication_worker, switchovers,
                        switchover_runner, drain, switchover_target, *clock, log.For(""));
  std::filesystem::remove(config->socket_path);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + config->socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return log.Failure("serving", Unavailable("cannot listen on " + config->socket_path)), 1;
  chmod(config->socket_path.c_str(), 0600);  // root only: the hook runs as root, so does the CLI
  log.Write("", "host " + config->this_host + " serving on " + config->socket_path);

  // Started last of all, once nothing can fail any more: its first job (resuming switchovers and a persisted
  // drain) asks the loop, so an early return after it had started would wait in its destructor for a loop that
  // never ran. Notices and calls that came before are queued behind that job.
  switchovers.Start();

  // The server shuts down before the loop stops: in-flight CLI calls wait on the loop (EventLoop::Call), so the
  // loop must keep running until they are answered.
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log.Write("", "signal " + std::to_string(sig) + ", stopping");
    server->Shutdown();
    peer_server->Shutdown();
    // Before the loop: a running switchover still asks the controller (EventLoop::Call) until it ends.
    notice_sources->Stop();
    switchovers.Stop();
    loop.Stop();
  });

  MonoTime next_refresh = clock->Now() + config->refresh;
  loop.Run(std::chrono::milliseconds(500), [&] {
    log.Failure("timers", controller.OnTimer());
    if (clock->Now() >= next_refresh) {
      next_refresh = clock->Now() + config->refresh;
      if (cluster.Refresh()) log.Failure("capacity change", controller.OnCapacityChanged());
      for (const HostConfig& host : config->hosts) {
        if (host.name != config->this_host && cluster.IsDraining(host.name)) {
          log.Failure("moving shadows off a draining host", controller.OnHostLeaving(host.name, "draining"));
        }
      }
      if (auto shadows = cluster.Shadows(); shadows.ok()) {
        log.Failure("orphan sweep", controller.SweepOrphans(*shadows));
      }
      ReplaySpool(spool, controller, log);
      ForgetUnreplicated(controller, replicator, keeper, log);
      SettleFormerImages(switchover_target, controller, cluster, config->grace, *clock, log.For(""));
    }
    log.Failure("queued work", controller.RunPending());
    if (auto views = controller.List(); views.ok()) replication_worker.SetTargets(SchedulesFrom(*views));
  });

  signal_thread.join();
  replication_worker.Stop();
  return 0;
}

}  // namespace
}  // namespace vs::daemon

int main(int argc, char** argv) {
  std::string config_path = "/etc/virt-shadow/shadowd.conf";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: shadowd [--config PATH]\n\n"
                  "The virt-shadow daemon of one host. Runs in the foreground; stop it with SIGTERM.\n"
                  "  --config PATH   configuration (default /etc/virt-shadow/shadowd.conf); format in\n"
                  "                  shadowd/daemon/config.h\n");
      return 0;
    } else {
      std::fprintf(stderr, "shadowd: unknown argument '%s'; see shadowd --help\n", arg.c_str());
      return 2;
    }
  }
  return vs::daemon::Run(config_path);
}
