// The gRPC ShadowD service (proto/shadowd.proto): the hook's events and the CLI's queries. Handlers run on gRPC's
// threads; everything that touches the controller or the cluster is handed to the EventLoop (Post for hook
// events, Call for queries), so the handlers themselves hold no state.
//
// Ownership: borrows the loop, controller and cluster, which must outlive the server.
// Failure modes: controller errors map to gRPC codes (NotFound -> NOT_FOUND, InvalidArgument ->
// INVALID_ARGUMENT, FailedPrecondition -> FAILED_PRECONDITION, others -> INTERNAL) with the message kept.
#pragma once

#include "proto/shadowd.grpc.pb.h"
#include "shadowd/controller/controller.h"
#include "shadowd/daemon/config.h"
#include "shadowd/daemon/event_loop.h"
#include "shadowd/daemon/libvirt_cluster.h"

namespace vs::daemon {

class ShadowService final : public virtshadow::v1::ShadowD::Service {
 public:
  ShadowService(const Config& config, EventLoop& loop, controller::ProtectionController& controller,
                LibvirtCluster& cluster)
      : config_(config), loop_(loop), controller_(controller), cluster_(cluster) {}

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

 private:
  const Config& config_;
  EventLoop& loop_;
  controller::ProtectionController& controller_;
  LibvirtCluster& cluster_;
};

}  // namespace vs::daemon
