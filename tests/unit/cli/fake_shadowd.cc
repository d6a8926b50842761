#include "tests/unit/cli/fake_shadowd.h"

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "proto/shadowd.grpc.pb.h"

namespace vs::cli::testing {

namespace v1 = virtshadow::v1;

class FakeShadowd::Service final : public v1::ShadowD::Service {
 public:
  explicit Service(ShadowdAnswers answers) : answers_(std::move(answers)) {}

  grpc::Status ListVms(grpc::ServerContext*, const v1::ListVmsRequest*, v1::ListVmsReply* reply) override {
    for (const v1::VmStatus& vm : answers_.vms) *reply->add_vms() = vm;
    return grpc::Status::OK;
  }

  grpc::Status GetVm(grpc::ServerContext*, const v1::GetVmRequest* request, v1::VmStatus* reply) override {
    Record(request->vm());
    for (const v1::VmStatus& vm : answers_.vms) {
      if (vm.name() == request->vm() || vm.uuid() == request->vm()) {
        *reply = vm;
        return grpc::Status::OK;
      }
    }
    return NoRecord(request->vm());
  }

  grpc::Status Explain(grpc::ServerContext*, const v1::ExplainRequest* request, v1::ExplainReply* reply) override {
    Record(request->vm());
    auto it = answers_.explanations.find(request->vm());
    if (it == answers_.explanations.end()) return NoRecord(request->vm());
    *reply = it->second;
    return grpc::Status::OK;
  }

  grpc::Status ListHosts(grpc::ServerContext*, const v1::ListHostsRequest*, v1::ListHostsReply* reply) override {
    *reply = answers_.hosts;
    return grpc::Status::OK;
  }

  std::vector<std::string> requested_vms() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requested_vms_;
  }

 private:
  static grpc::Status NoRecord(const std::string& vm) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no VM '" + vm + "' on this host");
  }
  void Record(const std::string& vm) {
    std::lock_guard<std::mutex> lock(mu_);
    requested_vms_.push_back(vm);
  }

  const ShadowdAnswers answers_;
  mutable std::mutex mu_;
  std::vector<std::string> requested_vms_;  // guarded by mu_
};

FakeShadowd::FakeShadowd(ShadowdAnswers answers) : service_(std::make_unique<Service>(std::move(answers))) {}

StatusOr<std::unique_ptr<FakeShadowd>> FakeShadowd::Start(const std::string& socket_path, ShadowdAnswers answers) {
  std::unique_ptr<FakeShadowd> shadowd(new FakeShadowd(std::move(answers)));
  ::unlink(socket_path.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(shadowd->service_.get());
  shadowd->server_ = builder.BuildAndStart();
  if (!shadowd->server_) return Internal("cannot start a gRPC server on unix:" + socket_path);
  return shadowd;
}

FakeShadowd::~FakeShadowd() {
  if (server_) server_->Shutdown();
}

std::vector<std::string> FakeShadowd::requested_vms() const { return service_->requested_vms(); }

}  // namespace vs::cli::testing
