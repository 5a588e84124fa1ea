// perfbuf::FlightRecorder: keeps the newest records of each CPU of a
// BPF_MAP_TYPE_PERF_EVENT_ARRAY, and hands them out on demand.
//
//   perfbuf::FlightRecorder recorder(bpf_map__fd(skel->maps.events),
//                                    {.bytes_per_cpu = 64 * 1024});
//   ...                                   // the program writes; nobody reads
//   perfbuf::Snapshot snap = recorder.snapshot();   // when something happens
//   for (const perfbuf::FlightRecord& r : snap.records) use(r.cpu, r.time_ns, r.data);
//
// Each CPU gets a perf event written backward (write_backward) whose ring is
// mapped read-only, which makes it overwritable: the kernel keeps writing,
// overwriting the oldest records, and costs the producer no wakeups and the
// reader no CPU until snapshot(). The events are stored in the map at key =
// CPU id, like Reader does (the newest reader or recorder of a slot gets its
// records). snapshot() pauses one CPU's output (PERF_EVENT_IOC_PAUSE_OUTPUT)
// only while it copies that CPU's ring, then parses the copy
// (backward_ring.h). What the program sends to a paused ring is counted by
// the kernel and reported in Snapshot::lost of a later snapshot (the kernel
// writes its loss record with the ring's next output).
//
// Used from one thread at a time. Construction and snapshot() throw perfbuf::Error.
#pragma once

#include <perfbuf/error.h>
#include <perfbuf/payload.h>

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

struct bpf_map;

namespace perfbuf {

struct FlightOptions {
  // Ring bytes per CPU: a power of two of pages. 0: 64 KiB (at least a page).
  // The ring keeps the newest records that fit: with 24-byte records, a
  // record takes 40 bytes (48 with timestamps).
  std::size_t bytes_per_cpu = 0;
  // CPU ids to record; empty: every online CPU.
  std::vector<int> cpus;
  // PERF_SAMPLE_TIME: each record's kernel time, and the snapshot merged in
  // time order across CPUs. Off: the records are grouped by CPU.
  bool timestamps = true;
  // The clock of those timestamps (as Options::clock in reader.h:
  // CLOCK_MONOTONIC by default, the clock of bpf_ktime_get_ns()).
  clockid_t clock = CLOCK_MONOTONIC;
};

// One record, copied out of its ring.
struct FlightRecord {
  int cpu = -1;
  std::uint64_t time_ns = 0;  // FlightOptions::timestamps; else 0
  // The bytes the program sent, plus up to 7 bytes of kernel padding.
  std::vector<std::byte> data;

  // Copies the start of the payload into out; false if the payload is shorter.
  template <class T>
  bool read(T& out) const noexcept {
    return read_payload(data, out);
  }
};

// What one CPU's ring held.
struct FlightCpu {
  int cpu = -1;
  std::uint64_t records = 0;
  // Records the kernel dropped: outputs while the ring was paused for a copy.
  std::uint64_t lost = 0;
  // The oldest record had been partly overwritten by newer ones: dropped.
  bool dropped_partial = false;
  // The ring has not been filled since it was opened: nothing was overwritten.
  bool complete = false;
  // The ring held what no kernel writes (the walk stopped there), or nullptr.
  const char* corrupt = nullptr;
};

struct Snapshot {
  // Every CPU's records, oldest first and newest last per CPU. With
  // timestamps, merged across CPUs by time (a CPU's own order is kept);
  // without, one CPU after another.
  std::vector<FlightRecord> records;
  std::vector<FlightCpu> cpus;
  std::uint64_t lost = 0;  // sum of the CPUs'
};

class FlightRecorder {
 public:
  // map_fd: a BPF_MAP_TYPE_PERF_EVENT_ARRAY with a slot for every CPU id
  // recorded. The recorder keeps its own duplicate of the fd.
  explicit FlightRecorder(int map_fd, FlightOptions options = {});
  explicit FlightRecorder(const bpf_map* map, FlightOptions options = {});
  // A moved-from FlightRecorder may only be destroyed or assigned to.
  FlightRecorder(FlightRecorder&&) noexcept;
  FlightRecorder& operator=(FlightRecorder&&) noexcept;
  // Removes its events from the map (unless another reader took the slots
  // over), unmaps and closes everything.
  ~FlightRecorder();

  // Copies the newest records of every CPU: each CPU's output is paused while
  // its ring is copied (a memcpy of bytes_per_cpu), then resumed.
  Snapshot snapshot();

  std::size_t ring_bytes() const noexcept;  // per CPU
  std::vector<int> cpus() const;
  const FlightOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perfbuf
