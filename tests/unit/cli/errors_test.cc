// Exit codes from shadowd's and libvirt's statuses, gRPC codes into vs::Status, and the one-line
// error messages.
#include "proto/grpc_status.h"
#include "cli/errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "cli/shadowd_client.h"

namespace vs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct CodeCase {
  Code code;
  ExitCode shadowd;
  ExitCode libvirt;
};

TEST(CliExitCodeTest, EveryStatusCodeMapsForShadowdAndForLibvirt) {
  const std::vector<CodeCase> cases = {
      {Code::kOk, ExitCode::kSuccess, ExitCode::kSuccess},
      {Code::kInvalidArgument, ExitCode::kUsage, ExitCode::kUsage},
      {Code::kNotFound, ExitCode::kDomainNotFound, ExitCode::kDomainNotFound},
      {Code::kAlreadyExists, ExitCode::kFailed, ExitCode::kFailed},
      {Code::kFailedPrecondition, ExitCode::kFailed, ExitCode::kFailed},
      // Only shadowd's absence is exit 3; an unreachable libvirtd is an ordinary failure.
      {Code::kUnavailable, ExitCode::kShadowdUnreachable, ExitCode::kFailed},
      {Code::kDeadlineExceeded, ExitCode::kShadowdUnreachable, ExitCode::kFailed},
      {Code::kAborted, ExitCode::kFailed, ExitCode::kFailed},
      {Code::kResourceExhausted, ExitCode::kFailed, ExitCode::kFailed},
      {Code::kPermissionDenied, ExitCode::kFailed, ExitCode::kFailed},
      {Code::kDataLoss, ExitCode::kFailed, ExitCode::kFailed},
      {Code::kInternal, ExitCode::kFailed, ExitCode::kFailed},
  };
  for (const CodeCase& c : cases) {
    const Status status = c.code == Code::kOk ? Status::Ok() : Status(c.code, "x");
    EXPECT_EQ(ExitCodeForShadowd(status), c.shadowd) << CodeName(c.code);
    EXPECT_EQ(ExitCodeForLibvirt(status), c.libvirt) << CodeName(c.code);
  }
}

TEST(CliExitCodeTest, DocsCoverEveryCodeOnce) {
  std::set<int> codes;
  for (const ExitCodeDoc& doc : ExitCodeDocs()) {
    EXPECT_FALSE(doc.meaning.empty());
    codes.insert(static_cast<int>(doc.code));
  }
  EXPECT_EQ(codes, (std::set<int>{0, 1, 2, 3, 4}));
}

TEST(CliFromGrpcStatusTest, EveryGrpcCodeMaps) {
  const std::vector<std::pair<grpc::StatusCode, Code>> cases = {
      {grpc::StatusCode::OK, Code::kOk},
      {grpc::StatusCode::CANCELLED, Code::kInternal},
      {grpc::StatusCode::UNKNOWN, Code::kInternal},
      {grpc::StatusCode::INVALID_ARGUMENT, Code::kInvalidArgument},
      {grpc::StatusCode::DEADLINE_EXCEEDED, Code::kDeadlineExceeded},
      {grpc::StatusCode::NOT_FOUND, Code::kNotFound},
      {grpc::StatusCode::ALREADY_EXISTS, Code::kAlreadyExists},
      {grpc::StatusCode::PERMISSION_DENIED, Code::kPermissionDenied},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, Code::kResourceExhausted},
      {grpc::StatusCode::FAILED_PRECONDITION, Code::kFailedPrecondition},
      {grpc::StatusCode::ABORTED, Code::kAborted},
      {grpc::StatusCode::OUT_OF_RANGE, Code::kInternal},
      {grpc::StatusCode::UNIMPLEMENTED, Code::kFailedPrecondition},
      {grpc::StatusCode::INTERNAL, Code::kInternal},
      {grpc::StatusCode::UNAVAILABLE, Code::kUnavailable},
      {grpc::StatusCode::DATA_LOSS, Code::kDataLoss},
      {grpc::StatusCode::UNAUTHENTICATED, Code::kInternal},
  };
  for (const auto& [grpc_code, code] : cases) {
    const Status status = FromGrpcStatus(grpc::Status(grpc_code, "the message"));
    EXPECT_EQ(status.code(), code) << static_cast<int>(grpc_code);
    if (code != Code::kOk) {
      EXPECT_THAT(status.message(), HasSubstr("the message")) << static_cast<int>(grpc_code);
    }
  }
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "m")).message(), StartsWith("gRPC code 11"));
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "m")).message(),
              HasSubstr("update its virt-shadow"));
}

