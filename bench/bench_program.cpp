#include "bench_program.h"

#include <perfbuf/error.h>
#include <perfbuf/reader.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

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

Producers::Producers(int count) {
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 0; i < count; ++i)
    threads_.emplace_back([this, cpu = i % (ncpu > 0 ? ncpu : 1)] {
      pin_to_cpu(cpu);
      while (!stop_.load(std::memory_order_relaxed)) trigger();
    });
}

void Producers::stop() {
  stop_ = true;
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

Producers::~Producers() { stop(); }

}  // namespace perfbuf::bench
