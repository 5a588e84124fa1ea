#include "bench_program.h"

#include <perfbuf/error.h>
#include <perfbuf/reader.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "bench_producer.skel.h"
#include "bpf_load.h"

namespace perfbuf::bench {

namespace {
// A cheap system call that nothing else in this process makes in a loop.
constexpr long kTriggerSyscall = SYS_getpgid;
}  // namespace

void trigger() { ::syscall(kTriggerSyscall, 0); }

BenchProgram::BenchProgram(const ProgramConfig& config) : ringbuf_(config.ringbuf) {
  skel_ = bench_producer__open();
  if (!skel_) throw Error(errno, "open BPF object bench_producer: " + std::string(std::strerror(errno)));
  skel_->rodata->producer_tgid = static_cast<__u32>(getpid());
  skel_->rodata->trigger_syscall_nr = kTriggerSyscall;
  skel_->rodata->record_size = config.record_size;
  skel_->rodata->batch = config.batch;
  skel_->rodata->use_ringbuf = config.ringbuf;
  if (config.ringbuf_bytes)
    bpf_map__set_max_entries(skel_->maps.ringbuf, static_cast<__u32>(config.ringbuf_bytes));
  try {
    tools::load_bpf_object("bench_producer", [this] { return bench_producer__load(skel_); });
  } catch (...) {
    bench_producer__destroy(skel_);
    throw;
  }
  link_ = bpf_program__attach_raw_tracepoint(skel_->progs.produce, "sys_enter");
  if (!link_) {
    const int err = errno;
    bench_producer__destroy(skel_);
    throw Error(err, std::string("attach bench_producer to raw_tracepoint sys_enter: ") +
                         std::strerror(err));
  }
}

BenchProgram::~BenchProgram() {
  bpf_link__destroy(link_);
  bench_producer__destroy(skel_);
}

const bpf_map* BenchProgram::perf_map() const { return skel_->maps.events; }
int BenchProgram::ringbuf_fd() const { return bpf_map__fd(skel_->maps.ringbuf); }

int BenchProgram::counts_fd() const {
  return bpf_map__fd(ringbuf_ ? skel_->maps.ringbuf_counts : skel_->maps.events_counts);
}

bench_counters BenchProgram::counters() const {
  const perfbuf_counts sum = sum_output_counts(counts_fd());
  return {sum.attempts, sum.failures};
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

Producers::Producers(int count, std::optional<double> triggers_per_s) {
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 0; i < count; ++i)
    threads_.emplace_back(&Producers::run, this, i % (ncpu > 0 ? ncpu : 1), triggers_per_s);
}

namespace {
double thread_rusage_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}
std::int64_t thread_cpu_ns() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}
}  // namespace

void Producers::run(int cpu, std::optional<double> triggers_per_s) {
  pin_to_cpu(cpu);
  double cpu_s = 0;
  if (!triggers_per_s) {
    const double cpu0 = thread_rusage_seconds();
    while (!stop_.load(std::memory_order_relaxed)) trigger();
    cpu_s = thread_rusage_seconds() - cpu0;
  } else if (*triggers_per_s > 0) {
    using clock = std::chrono::steady_clock;
    // Sleep until this long before a call is due, then spin: 9 in 10 sleeps
    // ended less than 12 us late here (with the timer slack, 50 us by default,
    // set to 1 ns). Spinning longer would make the producer a CPU hog that the
    // scheduler holds back when the core is shared.
    constexpr auto kSpinBefore = std::chrono::microseconds(20);
    constexpr auto kLongestSleep = std::chrono::milliseconds(50);  // to see stop_ in time
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    std::int64_t cpu_ns = 0;
    const auto interval = std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(1.0 / *triggers_per_s));
    clock::time_point due = clock::now();
    while (!stop_.load(std::memory_order_relaxed)) {
      clock::time_point now = clock::now();
      if (now + kSpinBefore < due) {
        const clock::time_point wake = std::min(due - kSpinBefore, now + kLongestSleep);
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            wake.time_since_epoch()).count();
        const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);  // steady_clock's clock
        continue;
      }
      if (now < due) {
        while (now < due) now = clock::now();
      } else if (now - due > kMaxLag) {
        due = now;  // too far behind: start the schedule again from here
      }
      // Only the call is the producer's work; sleeping and spinning are waiting.
      const std::int64_t before = thread_cpu_ns();
      trigger();
      cpu_ns += thread_cpu_ns() - before;
      due += interval;
    }
    cpu_s = cpu_ns * 1e-9;
  } else {
    while (!stop_.load(std::memory_order_relaxed))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_seconds_ += cpu_s;
}

void Producers::stop() {
  stop_ = true;
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

Producers::~Producers() { stop(); }

}  // namespace perfbuf::bench
