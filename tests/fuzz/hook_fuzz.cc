// Fuzz target: what libvirt writes to the hook's stdin (the domain XML), read by ReadDomainXml and handed to RunHook
// (libvirt-hook/hook.h) as main.cc does. The input is the stdin text alone; the operation, shadowd's answer (allow,
// refuse, unreachable) and the reader's limit follow from its length, so that every corpus file stays a plain domain
// XML: the limit is the input's length (all of it is kept) or, for one length in four, half of it (the oversized path:
// the kept part, then the rest scanned for a sign of a policy). The spool refuses every event (max_events 0), so that
// nothing piles up on disk. Checked beyond "no crash, no leak, no UB": the hook's contract that it exits 0 or 1, 1 only
// at `prepare begin`, with no stderr line or exactly one; that a stdin within the limit is kept whole; and that an
// oversized stdin is called untagged only when MayBeTagged is false for all of it (no policy slips through between the
// kept part and the scanned rest).
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "libvirt-hook/hook.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/spool/spool.h"

namespace vs::hook {
namespace {

void Check(bool promise) {
  if (!promise) std::abort();
}

class AnsweringDeliverer final : public EventDeliverer {
 public:
  StatusOr<virtshadow::v1::HookVerdict> Deliver(const virtshadow::v1::HookEvent&) override { return answer; }
  StatusOr<virtshadow::v1::HookVerdict> answer = Unavailable("no shadowd");
};

// A scratch directory for the spool (and the fence markers, none), removed when the fuzzer exits. Never destroyed:
// the atexit handler runs after the destructors of statics constructed before it was registered.
const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    auto* path = new std::string((std::filesystem::temp_directory_path() / "vs-hook-fuzz-XXXXXX").string());
    if (::mkdtemp(path->data()) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(ScratchDir()); });
    return path;
  }();
  return *dir;
}

// stdin as main.cc reads it, from a memfd: ReadDomainXml with `limit`.
DomainXmlInput ReadAsStdin(std::string_view text, size_t limit) {
  const int fd = ::memfd_create("hook-fuzz-stdin", MFD_CLOEXEC);
  Check(fd >= 0);
  Check(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  Check(::lseek(fd, 0, SEEK_SET) == 0);
  DomainXmlInput input = ReadDomainXml(fd, limit);
  ::close(fd);
  return input;
}

void FuzzOne(std::string_view stdin_text) {
  constexpr std::array<std::array<const char*, 2>, 3> kOperations = {
      {{"prepare", "begin"}, {"started", "begin"}, {"release", "end"}}};
  const auto& [operation, sub_operation] = kOperations[(stdin_text.size() / 3) % kOperations.size()];
  const std::array<std::string, 4> args = {"vm", operation, sub_operation, "-"};

  AnsweringDeliverer deliverer;
  virtshadow::v1::HookVerdict verdict;
  verdict.set_allow(stdin_text.size() % 3 == 1);
  verdict.set_reason("fuzz");
  if (stdin_text.size() % 3 != 0) deliverer.answer = verdict;

  FakeClock clock;
  spool::Spool spool(ScratchDir() + "/spool", clock, spool::SpoolLimits{.max_events = 0});
  const bool oversized = (stdin_text.size() / 9) % 4 == 3;
  const DomainXmlInput input = ReadAsStdin(stdin_text, oversized ? stdin_text.size() / 2 : stdin_text.size());
  if (const auto* kept = std::get_if<std::string>(&input)) {
    Check(!oversized && *kept == stdin_text);
  } else {
    Check(oversized);
    Check(std::get<OversizedXml>(input).may_be_tagged || !policy::MayBeTagged(stdin_text));
  }
  const HookOutcome outcome = RunHook(args, input, deliverer, spool, clock, ScratchDir());

  const bool at_prepare = std::string_view(operation) == "prepare";
  Check(outcome.exit_code == 0 || (outcome.exit_code == 1 && at_prepare));
  const std::string& line = outcome.stderr_line;
  Check(line.empty() || (line.back() == '\n' && line.find('\n') == line.size() - 1));
}

}  // namespace
}  // namespace vs::hook

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vs::hook::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
