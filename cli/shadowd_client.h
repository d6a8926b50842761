// The CLI's gRPC client of shadowd's ShadowD service, over the host's unix socket.
//
// Each call has its own deadline (`timeout` after it starts) and fails fast: no wait-for-ready, so a
// missing socket or a refused connection is Unavailable at once, and a hung shadowd DeadlineExceeded
// at the deadline. gRPC statuses become vs::Status through proto/grpc_status.h.
//
// Ownership: owns its channel; borrows `clock`, which must outlive the client.
// Thread-safety: calls may run concurrently (gRPC channels are thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "common/clock.h"
#include "common/status.h"
#include "proto/shadowd.grpc.pb.h"

namespace vs::cli {

class ShadowdClient {
 public:
  ShadowdClient(const std::string& socket_path, std::chrono::seconds timeout, Clock& clock);

  StatusOr<virtshadow::v1::ListVmsReply> ListVms();
  StatusOr<virtshadow::v1::VmStatus> GetVm(const std::string& vm);  // name or UUID
  StatusOr<virtshadow::v1::ExplainReply> Explain(const std::string& vm);
  StatusOr<virtshadow::v1::SyncReply> Sync(const std::string& vm);
  StatusOr<virtshadow::v1::VerifyReply> Verify(const std::string& vm);
  StatusOr<virtshadow::v1::ListHostsReply> ListHosts();
  // The switchover calls wait for the outcome: they need a timeout of minutes, not seconds.
  // deadline_seconds 0: shadowd's configured drain deadline.
  StatusOr<virtshadow::v1::SwitchoverReply> Switchover(const std::string& vm, std::uint32_t deadline_seconds,
                                                       std::optional<std::uint32_t> precopy_hold_seconds);
  StatusOr<virtshadow::v1::DrainReply> Drain(std::uint32_t deadline_seconds, const std::string& reason);
  StatusOr<virtshadow::v1::UndrainReply> Undrain();
  // shadowd gives up on the move after `give_up_after`.
  StatusOr<virtshadow::v1::FailbackReply> Failback(const std::string& vm, std::chrono::seconds give_up_after);
  StatusOr<virtshadow::v1::ListSwitchoversReply> ListSwitchovers();
  // Asks this host's shadowd to promote its shadow of `vm` (returns the decision, not the outcome).
  StatusOr<virtshadow::v1::PromoteReply> Promote(const std::string& vm, bool force, const std::string& reason);

 private:
  template <typename Request, typename Reply>
  using StubMethod = grpc::Status (virtshadow::v1::ShadowD::Stub::*)(grpc::ClientContext*, const Request&, Reply*);

  // One unary call with this client's deadline.
  template <typename Request, typename Reply>
  StatusOr<Reply> Call(StubMethod<Request, Reply> method, const Request& request);

  std::unique_ptr<virtshadow::v1::ShadowD::Stub> stub_;
  std::chrono::seconds timeout_;
  Clock& clock_;
};

}  // namespace vs::cli
