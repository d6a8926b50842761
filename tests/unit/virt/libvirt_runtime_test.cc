// LibvirtRuntime::Start's process-wide set-up, checked without a libvirtd: libvirt's client writes to its sockets
// with write(2), so a process that uses it must ignore SIGPIPE (a lab test process was killed by SIGPIPE once).
#include <gtest/gtest.h>
#include <signal.h>

#include "shadowd/virt/hypervisor.h"

namespace vs::virt {
namespace {

TEST(LibvirtRuntimeTest, StartIgnoresSigpipeSoThatAClosedConnectionFailsACallInsteadOfKillingTheProcess) {
  ASSERT_NE(::signal(SIGPIPE, SIG_DFL), SIG_ERR);
  auto runtime = LibvirtRuntime::Start();
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
}

}  // namespace
}  // namespace vs::virt
