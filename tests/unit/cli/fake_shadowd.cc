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

  grpc::Status ListHosts(grpc::ServerContext*, const v1::ListHostsRequest* request,
                         v1::ListHostsReply* reply) override {
    Log("ListHosts", *request);
    *reply = answers_.hosts;
    return grpc::Status::OK;
  }

  grpc::Status Switchover(grpc::ServerContext*, const v1::SwitchoverRequest* request,
                          v1::SwitchoverReply* reply) override {
    Log("Switchover", *request);
    auto it = answers_.switchovers.find(request->vm());
    if (it == answers_.switchovers.end()) return NoRecord(request->vm());
    *reply->mutable_record() = it->second;
    return grpc::Status::OK;
  }

  grpc::Status Drain(grpc::ServerContext*, const v1::DrainRequest* request, v1::DrainReply* reply) override {
    Log("Drain", *request);
    *reply = answers_.drain;
    return grpc::Status::OK;
  }

  grpc::Status Undrain(grpc::ServerContext*, const v1::UndrainRequest* request, v1::UndrainReply* reply) override {
    Log("Undrain", *request);
    reply->set_was_draining(answers_.draining);
    return grpc::Status::OK;
  }

  grpc::Status Failback(grpc::ServerContext*, const v1::FailbackRequest* request, v1::FailbackReply* reply) override {
    Log("Failback", *request);
    auto it = answers_.failbacks.find(request->vm());
    if (it == answers_.failbacks.end()) return NoRecord(request->vm());
    *reply = it->second;
    return grpc::Status::OK;
  }

  grpc::Status ListSwitchovers(grpc::ServerContext*, const v1::ListSwitchoversRequest* request,
                               v1::ListSwitchoversReply* reply) override {
    Log("ListSwitchovers", *request);
    *reply = answers_.switchover_list;
    return grpc::Status::OK;
  }

  std::vector<std::string> requested_vms() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requested_vms_;
  }

  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  static grpc::Status NoRecord(const std::string& vm) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no VM '" + vm + "' on this host");
  }
  void Record(const std::string& vm) {
    std::lock_guard<std::mutex> lock(mu_);
    requested_vms_.push_back(vm);
  }
  void Log(const std::string& method, const google::protobuf::Message& request) {
    const std::string fields = request.ShortDebugString();
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(fields.empty() ? method : method + " " + fields);
  }

  const ShadowdAnswers answers_;
  mutable std::mutex mu_;
  std::vector<std::string> requested_vms_;  // guarded by mu_
  std::vector<std::string> calls_;          // guarded by mu_
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

std::vector<std::string> FakeShadowd::calls() const { return service_->calls(); }

}  // namespace vs::cli::testing
