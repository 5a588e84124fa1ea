// The counts a BPF program keeps with <perfbuf/bpf.h> for one output map: read
// for the failures the kernel does not report, and the control a ring
// buffer's program reads to decide when to wake the reader.
#pragma once

#include <perfbuf/bpf_counts.h>

#include <cstdint>
#include <vector>

#include "sys.h"

namespace perfbuf::detail {

class OutputCounts {
 public:
  // Checks that `fd` is a counts map (PERFBUF_COUNTS_MAP); throws Error if not.
  explicit OutputCounts(sys::Fd fd);
  // Gives the program back its defaults (not paused, the kernel's wakeup
  // rule): a reader that goes away while paused must not leave the program
  // failing every output for the next reader.
  ~OutputCounts();
  OutputCounts(OutputCounts&&) = default;

  // What a CPU's counts grew by since the last read.
  struct Growth {
    int cpu;
    std::uint64_t attempts;
    std::uint64_t failed;          // failures the kernel did not count itself
    std::uint64_t kernel_counted;  // the others: perf outputs into a full ring
  };
  // Reads every CPU's counts; the CPUs whose counts grew, valid until the
  // next read(). (The reader reads every max_delay: its buffers are kept,
  // so that a read allocates nothing once they have grown.)
  const std::vector<Growth>& read();

  // Ring buffers: the program wakes the reader once `bytes` wait (0: the kernel's rule).
  void set_wakeup_bytes(std::uint64_t bytes);
  // Ring buffers: while paused, the program's outputs fail (counted).
  void set_paused(bool paused);

 private:
  void write_control();

  sys::Fd fd_;
  perfbuf_counts control_{};  // what the program reads at PERFBUF_KEY_CONTROL
  std::vector<perfbuf_counts> last_;  // by CPU
  std::vector<std::byte> values_;     // the map's values, as last read
  std::vector<Growth> grown_;         // what read() returns
};

}  // namespace perfbuf::detail
