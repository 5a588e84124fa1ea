// perfbuf: command-line front end. Each subcommand lives in its own file.
#include <cstdio>
#include <cstring>

#include "bench_command.h"
#include "trace_command.h"

namespace {
constexpr const char* kUsage =
    "usage: perfbuf <command> [options]\n"
    "\n"
    "commands:\n"
    "  trace   count write(2) calls through a perf buffer, print events/s\n"
    "  bench   compare perf ring readers (perfbuf, libbpf) on this machine\n"
    "\n"
    "'perfbuf <command> --help' describes each command.\n";
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const char* cmd = argv[1];
  if (!std::strcmp(cmd, "trace")) return perfbuf::tools::trace_main(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "bench")) return perfbuf::bench::bench_main(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "-h") || !std::strcmp(cmd, "--help") || !std::strcmp(cmd, "help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "perfbuf: unknown command '%s'\n\n%s", cmd, kUsage);
  return 2;
}
