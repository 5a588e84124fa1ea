// open_trace [PID]: prints "pid comm path" for every openat(2) of process PID
// (default: every process) until Ctrl-C.
//
// The main thread waits in poll() without a timeout; Ctrl-C is taken by a
// second thread, which stops the loop with Reader::wake().
#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <linux/types.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "open_trace.h"
#include "open_trace_bpf.skel.h"

namespace {

struct SkeletonDeleter {
  void operator()(open_trace_bpf* skel) const { open_trace_bpf__destroy(skel); }
};

int fail(const std::string& what, int err) {
  std::fprintf(stderr, "open_trace: %s: %s\n", what.c_str(), std::strerror(err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long pid = 0;
  if (argc > 2 || (argc == 2 && (pid = std::strtoul(argv[1], nullptr, 10)) == 0)) {
    std::fprintf(stderr, "usage: %s [PID]\n", argv[0]);
    return 2;
  }

  // SIGINT/SIGTERM go only to the stopper thread: block them before any thread
  // starts. (A shell starts background jobs with SIGINT ignored, and an ignored
  // signal never reaches sigwait(): restore the default first.)
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one event per line, also into a pipe
  std::unique_ptr<open_trace_bpf, SkeletonDeleter> skel(open_trace_bpf__open());
  if (!skel) return fail("open BPF skeleton", errno);
  skel->rodata->target_pid = static_cast<__u32>(pid);
  skel->rodata->openat_nr = SYS_openat;
  if (int err = open_trace_bpf__load(skel.get())) return fail("load BPF program (run as root)", -err);
  if (int err = open_trace_bpf__attach(skel.get())) return fail("attach BPF program", -err);

  std::uint64_t events = 0, lost = 0;
  try {
    perfbuf::Reader reader(skel->maps.events, [&](const perfbuf::Sample& s) {
      open_event e;
      if (!s.read(e)) return;
      e.comm[sizeof e.comm - 1] = '\0';
      e.path[sizeof e.path - 1] = '\0';
      std::printf("%u %s %s\n", e.pid, e.comm, e.path);
      ++events;
    }, [&](int, std::uint64_t n) { lost += n; });
    // The program counts its outputs (<perfbuf/bpf.h>): a full ring buffer is
    // reported as lost events, and the program wakes the reader in batches.
    reader.count_outputs(skel->maps.events_counts);

    std::atomic<bool> stop{false};
    std::thread stopper([&] {
      int sig;
      sigwait(&stop_signals, &sig);
      stop = true;
      reader.wake();
    });
    std::printf("tracing openat(2)%s; Ctrl-C to stop\n",
                pid ? (" of pid " + std::to_string(pid)).c_str() : "");

    int status = 0;
    while (!stop) {
      auto n = reader.poll(std::chrono::milliseconds(-1));  // no timeout: wake() ends it
      if (!n && !n.interrupted()) {
        std::fprintf(stderr, "open_trace: %s\n", n.error().what());
        status = 1;
        pthread_kill(stopper.native_handle(), SIGTERM);  // let the stopper finish
        break;
      }
    }
    stopper.join();
    if (auto rest = reader.consume(); !rest) {
      std::fprintf(stderr, "open_trace: %s\n", rest.error().what());
      status = 1;
    }
    std::printf("%llu events\n", static_cast<unsigned long long>(events));
    if (lost) std::printf("%llu lost\n", static_cast<unsigned long long>(lost));
    return status;
  } catch (const perfbuf::Error& e) {
    std::fprintf(stderr, "open_trace: %s\n", e.what());
    return 1;
  }
}
