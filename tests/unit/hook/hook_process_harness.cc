#include "tests/unit/hook/hook_process_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace vs::hook::testing {
namespace {

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno) + " (errno " + std::to_string(errno) + ")");
}

void CloseIfOpen(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                   std::string_view stdin_text, Clock& clock) {
  // A hook that exits before reading all of stdin must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return Errno("pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::vector<char*> argv_c, env_c;
  for (const std::string& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
  for (const std::string& e : env) env_c.push_back(const_cast<char*>(e.c_str()));
  argv_c.push_back(nullptr);
  env_c.push_back(nullptr);

  const MonoTime start = clock.Now();
  pid_t pid = -1;
  const int spawn_error = ::posix_spawn(&pid, argv_c[0], &actions, nullptr, argv_c.data(), env_c.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (spawn_error != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return Internal("posix_spawn " + argv[0] + ": " + std::strerror(spawn_error));
  }

  ProcessResult result;
  int stdin_fd = in[1], stdout_fd = out[0], stderr_fd = err[0];
  ::fcntl(stdin_fd, F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  if (stdin_text.empty()) CloseIfOpen(stdin_fd);
  while (stdout_fd >= 0 || stderr_fd >= 0) {
    pollfd fds[3] = {{stdout_fd, POLLIN, 0}, {stderr_fd, POLLIN, 0}, {stdin_fd, POLLOUT, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return Errno("poll");
    }
    char buffer[4096];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        (i == 0 ? result.stdout_text : result.stderr_text).append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        CloseIfOpen(i == 0 ? stdout_fd : stderr_fd);
      }
    }
    if (stdin_fd >= 0 && fds[2].revents != 0) {
      ssize_t n = ::write(stdin_fd, stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_text.size()) CloseIfOpen(stdin_fd);
    }
  }
  CloseIfOpen(stdin_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Errno("waitpid");
  }
  result.elapsed = clock.Now() - start;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

StatusOr<ProcessResult> RunMeasuringPeakRss(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                            std::string_view stdin_text, Clock& clock, const std::string& rss_file) {
  std::vector<std::string> probed = {VS_PEAK_RSS_BINARY, rss_file};
  probed.insert(probed.end(), argv.begin(), argv.end());
  VS_ASSIGN_OR_RETURN(ProcessResult result, RunProcess(probed, env, stdin_text, clock));
  std::ifstream in(rss_file);
  if (!(in >> result.max_rss_kib)) return Internal("peak_rss wrote no number to " + rss_file);
  return result;
}

std::vector<std::string> HookEnvironment(const std::string& socket_path, const std::string& spool_dir,
                                         int answer_within_ms) {
  std::vector<std::string> env = {"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME=/root", "VS_HOOK_SOCKET=" + socket_path, "VS_SPOOL_DIR=" + spool_dir};
  if (answer_within_ms > 0) env.push_back("VS_SHADOWD_ANSWER_WITHIN_MS=" + std::to_string(answer_within_ms));
  return env;
}

StatusOr<std::unique_ptr<HungListener>> HungListener::Start(const std::string& socket_path) {
  sockaddr_un address{};
  if (socket_path.size() >= sizeof(address.sun_path)) return InvalidArgument("socket path too long: " + socket_path);
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  ::unlink(socket_path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd, 64) != 0) {
    Status status = Errno("bind/listen " + socket_path);
    ::close(fd);
    return status;
  }
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) {
    Status status = Errno("pipe2");
    ::close(fd);
    return status;
  }
  return std::unique_ptr<HungListener>(new HungListener(fd, stop[0], stop[1]));
}

HungListener::HungListener(int listen_fd, int stop_read_fd, int stop_write_fd)
    : listen_fd_(listen_fd), stop_read_fd_(stop_read_fd), stop_write_fd_(stop_write_fd) {
  thread_ = std::thread([this] { AcceptUntilStopped(); });
}

void HungListener::AcceptUntilStopped() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_read_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) {
      const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      std::lock_guard<std::mutex> lock(mu_);
      if (connection >= 0) connections_.push_back(connection);
    }
  }
}

int HungListener::accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(connections_.size());
}

HungListener::~HungListener() {
  const char stop = 's';
  if (::write(stop_write_fd_, &stop, 1) != 1) std::abort();  // the thread would never end
  thread_.join();
  for (int connection : connections_) ::close(connection);
  ::close(listen_fd_);
  ::close(stop_read_fd_);
  ::close(stop_write_fd_);
}

FakeShadowd::FakeShadowd() { verdict_.set_allow(true); }

StatusOr<std::unique_ptr<FakeShadowd>> FakeShadowd::Start(const std::string& socket_path) {
  std::unique_ptr<FakeShadowd> shadowd(new FakeShadowd());
  FakeShadowd* self = shadowd.get();
  VS_ASSIGN_OR_RETURN(shadowd->listener_,
                      hook_intake::HookListener::Start(
                          socket_path,
                          [self](const virtshadow::v1::HookEvent& event) {
                            std::lock_guard<std::mutex> lock(self->mu_);
                            self->events_.push_back(event);
                            return self->verdict_;
                          },
                          *shadowd->clock_,
                          [self](const std::string& line) {
                            std::lock_guard<std::mutex> lock(self->mu_);
                            self->log_.push_back(line);
                          },
                          {}));
  return shadowd;
}

FakeShadowd::~FakeShadowd() = default;

void FakeShadowd::SetVerdict(const virtshadow::v1::HookVerdict& verdict) {
  std::lock_guard<std::mutex> lock(mu_);
  verdict_ = verdict;
}

std::vector<virtshadow::v1::HookEvent> FakeShadowd::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::vector<std::string> FakeShadowd::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

Duration Median(std::vector<Duration> samples) {
  if (samples.empty()) return Duration::zero();
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

double Milliseconds(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace vs::hook::testing
