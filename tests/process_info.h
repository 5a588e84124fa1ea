// What a test can learn about processes: open fds, perf mappings, memory, exit codes.
#pragma once

#include <dirent.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

namespace perfbuf::testing {

inline int count_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// Mappings of perf event rings in this process.
inline int count_perf_mappings() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find("perf_event") != std::string::npos;
  return n;
}

inline long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Waits for pid; its exit code, or 128 + the signal that ended it.
inline int wait_exit_code(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace perfbuf::testing
