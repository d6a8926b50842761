// An in-process shadowd for the CLI's process tests: serves ShadowD's ListVms, GetVm, Explain,
// ListHosts and the switchover calls (Switchover, Drain, Undrain, Failback, ListSwitchovers) on a unix
// socket from canned answers (NOT_FOUND for a VM it has no record of) and records which VMs were asked
// for and every switchover call with its request. DeliverHookEvent, Sync and Verify are left
// unimplemented (UNIMPLEMENTED): no test calls them.
//
// Ownership: owns its gRPC server and stops it in its destructor. Thread-safety: the answers are set
// before Start and only read while serving; requested_vms() and calls() may be called while it runs.
// Failure modes: Start returns Internal naming the socket when the server cannot listen there.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/shadowd.pb.h"

namespace grpc {
class Server;
}

namespace vs::cli::testing {

struct ShadowdAnswers {
  std::vector<virtshadow::v1::VmStatus> vms;
  std::map<std::string, virtshadow::v1::ExplainReply> explanations;  // by VM name
  virtshadow::v1::ListHostsReply hosts;
  std::map<std::string, virtshadow::v1::SwitchoverRecord> switchovers;  // Switchover's answer, by VM name
  virtshadow::v1::DrainReply drain;
  bool draining = false;                                                // Undrain's was_draining
  std::map<std::string, virtshadow::v1::FailbackReply> failbacks;       // by VM name
  virtshadow::v1::ListSwitchoversReply switchover_list;
};

class FakeShadowd {
 public:
  static StatusOr<std::unique_ptr<FakeShadowd>> Start(const std::string& socket_path, ShadowdAnswers answers);
  ~FakeShadowd();
  std::vector<std::string> requested_vms() const;  // GetVm and Explain arguments, in order
  // ListHosts and the switchover calls in order, each as "Method" or "Method <request's short debug
  // string>", e.g. "Drain deadline_seconds: 60 reason: \"x\"".
  std::vector<std::string> calls() const;

 private:
  class Service;
  explicit FakeShadowd(ShadowdAnswers answers);

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace vs::cli::testing
