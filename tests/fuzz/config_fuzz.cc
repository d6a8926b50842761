// Fuzz target: shadowd.conf (shadowd/daemon/config.h), the INI text as an operator (or a tool writing it) may get it
// wrong. Anything but a Config or an InvalidArgument (a crash, a leak, UB, an exception out of Boost's parser) is a
// finding; so is an accepted integer setting outside the range the header documents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "shadowd/daemon/config.h"

namespace vs::daemon {
namespace {

void Check(bool promise) {
  if (!promise) std::abort();
}

void FuzzOne(const std::string& text) {
  StatusOr<Config> config = ParseConfig(text);
  if (!config.ok()) {
    Check(config.status().code() == Code::kInvalidArgument);
    return;
  }
  Check(config->peer_port >= 1 && config->peer_port <= 65535);
  Check(config->nbd_port >= 1 && config->nbd_port <= 65535);
  Check(config->refresh.count() >= 1);
  Check(config->grace.count() >= 0);
  Check(config->FindHost(config->this_host) != nullptr);
  for (const cluster::HostConfig& host : config->hosts) {
    Check(!host.vcpus_cap || (*host.vcpus_cap >= 1 && *host.vcpus_cap <= (1u << 16)));
    Check(!host.memory_mib_cap || *host.memory_mib_cap >= 64);
  }
}

}  // namespace
}  // namespace vs::daemon

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vs::daemon::FuzzOne(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
