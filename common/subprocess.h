// RunProcess: runs a helper program (qemu-img, qemu-nbd --fork, ...) to completion and captures what it
// printed, with a deadline, so that a hung tool can never hang its caller.
//
// The program is started with posix_spawnp (found on PATH, never through a shell, so arguments need no
// quoting), with stdin from /dev/null, stdout and stderr merged into one pipe, default signal dispositions
// and an empty signal mask. Only the last kMaxCapturedOutput bytes of output are kept: the end of a
// tool's output is where its error is. The call returns when the program exits, even if a process it
// started in the background still holds the output pipe (whatever such a process prints later is lost).
//
// Ownership: nothing outlives a call; the child is always reaped (no zombies), also on timeout and on
// every error path. The Clock must outlive the call.
// Thread-safety: no shared state; calls from several threads at once are safe (every descriptor is
// close-on-exec, so a child started by one thread never inherits another call's pipe). The process must
// not set SIGCHLD to SIG_IGN (children would then be reaped behind our back).
// Failure modes: InvalidArgument for an empty argv; NotFound when the program is not on PATH;
// DeadlineExceeded (the child is killed with SIGKILL first) naming the command; Internal for a failed
// system call, naming it and errno. A non-zero exit is not an error of RunProcess (see RunChecked).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs {

inline constexpr std::size_t kMaxCapturedOutput = 64 * 1024;

struct ProcessResult {
  // The exit status; 128 + N when the program was killed by signal N (as a shell reports it).
  int exit_code = 0;
  // stdout and stderr interleaved as written; at most kMaxCapturedOutput bytes, the tail when longer.
  std::string output;
};

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, Duration timeout, Clock& clock);

// RunProcess, and a non-zero exit becomes an Internal error whose message holds the command line and its
// output (trimmed of surrounding whitespace).
Status RunChecked(const std::vector<std::string>& argv, Duration timeout, Clock& clock);

}  // namespace vs
