// Which TCP endpoint a libvirt URI's libvirtd listens on, for the probe before libvirt's own connect (which has no
// timeout): plain TCP and TLS transports, with their default ports, a user, an explicit port and a query.
#include "shadowd/virt/libvirtd_probe.h"

#include <gtest/gtest.h>

namespace vs::virt {
namespace {

using Endpoint = std::optional<std::pair<std::string, std::string>>;

TEST(TcpEndpointOfTest, TcpAndTlsUrisNameTheirHostAndLibvirtdsPort) {
  EXPECT_EQ(TcpEndpointOf("qemu+tcp://10.77.0.11/system"), Endpoint({"10.77.0.11", "16509"}));
  EXPECT_EQ(TcpEndpointOf("qemu+tls://10.77.0.11/system"), Endpoint({"10.77.0.11", "16514"}));
  EXPECT_EQ(TcpEndpointOf("qemu+tls://root@h1.example.org:1234/system"), Endpoint({"h1.example.org", "1234"}));
  EXPECT_EQ(TcpEndpointOf("qemu+tls://10.77.0.12/system?pkipath=/var/tmp/pki"), Endpoint({"10.77.0.12", "16514"}));
  EXPECT_EQ(TcpEndpointOf("qemu+tls://10.77.0.12?pkipath=/var/tmp/pki"), Endpoint({"10.77.0.12", "16514"}));
}

TEST(TcpEndpointOfTest, OtherTransportsHaveNoEndpointToProbe) {
  EXPECT_EQ(TcpEndpointOf("qemu:///system"), std::nullopt);
  EXPECT_EQ(TcpEndpointOf("qemu+ssh://root@h2/system"), std::nullopt);
  EXPECT_EQ(TcpEndpointOf("qemu+unix:///system"), std::nullopt);
}

}  // namespace
}  // namespace vs::virt
