#include "shadowd/rpc/control_service.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <set>

#include "proto/grpc_status.h"
#include "shadowd/lifecycle/lifecycle.h"
#include "shadowd/lifecycle/shadow_identity.h"

namespace vs::rpc {
namespace {

// How long `hosts` waits for the loop's cluster snapshot before answering without it.
constexpr Duration kLoopWait = std::chrono::seconds(2);

void Fill(const controller::VmStatusView& view, const std::string& this_host, virtshadow::v1::VmStatus* out) {
  out->set_name(view.name);
  out->set_uuid(view.uuid);
  out->set_state(view.damaged ? "Damaged" : lifecycle::ToString(view.state));
  out->set_running(view.running);
  out->set_primary_host(this_host);
  for (size_t i = 0; i < view.shadow_hosts.size(); ++i) {
    auto* shadow = out->add_shadows();
    shadow->set_host(view.shadow_hosts[i]);
    shadow->set_name(lifecycle::ShadowName(view.name, static_cast<uint32_t>(i)));
    if (auto uuid = lifecycle::ShadowUuid(view.uuid, static_cast<uint32_t>(i)); uuid.ok()) shadow->set_uuid(*uuid);
  }
  out->set_shadow_vcpus(view.shadow_size.vcpus);
  out->set_shadow_memory_kib(view.shadow_size.memory_kib);
  out->set_policy(view.policy);
  out->set_last_error(view.last_error);
  out->set_unprotected_reason(view.unprotected_reason);
  out->set_policy_source(view.policy_source);
  if (view.nova) {
    virtshadow::v1::NovaInstance* nova = out->mutable_nova();
    nova->set_instance_id(view.nova->instance_id);
    nova->set_name(view.nova->name);
    nova->set_project_id(view.nova->project_id);
    nova->set_project_name(view.nova->project_name);
    nova->set_flavor(view.nova->flavor);
  }
}

// Ages by shadowd's clock, so that the CLI needs none of its own; -1 when there is no such time.
int64_t AgeMs(const std::optional<WallTime>& at, WallTime now) {
  if (!at) return -1;
  return std::max<int64_t>(0, ToUnixMillis(now) - ToUnixMillis(*at));
}

void FillMembership(const cluster::MembershipView& view, const std::string& host, WallTime now,
                    virtshadow::v1::HostInfo* out) {
  for (const cluster::HostHeartbeatView& seen : view.hosts) {
    if (seen.host != host) continue;
    out->set_membership(std::string(cluster::HostMembershipName(seen.state)));
    out->set_membership_since_unix_ms(seen.since ? ToUnixMillis(*seen.since) : 0);
    out->set_membership_since_ago_ms(AgeMs(seen.since, now));
    out->set_last_seen_unix_ms(seen.last_seen ? ToUnixMillis(*seen.last_seen) : 0);
    out->set_last_seen_ago_ms(AgeMs(seen.last_seen, now));
    out->set_corosync_member(seen.corosync_member);
    out->set_shadowd_stopped(seen.shadowd_stopped);
  }
}

std::string_view VerdictName(scheduler::Verdict verdict) {
  switch (verdict) {
    case scheduler::Verdict::kChosen: return "chosen";
    case scheduler::Verdict::kEligibleNotChosen: return "eligible";
    case scheduler::Verdict::kRejected: return "rejected";
  }
  return "unknown";
}

}  // namespace

grpc::Status ShadowService::DeliverHookEvent(grpc::ServerContext*, const virtshadow::v1::HookEvent* event,
                                             virtshadow::v1::HookVerdict* verdict) {
  *verdict = parts_.hook_intake.Take(*event);
  return grpc::Status::OK;
}

grpc::Status ShadowService::ListVms(grpc::ServerContext*, const virtshadow::v1::ListVmsRequest*,
                                    virtshadow::v1::ListVmsReply* reply) {
  auto vms = parts_.loop.Call([this] { return parts_.controller.List(); });
  if (!vms.ok()) return ToGrpcStatus(vms.status());
  for (const auto& view : *vms) {
    auto* out = reply->add_vms();
    Fill(view, hosts_.this_host, out);
    FillThisHostsFacts(view.uuid, out);
  }
  return grpc::Status::OK;
}

grpc::Status ShadowService::GetVm(grpc::ServerContext*, const virtshadow::v1::GetVmRequest* request,
                                  virtshadow::v1::VmStatus* reply) {
  auto view = parts_.loop.Call([&] { return parts_.controller.StatusOf(request->vm()); });
  if (!view.ok()) {
    // A VM promoted here shows its promotion before the controller has its record (or when it failed).
    if (view.status().code() == Code::kNotFound && parts_.promotions != nullptr) {
      if (auto promotions = parts_.promotions->List(); promotions.ok()) {
        for (const auto& promotion : *promotions) {
          if (promotion.vm_name() != request->vm() && promotion.vm_uuid() != request->vm()) continue;
          reply->set_name(promotion.vm_name());
          reply->set_uuid(promotion.vm_uuid());
          reply->set_state("Promoting");
          *reply->mutable_promotion() = promotion;
          return grpc::Status::OK;
        }
      }
    }
    return ToGrpcStatus(view.status());
  }
  Fill(*view, hosts_.this_host, reply);
  FillThisHostsFacts(view->uuid, reply);
  return grpc::Status::OK;
}

void ShadowService::FillThisHostsFacts(const std::string& vm_uuid, virtshadow::v1::VmStatus* out) const {
  if (parts_.fences) {
    if (auto fence = parts_.fences->Get(vm_uuid); fence.ok() && fence->has_value()) *out->mutable_fence() = **fence;
  }
  if (parts_.promotions != nullptr) {
    if (auto promotion = parts_.promotions->Get(vm_uuid); promotion.ok() && *promotion) {
      *out->mutable_promotion() = **promotion;
    }
  }
  if (auto origin = parts_.arrivals.OriginOf(vm_uuid); origin.ok() && *origin) *out->mutable_origin() = **origin;
  if (auto failed = parts_.arrivals.GuestFailureOf(vm_uuid); failed.ok() && *failed) {
    out->set_guest_failed("arrived from " + (*failed)->origin_host() + ": " + (*failed)->seen());
  }
  auto record = parts_.replicator.Record(vm_uuid);
  if (!record.ok()) return;
  Duration interval{0};
  for (const auto& schedule : parts_.replication.Targets()) {
    if (schedule.target.vm_uuid == vm_uuid) interval = schedule.interval;
  }
  const bool replicated = interval.count() > 0 || record->rounds_applied() > 0 || record->rounds_failed() > 0;
  if (!replicated) return;
  auto* info = out->mutable_replication();
  *info->mutable_last_round() = record->applied();
  const int64_t taken = record->applied().taken_unix_ms();
  info->set_lag_ms(taken == 0 ? -1 : ToUnixMillis(parts_.clock.WallNow()) - taken);
  info->set_rounds_applied(record->rounds_applied());
  info->set_rounds_failed(record->rounds_failed());
  info->set_consecutive_failures(record->consecutive_failures());
  info->set_last_error(record->last_error());
  info->set_resync_needed(record->resync_needed());
  info->set_interval_ms(std::chrono::duration_cast<std::chrono::milliseconds>(interval).count());
  *info->mutable_recent_rounds() = record->recent_rounds();
  for (const auto& entry : parts_.replication.Queue()) {
    if (entry.vm_uuid != vm_uuid) continue;
    info->set_round_running(entry.running);
    info->set_next_round_in_ms(ToMillis(entry.due_in));
    info->set_queue_position(entry.position);
  }
}

StatusOr<std::string> ShadowService::ResolveUuid(const std::string& vm) {
  auto view = parts_.loop.Call([&] { return parts_.controller.StatusOf(vm); });
  if (!view.ok()) return view.status();
  return view->uuid;
}

grpc::Status ShadowService::Sync(grpc::ServerContext*, const virtshadow::v1::SyncRequest* request,
                                 virtshadow::v1::SyncReply* reply) {
  auto uuid = ResolveUuid(request->vm());
  if (!uuid.ok()) return ToGrpcStatus(uuid.status());
  auto round = parts_.replication.RequestRound(*uuid).get();
  if (!round.ok()) return ToGrpcStatus(round.status());
  *reply->mutable_round() = *round;
  return grpc::Status::OK;
}

grpc::Status ShadowService::Verify(grpc::ServerContext*, const virtshadow::v1::VerifyRequest* request,
                                   virtshadow::v1::VerifyReply* reply) {
  auto uuid = ResolveUuid(request->vm());
  if (!uuid.ok()) return ToGrpcStatus(uuid.status());
  auto report = parts_.replication.RequestVerify(*uuid).get();
  if (!report.ok()) return ToGrpcStatus(report.status());
  reply->set_checkpoint(report->checkpoint);
  reply->set_ok(report->ok());
  for (const auto& disk : report->disks) {
    auto* out = reply->add_disks();
    out->set_target(disk.target);
    out->set_replica_path(disk.replica_path);
    out->set_blocks_compared(disk.blocks_compared);
    out->set_blocks_changed_since(disk.blocks_changed_since);
    out->set_blocks_mismatched(disk.blocks_mismatched);
    out->set_mismatches(disk.mismatches);
  }
  return grpc::Status::OK;
}

grpc::Status ShadowService::Switchover(grpc::ServerContext*, const virtshadow::v1::SwitchoverRequest* request,
                                       virtshadow::v1::SwitchoverReply* reply) {
  const uint32_t seconds = request->deadline_seconds() > 0
                               ? request->deadline_seconds()
                               : static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(drain_deadline_).count());
  std::optional<Duration> precopy_hold;
  if (request->has_precopy_hold_ms()) precopy_hold = std::chrono::milliseconds(request->precopy_hold_ms());
  auto record =
      parts_.switchovers.SwitchoverVm(request->vm(), request->to_host(), std::chrono::seconds(seconds), "cli", precopy_hold)
          .get();
  if (!record.ok()) return ToGrpcStatus(record.status());
  *reply->mutable_record() = *record;
  return grpc::Status::OK;
}

