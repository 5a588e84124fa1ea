// The benchmark's BPF producer, loaded and attached, and the threads that drive it.
#pragma once

#include <atomic>
#include <cstdint>
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

// `count` threads calling trigger() in a loop, pinned to CPUs 0, 1, ... (mod
// the CPU count), from construction until stop().
class Producers {
 public:
  explicit Producers(int count);
  ~Producers();
  void stop();

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Pins the calling thread to one CPU (ignored if that fails).
void pin_to_cpu(int cpu);

}  // namespace perfbuf::bench