TEST(CliFromGrpcStatusTest, EveryStatusCodeSurvivesTheRoundTrip) {
  for (Code code : {Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists, Code::kFailedPrecondition,
                    Code::kUnavailable, Code::kDeadlineExceeded, Code::kAborted, Code::kResourceExhausted,
                    Code::kPermissionDenied, Code::kDataLoss, Code::kInternal}) {
    const Status back = FromGrpcStatus(ToGrpcStatus(Status(code, "why")));
    EXPECT_EQ(back.code(), code) << CodeName(code);
    EXPECT_EQ(back.message(), "why");
  }
  EXPECT_TRUE(FromGrpcStatus(ToGrpcStatus(Status::Ok())).ok());
}

TEST(CliErrorLineTest, PrefixedAndAlwaysOneLine) {
  EXPECT_EQ(ErrorLine("cannot x: y; do z"), "virt-shadow: cannot x: y; do z");
  const std::string line = ErrorLine("libvirt said:\nline two\r\tand\x1b[31m red");
  EXPECT_EQ(line, "virt-shadow: libvirt said: line two  and [31m red");
  EXPECT_EQ(ErrorLine("caf\xC3\xA9"), "virt-shadow: caf\xC3\xA9");  // UTF-8 is kept
}

constexpr std::chrono::seconds kTimeout{7};

TEST(CliShadowdFailureTest, UnreachableNamesTheSocketAndTheErrno) {
  const std::string message = DescribeShadowdFailure(
      Unavailable("failed to connect to all addresses; last error: UNKNOWN: unix:/run/s.sock: Connection refused"),
      "the VM list", "/run/s.sock", kTimeout);
  EXPECT_EQ(message, "cannot reach shadowd at /run/s.sock: connection refused; is shadowd running on this host? "
                     "(--socket or VS_SHADOWD_SOCKET choose another socket)");
}

TEST(CliShadowdFailureTest, PermissionDeniedSuggestsRoot) {
  const std::string message = DescribeShadowdFailure(
      Unavailable("failed to connect to all addresses; last error: UNKNOWN: unix:/run/s.sock: Permission denied"),
      "the VM list", "/run/s.sock", kTimeout);
  EXPECT_EQ(message, "cannot reach shadowd at /run/s.sock: permission denied; the control socket /run/s.sock is "
                     "root-only: run virt-shadow as root (sudo virt-shadow ...)");
  EXPECT_EQ(ExitCodeForShadowd(Unavailable("permission denied")), ExitCode::kShadowdUnreachable);
}

TEST(CliShadowdFailureTest, AnUnfamiliarGrpcMessageIsKeptWhole) {
  const std::string message =
      DescribeShadowdFailure(Unavailable("Socket closed"), "the VM list", "/run/s.sock", kTimeout);
  EXPECT_THAT(message, StartsWith("cannot reach shadowd at /run/s.sock: Socket closed; "));
}

TEST(CliShadowdFailureTest, DeadlineNamesTheTimeoutAndTheOption) {
  const std::string message =
      DescribeShadowdFailure(DeadlineExceeded("Deadline Exceeded"), "the host list", "/run/s.sock", kTimeout);
  EXPECT_THAT(message, StartsWith("no answer from shadowd at /run/s.sock within 7 s"));
  EXPECT_THAT(message, HasSubstr("--timeout"));
}

TEST(CliShadowdFailureTest, NotFoundNamesTheSubject) {
  const std::string message =
      DescribeShadowdFailure(NotFound("no VM named 'web-9'"), "VM 'web-9'", "/run/s.sock", kTimeout);
  EXPECT_EQ(message, "shadowd has no record of VM 'web-9': no VM named 'web-9'; 'virt-shadow list' shows the VMs it "
                     "knows (a VM gets a record once it is tagged)");
}

TEST(CliShadowdFailureTest, OtherFailuresKeepTheCode) {
  const std::string message =
      DescribeShadowdFailure(Internal("store is corrupt"), "the VM list", "/run/s.sock", kTimeout);
  EXPECT_EQ(message, "shadowd could not report the VM list: INTERNAL: store is corrupt; check shadowd's log on this "
                     "host");
}

}  // namespace
}  // namespace vs::cli