grpc::Status ShadowService::Drain(grpc::ServerContext*, const virtshadow::v1::DrainRequest* request,
                                  virtshadow::v1::DrainReply* reply) {
  const uint32_t seconds = request->deadline_seconds() > 0
                               ? request->deadline_seconds()
                               : static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(drain_deadline_).count());
  notice::Notice notice;
  notice.source = notice::Notice::Source::kDrain;
  notice.kind = notice::Notice::Kind::kPreemption;
  notice.deadline = parts_.clock.WallNow() + std::chrono::seconds(seconds);
  notice.id = "drain-" + std::to_string(ToUnixMillis(parts_.clock.WallNow()));
  notice.detail = request->reason().empty() ? "virt-shadow drain" : request->reason();
  auto drained = parts_.switchovers.Drain(notice).get();
  if (!drained.ok()) return ToGrpcStatus(drained.status());
  *reply = *drained;
  return grpc::Status::OK;
}

grpc::Status ShadowService::Undrain(grpc::ServerContext*, const virtshadow::v1::UndrainRequest*,
                                    virtshadow::v1::UndrainReply* reply) {
  auto was = parts_.drain.Clear();
  if (!was.ok()) return ToGrpcStatus(was.status());
  reply->set_was_draining(*was);
  // The host stays: migrations warmed up ahead of a notice that will not come are cancelled.
  auto cancelled = parts_.switchovers.CancelWarmUps().get();
  if (!cancelled.ok()) return ToGrpcStatus(cancelled.status());
  reply->set_warm_ups_cancelled(*cancelled);
  return grpc::Status::OK;
}

