// virt-shadow-hook: libvirt's qemu hook, installed as /etc/libvirt/hooks/qemu or
// /etc/libvirt/hooks/qemu.d/virt-shadow (README.md). The composition root: it reads stdin and the
// environment and hands them to RunHook (hook.h) with the socket deliverer, the spool and the real
// clock; everything it decides is in hook.cc.
//
// Environment (libvirtd passes only LC_ALL, PATH and HOME, so the defaults are the production values):
//   VS_HOOK_SOCKET               shadowd's hook socket ([shadowd] hook_socket), default
//                                /run/virt-shadow/hook.sock
//   VS_SPOOL_DIR                 the spool directory, default /var/lib/virt-shadow/spool
//   VS_FENCE_DIR                 shadowd's fence markers ([shadowd] fence_dir), default
//                                /var/lib/virt-shadow/fenced
//   VS_SHADOWD_ANSWER_WITHIN_MS  default kShadowdAnswerWithin (20); raised only by the process tests
//                                that check what shadowd receives rather than timing, so that a
//                                CPU-starved test machine cannot turn them into deadline tests
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "libvirt-hook/hook.h"
#include "libvirt-hook/socket_deliverer.h"
#include "shadowd/failover/fence_marker.h"
#include "shadowd/spool/spool.h"

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// The deadline override (see the top of the file); the default for anything but 1..60000.
std::chrono::milliseconds AnswerWithin() {
  const std::string text = EnvOr("VS_SHADOWD_ANSWER_WITHIN_MS", "");
  int ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || ms < 1 || ms > 60'000) {
    return vs::hook::kShadowdAnswerWithin;
  }
  return std::chrono::milliseconds(ms);
}

void WriteAll(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nobody to tell: the exit code still carries the decision
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<vs::Clock> clock = vs::NewRealClock();
  // Whatever libvirt finds on stdout at migrate and restore replaces the domain XML, so no code in
  // this process, libraries included, may write there: stdout becomes /dev/null.
  const int dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (dev_null >= 0) {
    ::dup2(dev_null, STDOUT_FILENO);
    ::close(dev_null);
  } else {
    ::close(STDOUT_FILENO);
  }

  const vs::hook::DomainXmlInput domain_xml = vs::hook::ReadDomainXml(STDIN_FILENO);
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  vs::spool::Spool spool(EnvOr("VS_SPOOL_DIR", "/var/lib/virt-shadow/spool"), *clock);
  vs::hook::SocketDeliverer deliverer(EnvOr("VS_HOOK_SOCKET", "/run/virt-shadow/hook.sock"), AnswerWithin(), *clock);
  const vs::hook::HookOutcome outcome = vs::hook::RunHook(args, domain_xml, deliverer, spool, *clock,
                                                          EnvOr("VS_FENCE_DIR", vs::failover::kDefaultFenceDir));
  WriteAll(STDERR_FILENO, outcome.stderr_line);
  return outcome.exit_code;
}
