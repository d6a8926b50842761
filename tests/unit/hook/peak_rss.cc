// peak_rss OUT_FILE PROGRAM [ARGS...]: runs PROGRAM with this process's stdin, stdout, stderr and
// environment, writes its peak resident set in KiB (getrusage's ru_maxrss) to OUT_FILE and exits with
// its exit code (128 + signal if it was killed). Test-only.
//
// Why a process of its own: the test harness starts processes with posix_spawn, which shares the test's
// memory until exec, and Linux counts that memory's peak into the new process's ru_maxrss, so a hook
// spawned by a test holding 50 MB of input reported over 100 MB. This process starts small, and its
// fork's peak before exec is its own few hundred KiB.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_FILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("peak_rss: fork");
    return 2;
  }
  if (pid == 0) {
    ::execv(argv[2], argv + 2);
    std::perror("peak_rss: execv");
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("peak_rss: wait4");
      return 2;
    }
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr || std::fprintf(out, "%ld\n", usage.ru_maxrss) < 0 || std::fclose(out) != 0) {
    std::perror("peak_rss: writing the result");
    return 2;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
