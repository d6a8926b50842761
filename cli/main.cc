// virt-shadow: the virsh-style CLI of virt-shadow (cli/app.h does the work; `man virt-shadow`).
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "common/clock.h"
#include "shadowd/virt/hypervisor.h"

namespace {

std::optional<std::string> FromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::nullopt : std::optional<std::string>(value);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const vs::cli::Environment env{.libvirt_default_uri = FromEnvironment("LIBVIRT_DEFAULT_URI"),
                                 .shadowd_socket = FromEnvironment("VS_SHADOWD_SOCKET")};
  std::unique_ptr<vs::Clock> clock = vs::NewRealClock();
  // Started only when tag or untag connects; declared before any Hypervisor so that it outlives them.
  std::unique_ptr<vs::virt::LibvirtRuntime> libvirt;
  auto connect = [&](const std::string& uri) -> vs::StatusOr<std::unique_ptr<vs::virt::Hypervisor>> {
    if (!libvirt) {
      VS_ASSIGN_OR_RETURN(libvirt, vs::virt::LibvirtRuntime::Start());
    }
    return libvirt->Connect(uri, *clock);
  };
  return vs::cli::Run(args, env, connect, *clock, std::cout, std::cerr);
}
