// ProtectedVms: what the switchover coordinator asks of the protection controller, which lives on the daemon's
// loop thread. The coordinator owns this interface; ControllerOnLoop is the production implementation (each
// call runs on the loop through an Executor), unit tests use a fake with scripted views.
//
// Thread-safety: implementations are called from the coordinator's thread. Failure modes: the controller's
// errors (NotFound for an unknown VM).
#pragma once

#include <string>
#include <vector>

#include "common/executor.h"
#include "common/status.h"
#include "shadowd/controller/controller.h"

namespace vs::switchover {

class ProtectedVms {
 public:
  virtual ~ProtectedVms() = default;
  // Every tagged VM of this host, as `virt-shadow list` shows it.
  virtual StatusOr<std::vector<controller::VmStatusView>> List() = 0;
  // One VM by name or uuid.
  virtual StatusOr<controller::VmStatusView> StatusOf(const std::string& vm) = 0;
  // Moves the VM's shadow to `host` (failback: the shadow goes to the VM's origin first).
  virtual Status RequestShadowMove(const std::string& vm_uuid, const std::string& host) = 0;
};

// The controller, called on its loop. Must not be used on the loop thread itself (Executor::Call).
class ControllerOnLoop final : public ProtectedVms {
 public:
  ControllerOnLoop(Executor& loop, controller::ProtectionController& controller)
      : loop_(loop), controller_(controller) {}

  StatusOr<std::vector<controller::VmStatusView>> List() override {
    return loop_.Call([this] { return controller_.List(); });
  }
  StatusOr<controller::VmStatusView> StatusOf(const std::string& vm) override {
    return loop_.Call([&] { return controller_.StatusOf(vm); });
  }
  Status RequestShadowMove(const std::string& vm_uuid, const std::string& host) override {
    return loop_.Call([&] { return controller_.RequestShadowMove(vm_uuid, host); });
  }

 private:
  Executor& loop_;
  controller::ProtectionController& controller_;
};

}  // namespace vs::switchover