grpc::Status ShadowService::Failback(grpc::ServerContext*, const virtshadow::v1::FailbackRequest* request,
                                     virtshadow::v1::FailbackReply* reply) {
  const uint32_t seconds = request->timeout_seconds() > 0 ? request->timeout_seconds() : 600;
  auto done = parts_.switchovers.Failback(request->vm(), std::chrono::seconds(seconds)).get();
  if (!done.ok()) return ToGrpcStatus(done.status());
  *reply = *done;
  return grpc::Status::OK;
}

grpc::Status ShadowService::Promote(grpc::ServerContext*, const virtshadow::v1::PromoteRequest* request,
                                    virtshadow::v1::PromoteReply* reply) {
  if (parts_.promotions == nullptr) return ToGrpcStatus(FailedPrecondition("this shadowd serves no promotions"));
  const cluster::MembershipView view = parts_.heartbeats ? parts_.heartbeats->View() : cluster::MembershipView{};
  auto record = parts_.promotions->OperatorPromote(request->vm(), request->force(), request->reason(), view);
  if (!record.ok()) return ToGrpcStatus(record.status());
  log_("operator promotes " + record->vm_name() + (request->force() ? " (forced)" : "") + ": " + record->reason());
  if (parts_.promotion_worker != nullptr) parts_.promotion_worker->Wake();
  *reply->mutable_record() = std::move(*record);
  return grpc::Status::OK;
}

grpc::Status ShadowService::ListSwitchovers(grpc::ServerContext*, const virtshadow::v1::ListSwitchoversRequest*,
                                            virtshadow::v1::ListSwitchoversReply* reply) {
  auto records = parts_.runner.List();
  if (!records.ok()) return ToGrpcStatus(records.status());
  for (const auto& record : *records) *reply->add_records() = record;
  *reply->mutable_host() = parts_.target.HostState();
  return grpc::Status::OK;
}

