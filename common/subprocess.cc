#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

extern char** environ;

namespace vs {
namespace {

std::string ErrnoText(int err) {
  const char* description = strerrordesc_np(err);  // thread-safe, unlike strerror
  return description != nullptr ? description : "errno " + std::to_string(err);
}

// The command line as it would be typed into a shell, so that a message can be pasted to reproduce.
std::string FormatCommand(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& arg : argv) {
    if (!line.empty()) line += ' ';
    const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](unsigned char c) {
      return std::isalnum(c) || std::strchr("_./:=,@%+-", c) != nullptr;
    });
    if (plain) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

std::string_view TrimWhitespace(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// posix_spawn's attribute objects, destroyed when the scope ends.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attributes_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attributes_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout and stderr into `output_fd`; the caller's signal mask and ignored
  // signals (a daemon may block or ignore some) are not passed on to the tool.
  int Prepare(int output_fd) {
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    if (int rc = posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) return rc;
    if (int rc = posix_spawn_file_actions_adddup2(&actions_, output_fd, STDOUT_FILENO)) return rc;
    if (int rc = posix_spawn_file_actions_adddup2(&actions_, output_fd, STDERR_FILENO)) return rc;
    if (int rc = posix_spawnattr_setsigmask(&attributes_, &none)) return rc;
    if (int rc = posix_spawnattr_setsigdefault(&attributes_, &all)) return rc;
    return posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attributes() const { return &attributes_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attributes_;
};

void AppendKeepingTail(std::string& output, std::string_view chunk) {
  output.append(chunk);
  // Trim in batches, not on every read, so that a chatty tool costs linear time.
  if (output.size() > 2 * kMaxCapturedOutput) output.erase(0, output.size() - kMaxCapturedOutput);
}

// Reads what the non-blocking pipe holds now. Returns false once the pipe is at end of file (or broken).
bool DrainPipe(int fd, std::string& output) {
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      AppendKeepingTail(output, std::string_view(buffer, static_cast<size_t>(n)));
    } else if (n == 0) {
      return false;
    } else if (errno == EAGAIN) {
      return true;
    } else if (errno != EINTR) {
      return false;
    }
  }
}

int WaitForExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  WaitForExit(pid);
}

int PollTimeoutMs(Duration remaining) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

}  // namespace

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, Duration timeout, Clock& clock) {
  if (argv.empty() || argv[0].empty()) return InvalidArgument("RunProcess needs a program name, got an empty command");
  const MonoTime deadline = clock.Now() + timeout;
  const std::string command = FormatCommand(argv);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Internal("pipe2 for " + command + ": " + ErrnoText(errno));
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  // Only our end is non-blocking: the child must see an ordinary blocking stdout.
  if (fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    return Internal("fcntl O_NONBLOCK for " + command + ": " + ErrnoText(errno));
  }

  SpawnSetup setup;
  if (int rc = setup.Prepare(write_end.get())) {
    return Internal("posix_spawn setup for " + command + ": " + ErrnoText(rc));
  }
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  pid_t pid = -1;
  if (int rc = posix_spawnp(&pid, c_argv[0], setup.actions(), setup.attributes(), c_argv.data(), environ)) {
    if (rc == ENOENT) return NotFound("cannot run " + command + ": no program '" + argv[0] + "' on PATH");
    return Internal("cannot run " + command + ": " + ErrnoText(rc));
  }
  write_end.Reset();  // so that only the child (and what it starts) holds the write end

  // A pidfd tells when the child itself exits, independent of who else still holds the pipe.
  UniqueFd exit_fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (exit_fd.get() < 0) {
    const int err = errno;
    KillAndReap(pid);
    return Internal("pidfd_open for " + command + ": " + ErrnoText(err));
  }

  ProcessResult result;
  bool pipe_open = true;
  for (;;) {
    const Duration remaining = deadline - clock.Now();
    if (remaining <= Duration::zero()) {
      KillAndReap(pid);
      return DeadlineExceeded(command + " did not finish within " +
                              std::to_string(std::chrono::ceil<std::chrono::milliseconds>(timeout).count()) +
                              " ms and was killed");
    }
    pollfd fds[2] = {{.fd = exit_fd.get(), .events = POLLIN}, {.fd = read_end.get(), .events = POLLIN}};
    const int ready = poll(fds, pipe_open ? 2 : 1, PollTimeoutMs(remaining));
    if (ready < 0 && errno != EINTR) {
      const int err = errno;
      KillAndReap(pid);
      return Internal("poll while running " + command + ": " + ErrnoText(err));
    }
    if (ready <= 0) continue;  // interrupted or timed out: the clock decides
    if (pipe_open && fds[1].revents != 0) pipe_open = DrainPipe(read_end.get(), result.output);
    if (fds[0].revents != 0) break;
  }
  // The child has exited; everything it wrote before that is already in the pipe.
  if (pipe_open) DrainPipe(read_end.get(), result.output);
  result.exit_code = WaitForExit(pid);
  if (result.output.size() > kMaxCapturedOutput) {
    result.output.erase(0, result.output.size() - kMaxCapturedOutput);
  }
  return result;
}

Status RunChecked(const std::vector<std::string>& argv, Duration timeout, Clock& clock) {
  VS_ASSIGN_OR_RETURN(ProcessResult result, RunProcess(argv, timeout, clock));
  if (result.exit_code == 0) return Status::Ok();
  const std::string_view output = TrimWhitespace(result.output);
  return Internal(FormatCommand(argv) + " exited with status " + std::to_string(result.exit_code) +
                  (output.empty() ? std::string(" and printed nothing") : ": " + std::string(output)));
}

}  // namespace vs
