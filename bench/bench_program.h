// The benchmark's BPF producer, loaded and attached, and the threads that drive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bench_record.h"

struct bpf_map;
struct bench_producer;
struct bpf_link;

namespace perfbuf::bench {

struct ProgramConfig {
  std::uint32_t record_size = 16;  // bytes per record, 16 .. BENCH_MAX_RECORD
  std::uint32_t batch = 1;         // records per system call, 1 .. BENCH_MAX_BATCH
  bool ringbuf = false;            // emit into the BPF ring buffer instead of the perf rings
  std::size_t ringbuf_bytes = 0;   // ring buffer size (a power of two of pages)
};

// Loads bench_producer.bpf.c for this process and attaches it to raw sys_enter.
class BenchProgram {
 public:
  explicit BenchProgram(const ProgramConfig& config);  // throws perfbuf::Error
  ~BenchProgram();
  BenchProgram(const BenchProgram&) = delete;
  BenchProgram& operator=(const BenchProgram&) = delete;

  const bpf_map* perf_map() const;
  int ringbuf_fd() const;
  // The counts map of the map in use (<perfbuf/bpf.h>), for Reader::count_outputs.
  int counts_fd() const;
  bench_counters counters() const;  // summed over CPUs

 private:
  bool ringbuf_;
  bench_producer* skel_ = nullptr;
  bpf_link* link_ = nullptr;
};

// Makes the system call the program is attached to: one trigger.
void trigger();

// `count` threads calling trigger(), pinned to CPUs 0, 1, ... (mod the CPU
// count), from construction until stop(). Unpaced (no rate) they call it in a
// loop; paced, each keeps to a schedule of `triggers_per_s` calls a second:
// it sleeps until shortly before a call is due, then spins to the due time.
// A thread that falls more than kMaxLag behind its schedule (descheduled)
// drops the backlog instead of catching up in a burst. 0: no calls at all.
class Producers {
 public:
  static constexpr std::chrono::microseconds kMaxLag{1000};

  Producers(int count, std::optional<double> triggers_per_s);
  ~Producers();
  void stop();
  // After stop(): the threads' CPU time in trigger(). Unpaced, all their CPU
  // time (getrusage RUSAGE_THREAD); paced, the thread CPU clock read around
  // each call, as sleeping and spinning to the schedule are waiting.
  double cpu_seconds() const { return cpu_seconds_; }

 private:
  void run(int cpu, std::optional<double> triggers_per_s);

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  double cpu_seconds_ = 0;
};

// Pins the calling thread to one CPU (ignored if that fails).
void pin_to_cpu(int cpu);

}  // namespace perfbuf::bench
