// Helpers for tests that use the real kernel: loading BPF needs root (or
// CAP_BPF + CAP_PERFMON). Outside CI such a test skips and says why; in CI
// (CI=true) it fails, because there it must run.
#pragma once

#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

#include "process_info.h"
#include "write_tracer.h"

namespace perfbuf::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "false" && std::string(ci) != "0";
}

// Empty when BPF programs can be loaded here, else the reason.
inline const std::string& bpf_unavailable_reason() {
  static const std::string reason = [] {
    try {
      tools::WriteTracer probe({});
      return std::string();
    } catch (const std::exception& e) {
      return std::string("cannot load BPF programs (run as root): ") + e.what();
    }
  }();
  return reason;
}

#define REQUIRE_BPF()                                                              \
  do {                                                                             \
    const std::string& why_ = ::perfbuf::testing::bpf_unavailable_reason();        \
    if (!why_.empty()) {                                                           \
      if (::perfbuf::testing::in_ci()) FAIL() << "in CI this test must run: " << why_; \
      GTEST_SKIP() << why_;                                                        \
    }                                                                              \
  } while (0)

// Whether this kernel can attach kprobes (CONFIG_KPROBE_EVENTS gives a kprobe PMU).
inline bool kernel_has_kprobes() {
  return access("/sys/bus/event_source/devices/kprobe", F_OK) == 0;
}

// The write tracer sending through a ring buffer of `bytes`.
inline tools::WriteTracer::Filter ringbuf_filter(std::uint32_t bytes = 256 * 1024,
                                                 std::uint32_t only_tgid = 0) {
  return {.only_tgid = only_tgid, .ignore_tgid = 0, .transport = tools::Transport::ringbuf,
          .ringbuf_bytes = bytes};
}

// The highest online CPU id, if it is not 0.
inline std::optional<int> cpu_other_than_zero() {
  const std::vector<int> cpus = online_cpus();
  if (cpus.back() == 0) return std::nullopt;
  return cpus.back();
}

// Declares `var`, an online CPU other than 0; a test without one fails in CI, else skips.
#define REQUIRE_SECOND_CPU(var)                                                      \
  const std::optional<int> var = ::perfbuf::testing::cpu_other_than_zero();          \
  if (!var) {                                                                        \
    if (::perfbuf::testing::in_ci()) FAIL() << "in CI this test needs a second CPU"; \
    GTEST_SKIP() << "needs an online CPU other than 0 (this machine has one CPU)";   \
  }

// Runs the write tracer's raw_tracepoint program once on `cpu`, as if that CPU
// entered write(2): one record lands in that CPU's ring. No syscall trigger,
// no other process involved.
inline int fire_on_cpu(int prog_fd, int cpu) {
  __u64 args[2] = {0, SYS_write};  // args[1]: the syscall number
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.ctx_in = args;
  opts.ctx_size_in = sizeof args;
  opts.flags = BPF_F_TEST_RUN_ON_CPU;
  opts.cpu = static_cast<__u32>(cpu);
  return bpf_prog_test_run_opts(prog_fd, &opts);
}

// Calls reader.poll() `polls` times; records are waiting, so each call must
// return `per_poll` of them within a second, none waiting for a flush.
inline void expect_prompt_polls(Reader& reader, int polls, std::size_t per_poll) {
  for (int i = 1; i <= polls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = reader.poll(std::chrono::milliseconds(3000));
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, per_poll) << "poll " << i;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000))
        << "poll " << i;
  }
}

// Keeps the calling thread on `cpu`; false if the kernel refused.
inline bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A child process that makes exactly `writes` write(2) calls once released,
// then, if `then_writes` is not 0, `then_writes` more once released again, and
// exits. Its pid is known before it writes, so a tracer can filter on it.
// pin_cpu >= 0 keeps it on that CPU, so all its records go to one ring (it
// pins itself when released: a CPU that goes offline meanwhile unpins it).
class WritingChild {
 public:
  explicit WritingChild(int writes, int then_writes = 0, int pin_cpu = -1)
      : phases_(then_writes ? 2 : 1) {
    int go[2];
    if (pipe(go) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      close(go[1]);
      for (int count : {writes, then_writes}) {
        if (count == 0) break;
        char c;
        if (read(go[0], &c, 1) != 1) _exit(1);
        if (pin_cpu >= 0 && !pin_to_cpu(pin_cpu)) _exit(2);
        for (int i = 0; i < count; ++i)
          if (write(STDOUT_FILENO, "", 0) != 0) _exit(1);
      }
      _exit(0);
    }
    close(go[0]);
    go_ = go[1];
  }
  ~WritingChild() {
    if (go_ >= 0) close(go_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

  // Lets the child make its next batch of writes.
  void release() {
    if (phases_ == 0) return;
    if (::write(go_, "x", 1) != 1) throw std::runtime_error("release child");
    if (--phases_ == 0) {
      close(go_);
      go_ = -1;
    }
  }

  // Lets the child make all its writes and waits for it; its exit code (0: every write worked).
  int release_and_wait() {
    while (phases_ > 0) release();
    const int code = wait_exit_code(pid_);
    pid_ = -1;
    return code;
  }

 private:
  int phases_;
  pid_t pid_ = -1;
  int go_ = -1;
};

}  // namespace perfbuf::testing