grpc::Status ShadowService::Explain(grpc::ServerContext*, const virtshadow::v1::ExplainRequest* request,
                                    virtshadow::v1::ExplainReply* reply) {
  auto explanation = parts_.loop.Call([&] { return parts_.controller.Explain(request->vm()); });
  if (!explanation.ok()) return ToGrpcStatus(explanation.status());
  reply->set_vm(request->vm());
  reply->set_summary(explanation->placement.summary);
  for (const auto& host : explanation->placement.hosts) reply->add_chosen_hosts(host);
  for (const auto& verdict : explanation->hosts) {
    auto* out = reply->add_hosts();
    out->set_host(verdict.host);
    if (const cluster::HostConfig* cfg = hosts_.Find(verdict.host)) out->set_zone(cfg->zone);
    out->set_verdict(std::string(VerdictName(verdict.verdict)));
    out->set_rank(verdict.rank);
    out->set_reason(verdict.reason);
  }
  return grpc::Status::OK;
}

grpc::Status ShadowService::ListHosts(grpc::ServerContext*, const virtshadow::v1::ListHostsRequest*,
                                      virtshadow::v1::ListHostsReply* reply) {
  // LibvirtCluster is the loop thread's: everything read from it is read there.
  struct Snapshot {
    StatusOr<std::vector<scheduler::Host>> hosts;
    StatusOr<std::vector<controller::PeerShadow>> shadows;
    std::set<std::string> draining;
  };
  // The loop can be held up by a peer that stopped answering (its libvirtd, mid-refresh) exactly when the
  // membership matters most; so the wait is bounded, and past it the hosts are listed from the configuration
  // with their membership and no capacity. The posted work owns what it needs (it may finish after we return).
  auto promise = std::make_shared<std::promise<Snapshot>>();
  std::future<Snapshot> pending = promise->get_future();
  parts_.loop.Post([this, promise] {
    Snapshot taken{parts_.cluster.Hosts(), parts_.cluster.Shadows(), {}};
    for (const cluster::HostConfig& host : hosts_.hosts) {
      if (parts_.cluster.IsDraining(host.name)) taken.draining.insert(host.name);
    }
    promise->set_value(std::move(taken));
  });
  const bool answered = pending.wait_for(kLoopWait) == std::future_status::ready;
  Snapshot snap{Unavailable("not read"), Unavailable("not read"), {}};
  if (answered) {
    snap = pending.get();
    if (!snap.hosts.ok()) return ToGrpcStatus(snap.hosts.status());
  } else {
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(kLoopWait).count();
    reply->set_capacity_unavailable("shadowd's loop did not answer within " + std::to_string(waited) +
                                    " s (a refresh waits on a host that stopped answering)");
    std::vector<scheduler::Host> configured;
    for (const cluster::HostConfig& cfg : hosts_.hosts) {
      scheduler::Host host;
      host.name = cfg.name;
      host.zone = cfg.zone;
      host.cost_per_hour = cfg.cost_per_hour;
      configured.push_back(host);
    }
    snap.hosts = std::move(configured);
  }
  reply->set_this_host(hosts_.this_host);
  std::optional<cluster::MembershipView> membership;
  if (parts_.heartbeats) {
    membership = parts_.heartbeats->View();
    reply->set_membership_enabled(true);
    reply->set_membership_known(membership->known);
    reply->set_quorate(membership->quorate);
    reply->set_ring_id(membership->ring_id);
  }
  if (parts_.fences) {
    if (auto fences = parts_.fences->List(); fences.ok()) {
      for (auto& fence : failover::Blocking(*fences)) *reply->add_fenced() = std::move(fence);
    } else {
      reply->set_fence_records_unavailable(true);
      log_("hosts: reading the fence records: " + fences.status().ToString());
    }
  }
  const WallTime now = parts_.clock.WallNow();
  for (const auto& host : *snap.hosts) {
    auto* out = reply->add_hosts();
    out->set_name(host.name);
    out->set_zone(host.zone);
    if (const cluster::HostConfig* cfg = hosts_.Find(host.name)) out->set_uri(cfg->uri);
    out->set_cost_per_hour(host.cost_per_hour);
    out->set_up(host.up);
    out->set_draining(snap.draining.count(host.name) > 0);
    out->set_cpus(host.total_vcpus);
    out->set_memory_kib(host.total_memory_kib);
    out->set_used_vcpus(host.used_vcpus);
    out->set_used_memory_kib(host.used_memory_kib);
    if (membership) FillMembership(*membership, host.name, now, out);
    if (snap.shadows.ok()) {
      for (const auto& shadow : *snap.shadows) {
        if (shadow.host != host.name) continue;
        out->set_reserved_vcpus(out->reserved_vcpus() + shadow.size.vcpus);
        out->set_reserved_memory_kib(out->reserved_memory_kib() + shadow.size.memory_kib);
        out->set_shadows(out->shadows() + 1);
      }
    }
  }
  return grpc::Status::OK;
}

}  // namespace vs::rpc
