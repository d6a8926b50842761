// The translation of libvirt's errors (shadowd/virt/libvirt_error.h): the codes callers act on.
#include <gtest/gtest.h>
#include <libvirt/virterror.h>

#include "shadowd/virt/libvirt_error.h"

namespace vs::virt {
namespace {

// A cached connection to a host whose libvirtd died answers every call with "client socket is closed", an
// internal error of the RPC layer: it must read as unavailable, or the connection is never dialled again.
TEST(LibvirtErrorTest, EveryErrorOfTheRpcLayerIsUnavailable) {
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR), Code::kUnavailable);
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_RPC, VIR_ERR_SYSTEM_ERROR), Code::kUnavailable);
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_QEMU, VIR_ERR_INTERNAL_ERROR), Code::kInternal);
}

TEST(LibvirtErrorTest, ErrorNumbersOfOtherDomainsKeepTheirMeaning) {
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_QEMU, VIR_ERR_NO_DOMAIN), Code::kNotFound);
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_DOM, VIR_ERR_OPERATION_INVALID), Code::kFailedPrecondition);
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_REMOTE, VIR_ERR_SYSTEM_ERROR), Code::kUnavailable);
  EXPECT_EQ(CodeForLibvirtError(VIR_FROM_QEMU, VIR_ERR_OPERATION_TIMEOUT), Code::kDeadlineExceeded);
}

}  // namespace
}  // namespace vs::virt
