// The gRPC ShadowD service (proto/shadowd.proto): the CLI's queries, and the hook's events from hooks older than the
// hook socket (today's hook uses the socket, hook_listener.h; both go through the one HookIntake). Handlers run on
// gRPC's threads; everything that touches the controller or the cluster is handed to the loop (an Executor: Post
// for hook events, Call for queries), so the handlers themselves hold no state.
//
// Sync and Verify hand the work to the ReplicationWorker and wait for it (a round of a small delta takes well
// under a second; the CLI's --timeout bounds the wait).
//
// Ownership: borrows the loop, controller, cluster, replication parts and hook intake, which must outlive the server.
// Failure modes: controller errors map to gRPC codes (NotFound -> NOT_FOUND, InvalidArgument ->
// INVALID_ARGUMENT, FailedPrecondition -> FAILED_PRECONDITION, others -> INTERNAL) with the message kept.
#pragma once

#include "common/executor.h"
#include "common/logger.h"
#include "proto/shadowd.grpc.pb.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/cluster/heartbeat_history.h"
#include "shadowd/cluster/libvirt_cluster.h"
#include "shadowd/controller/controller.h"
#include "shadowd/failover/fence_records.h"
#include "shadowd/failover/promotion_worker.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/hook_intake/hook_intake.h"
#include "shadowd/replication/replication_worker.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/switchover/switchover_coordinator.h"
#include "shadowd/switchover/switchover_target.h"

namespace vs::rpc {

class ShadowService final : public virtshadow::v1::ShadowD::Service {
 public:
  // `loop` runs the controller and the cluster (only ever touched there).
  struct Parts {
    Executor& loop;
    controller::ProtectionController& controller;
    cluster::LibvirtCluster& cluster;
    replication::Replicator& replicator;
    replication::ReplicationWorker& replication;
    switchover::SwitchoverCoordinator& switchovers;
    switchover::SwitchoverRunner& runner;
    switchover::DrainState& drain;
    switchover::SwitchoverTarget& target;
    switchover::ArrivalRecords& arrivals;
    const Clock& clock;
    // Answers DeliverHookEvent (the same as the hook socket does).
    hook_intake::HookIntake& hook_intake;
    // The cluster's membership as this host follows it (thread-safe, read on gRPC's threads); nullptr when
    // shadowd follows no membership ([shadowd] membership = none).
    const cluster::HeartbeatHistory* heartbeats = nullptr;
    // This host's self-fence records (thread-safe: store reads): `status` and `hosts`. nullptr: no self-fencing
    // (membership = none).
    const failover::FenceRecords* fences = nullptr;
    // Crash promotions held here (`promote`, `status`); the worker is woken after an operator's promote.
    // nullptr in tests that serve no promotion.
    failover::Promotions* promotions = nullptr;
    failover::PromotionWorker* promotion_worker = nullptr;
  };
  // `drain_deadline`: the deadline of `virt-shadow drain` when the request names none.
  ShadowService(cluster::ClusterHosts hosts, Duration drain_deadline, Parts parts, Logger::Line log)
      : hosts_(std::move(hosts)), drain_deadline_(drain_deadline), parts_(parts), log_(std::move(log)) {}

  grpc::Status DeliverHookEvent(grpc::ServerContext*, const virtshadow::v1::HookEvent* event,
                                virtshadow::v1::HookVerdict* verdict) override;
  grpc::Status ListVms(grpc::ServerContext*, const virtshadow::v1::ListVmsRequest*,
                       virtshadow::v1::ListVmsReply* reply) override;
  grpc::Status GetVm(grpc::ServerContext*, const virtshadow::v1::GetVmRequest* request,
                     virtshadow::v1::VmStatus* reply) override;
  grpc::Status Explain(grpc::ServerContext*, const virtshadow::v1::ExplainRequest* request,
                       virtshadow::v1::ExplainReply* reply) override;
  grpc::Status ListHosts(grpc::ServerContext*, const virtshadow::v1::ListHostsRequest*,
                         virtshadow::v1::ListHostsReply* reply) override;
  grpc::Status Sync(grpc::ServerContext*, const virtshadow::v1::SyncRequest* request,
                    virtshadow::v1::SyncReply* reply) override;
  grpc::Status Verify(grpc::ServerContext*, const virtshadow::v1::VerifyRequest* request,
                      virtshadow::v1::VerifyReply* reply) override;
  grpc::Status Switchover(grpc::ServerContext*, const virtshadow::v1::SwitchoverRequest* request,
                          virtshadow::v1::SwitchoverReply* reply) override;
  grpc::Status Drain(grpc::ServerContext*, const virtshadow::v1::DrainRequest* request,
                     virtshadow::v1::DrainReply* reply) override;
  grpc::Status Undrain(grpc::ServerContext*, const virtshadow::v1::UndrainRequest* request,
                       virtshadow::v1::UndrainReply* reply) override;
  grpc::Status Failback(grpc::ServerContext*, const virtshadow::v1::FailbackRequest* request,
                        virtshadow::v1::FailbackReply* reply) override;
  grpc::Status ListSwitchovers(grpc::ServerContext*, const virtshadow::v1::ListSwitchoversRequest* request,
                               virtshadow::v1::ListSwitchoversReply* reply) override;
  // Decides the promotion (Promotions::OperatorPromote, on this gRPC thread: it reads the local libvirtd, never
  // the loop) and wakes the promotion thread, which carries it out.
  grpc::Status Promote(grpc::ServerContext*, const virtshadow::v1::PromoteRequest* request,
                       virtshadow::v1::PromoteReply* reply) override;

 private:
  const cluster::ClusterHosts hosts_;
  const Duration drain_deadline_;
  Parts parts_;
  const Logger::Line log_;

  void FillThisHostsFacts(const std::string& vm_uuid, virtshadow::v1::VmStatus* out) const;
  StatusOr<std::string> ResolveUuid(const std::string& vm);
};

}  // namespace vs::rpc
