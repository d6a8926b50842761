// Fuzz target: what libvirt writes to the hook's stdin (the domain XML), through RunHook (libvirt-hook/hook.h) as
// main.cc calls it. The input is the stdin text alone; the operation and shadowd's answer (allow, refuse,
// unreachable) follow from its length, so that every corpus file stays a plain domain XML. The spool refuses every
// event (max_events 0), so that nothing piles up on disk. Checked beyond "no crash, no leak, no UB": the hook's
// contract that it exits 0 or 1, 1 only at `prepare begin`, with no stderr line or exactly one.
#include <stdlib.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "libvirt-hook/hook.h"
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
  const HookOutcome outcome = RunHook(args, stdin_text, deliverer, spool, clock, ScratchDir());

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
