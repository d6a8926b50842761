#include "shadowd/switchover/guest_check.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

namespace vs::switchover {
namespace {

using virt::AgentPing;
using virt::GuestActivity;

// How the counters of one host changed between two of its samples.
struct IoDelta {
  uint64_t read_requests = 0;
  uint64_t write_requests = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_packets = 0;
  // Whether anything that counts as the guest's progress changed; rx does not count (see the header).
  bool Counted() const {
    return read_requests != 0 || write_requests != 0 || read_bytes != 0 || write_bytes != 0 || tx_packets != 0;
  }
};

// nullopt when any counter went backwards: a new QEMU process, or a device unplugged from the sums.
std::optional<IoDelta> Delta(const GuestActivity& before, const GuestActivity& after) {
  const uint64_t pairs[][2] = {{before.block_read_requests, after.block_read_requests},
                               {before.block_write_requests, after.block_write_requests},
                               {before.block_read_bytes, after.block_read_bytes},
                               {before.block_write_bytes, after.block_write_bytes},
                               {before.net_tx_packets, after.net_tx_packets},
                               {before.net_rx_packets, after.net_rx_packets}};
  for (const auto& [was, is] : pairs) {
    if (is < was) return std::nullopt;
  }
  return IoDelta{.read_requests = after.block_read_requests - before.block_read_requests,
                 .write_requests = after.block_write_requests - before.block_write_requests,
                 .read_bytes = after.block_read_bytes - before.block_read_bytes,
                 .write_bytes = after.block_write_bytes - before.block_write_bytes,
                 .tx_packets = after.net_tx_packets - before.net_tx_packets,
                 .rx_packets = after.net_rx_packets - before.net_rx_packets};
}

// "20 s", "1.5 s", "0.125 s": whole milliseconds, without trailing zeros.
std::string Seconds(Duration d) {
  const int64_t ms = std::chrono::round<std::chrono::milliseconds>(d).count();
  std::string text = (ms < 0 ? "-" : "") + std::to_string(std::abs(ms) / 1000);
  if (const int64_t frac = std::abs(ms) % 1000; frac != 0) {
    std::string digits = std::to_string(1000 + frac).substr(1);
    while (digits.back() == '0') digits.pop_back();
    text += "." + digits;
  }
  return text + " s";
}

std::string Plural(uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// "did 312 block writes (1277952 bytes), 5 block reads (20480 bytes) and sent 20 packets": the counted part.
std::string Describe(const IoDelta& d) {
  std::vector<std::string> blocks;
  if (d.write_requests != 0 || d.write_bytes != 0) {
    blocks.push_back(Plural(d.write_requests, "block write") + " (" + Plural(d.write_bytes, "byte") + ")");
  }
  if (d.read_requests != 0 || d.read_bytes != 0) {
    blocks.push_back(Plural(d.read_requests, "block read") + " (" + Plural(d.read_bytes, "byte") + ")");
  }
  std::string text;
  for (size_t i = 0; i < blocks.size(); ++i) {
    text += (i == 0 ? "did " : (i + 1 == blocks.size() && d.tx_packets == 0) ? " and " : ", ") + blocks[i];
  }
  if (d.tx_packets != 0) text += (text.empty() ? "sent " : " and sent ") + Plural(d.tx_packets, "packet");
  return text;
}

// Why `sample` carries no agent answer.
std::string NoAnswer(const GuestActivity& sample) {
  switch (sample.agent) {
    case AgentPing::kNoChannel: return "the domain has no agent channel";
    case AgentPing::kAnswered: return "it answered";
    case AgentPing::kSilent:
    case AgentPing::kNotAsked: return sample.agent_error.empty() ? "no answer" : sample.agent_error;
  }
  return "no answer";
}

std::string_view StateWord(virt::DomainState state) {
  switch (state) {
    case virt::DomainState::kNoState: return "in no state";
    case virt::DomainState::kRunning: return "running";
    case virt::DomainState::kBlocked: return "blocked";
    case virt::DomainState::kPaused: return "paused";
    case virt::DomainState::kShutdown: return "shutting down";
    case virt::DomainState::kShutoff: return "shut off";
    case virt::DomainState::kCrashed: return "crashed";
    case virt::DomainState::kSuspended: return "suspended (pmsuspended)";
  }
  return "in an unknown state";
}

}  // namespace

std::string_view GuestVerdictName(GuestVerdict verdict) {
  switch (verdict) {
    case GuestVerdict::kAlive: return "alive";
    case GuestVerdict::kDead: return "dead";
    case GuestVerdict::kUnverifiable: return "unverifiable";
  }
  return "unknown";
}

StatusOr<SourceObservation> ObserveSource(const std::string& host, const ActivitySampler& sample, Duration window,
                                          Clock& clock) {
  const std::string what = "observing the guest on " + host + " before the switchover";
  if (window <= Duration::zero()) {
    return InvalidArgument(what + ": the window between the two samples must be positive, not " + Seconds(window));
  }
  SourceObservation observation{.host = host};
  const MonoTime start = clock.Now();
  StatusOr<GuestActivity> first = sample();
  if (!first.ok()) return first.status().Annotate(what);
  observation.first = std::move(first).value();
  const MonoTime due = start + window;
  if (const MonoTime now = clock.Now(); now < due) clock.SleepFor(due - now);
  const MonoTime second_at = clock.Now();
  StatusOr<GuestActivity> second = sample();
  if (!second.ok()) return second.status().Annotate(what);
  observation.second = std::move(second).value();
  observation.window = second_at - start;
  return observation;
}

bool SourceShowedProgress(const SourceObservation& source) {
  if (source.first.agent == AgentPing::kAnswered || source.second.agent == AgentPing::kAnswered) return true;
  const std::optional<IoDelta> io = Delta(source.first, source.second);
  return io && io->Counted();
}

StatusOr<GuestCheckResult> CheckTarget(const SourceObservation& source, const std::string& target_host,
                                       const ActivitySampler& sample, const GuestCheckOptions& options,
                                       Clock& clock) {
  const std::string what = "checking the guest on " + target_host + " after the switchover";
  if (options.interval <= Duration::zero()) {
    return InvalidArgument(what + ": the sampling interval must be positive, not " + Seconds(options.interval));
  }
  if (options.bound < options.interval) {
    return InvalidArgument(what + ": the bound (" + Seconds(options.bound) + ") must be at least one sampling " +
                           "interval (" + Seconds(options.interval) + "): two samples are needed to see counters move");
  }
  // "There is an agent" means one that answered on the source: a channel nobody listens on proves nothing.
  const bool agent_expected =
      source.first.agent == AgentPing::kAnswered || source.second.agent == AgentPing::kAnswered;

  GuestCheckResult result;
  const MonoTime start = clock.Now();
  const MonoTime deadline = start + options.bound;
  std::optional<GuestActivity> baseline;  // counters are compared with it; replaced when they go backwards
  MonoTime baseline_at = start;
  std::optional<GuestActivity> previous;  // the last successful sample, for the rx tally and the final state
  int succeeded = 0;
  int resets = 0;
  uint64_t rx_packets = 0;
  Status last_error;
  auto alive = [&](std::string explanation) {
    result.verdict = GuestVerdict::kAlive;
    result.explanation = std::move(explanation);
    result.waited = clock.Now() - start;
    return result;
  };

  for (;;) {
    const MonoTime taken_at = clock.Now();
    StatusOr<GuestActivity> sampled = sample();
    ++result.samples;
    if (!sampled.ok()) {
      last_error = sampled.status();
    } else {
      const GuestActivity& now = *sampled;
      ++succeeded;
      if (now.agent == AgentPing::kAnswered) {
        return alive("the guest agent answered guest-ping on " + target_host + " at sample " +
                     std::to_string(result.samples) + ", " + Seconds(taken_at - start) + " into the check");
      }
      if (previous) {
        if (auto step = Delta(*previous, now)) rx_packets += step->rx_packets;
      }
      previous = now;
      if (!baseline) {
        baseline = now;
        baseline_at = taken_at;
      } else if (auto delta = Delta(*baseline, now); !delta) {
        ++resets;
        baseline = now;
        baseline_at = taken_at;
      } else if (delta->Counted()) {
        std::string explanation = "on " + target_host + " the guest " + Describe(*delta) + " in " +
                                  Seconds(taken_at - baseline_at);
        if (agent_expected) {
          explanation += " (its guest agent, which answered on " + source.host + ", did not answer there: " +
                         NoAnswer(now) + ")";
        }
        return alive(std::move(explanation));
      }
    }
    // The sample started at the bound is the last; so is one that ran past it.
    const MonoTime now = clock.Now();
    if (taken_at >= deadline || now > deadline) break;
    const MonoTime next = std::min(taken_at + options.interval, deadline);
    if (next > now) clock.SleepFor(next - now);
  }
  result.waited = clock.Now() - start;

  if (succeeded < 2) {
    // Without two samples nothing was seen either way; a failing look is not the guest's fault.
    const Code code = last_error.ok() ? Code::kDeadlineExceeded : last_error.code();
    std::string message = what + ": " + std::to_string(succeeded) + " of " + std::to_string(result.samples) +
                          " samples succeeded in " + Seconds(result.waited) + ", too few to judge";
    if (!last_error.ok()) message += "; last error: " + last_error.message();
    return Status(code, std::move(message));
  }

  const std::optional<IoDelta> source_io = Delta(source.first, source.second);
  const bool source_did_io = source_io && source_io->Counted();
  const std::string waited = Seconds(result.waited);
  const std::string window = Seconds(source.window);
  std::string text;
  if (agent_expected) {
    result.verdict = GuestVerdict::kDead;
    text = "its guest agent answered on " + source.host + " before the switchover but not on " + target_host +
           " in " + waited + " (last: " + NoAnswer(*previous) + "), and the guest did no block I/O and sent no " +
           "packets there";
    if (source_did_io) {
      text += "; on " + source.host + " it " + Describe(*source_io) + " in " + window + " before the switchover";
    }
  } else if (source_did_io) {
    result.verdict = GuestVerdict::kDead;
    text = "no block I/O and no packets sent by the guest on " + target_host + " in " + waited + "; on " +
           source.host + " it " + Describe(*source_io) + " in " + window + " before the switchover";
  } else {
    result.verdict = GuestVerdict::kUnverifiable;
    const std::string no_agent = "no answering guest agent (on " + source.host + ": " + NoAnswer(source.second) + ")";
    if (source_io) {
      text = no_agent + " and no block I/O or packets sent by the guest, on " + source.host + " in " + window +
             " before the switchover nor on " + target_host + " in " + waited;
    } else {
      text = no_agent + ", its I/O on " + source.host + " unknown (the counters went backwards during the " +
             window + " before the switchover) and none on " + target_host + " in " + waited;
    }
    text += ": nothing the host can see proves or disproves that the guest makes progress";
  }
  if (rx_packets != 0) {
    text += "; it received " + Plural(rx_packets, "packet") + " on " + target_host +
            ", which the host delivers without the guest's help, so they do not count";
  }
  if (resets != 0) {
    text += "; its counters on " + target_host + " went backwards " + Plural(resets, "time") +
            " (each taken as a new baseline)";
  }
  if (const int failed = result.samples - succeeded; failed != 0) {
    text += "; " + std::to_string(failed) + " of " + std::to_string(result.samples) +
            " samples failed (last: " + last_error.message() + ")";
  }
  if (previous->state != virt::DomainState::kRunning) {
    text += "; the domain is " + std::string(StateWord(previous->state)) + " on " + target_host;
  }
  result.explanation = std::move(text);
  return result;
}

}  // namespace vs::switchover
