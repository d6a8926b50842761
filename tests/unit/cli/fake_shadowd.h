// An in-process shadowd for the CLI's process tests: serves ShadowD's ListVms, GetVm, Explain and
// ListHosts on a unix socket from canned answers (NOT_FOUND for a VM it has no record of) and records
// which VMs were asked for. DeliverHookEvent is left unimplemented: the CLI never calls it.
//
// Ownership: owns its gRPC server and stops it in its destructor. Thread-safety: the answers are set
// before Start and only read while serving; requested_vms() may be called while the server runs.
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
};

class FakeShadowd {
 public:
  static StatusOr<std::unique_ptr<FakeShadowd>> Start(const std::string& socket_path, ShadowdAnswers answers);
  ~FakeShadowd();
  std::vector<std::string> requested_vms() const;  // GetVm and Explain arguments, in order

 private:
  class Service;
  explicit FakeShadowd(ShadowdAnswers answers);

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace vs::cli::testing
