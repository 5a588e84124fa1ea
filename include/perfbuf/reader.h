// perfbuf::Reader: reads the per-CPU perf rings behind a BPF_MAP_TYPE_PERF_EVENT_ARRAY
// and BPF ring buffers (BPF_MAP_TYPE_RINGBUF), one map or several, in one poll.
//
//   perfbuf::Reader reader(bpf_map__fd(skel->maps.events),
//                          [&](const perfbuf::Sample& s) { /* s.cpu, s.data */ },
//                          [&](int cpu, std::uint64_t lost) { /* dropped records */ });
//   while (running) {
//     auto n = reader.poll(std::chrono::milliseconds(100));
//     if (!n) { if (n.interrupted()) break; throw n.error(); }
//   }
//
// For a perf event array the reader opens a PERF_COUNT_SW_BPF_OUTPUT event per
// CPU, maps its ring and stores the event at key = CPU id in the map; a ring
// buffer is mapped as it is. All rings are waited on with one epoll instance.
// Records are handed out in place (a perf record that wraps the end of its
// ring is copied into one reused scratch buffer; a ring buffer's data area is
// mapped twice, so its records never need a copy).
//
// A Reader is used from one thread at a time, except wake(), which any thread
// may call. Handlers may call wake(), nothing else of their reader (no poll,
// consume or add from inside a handler). Construction throws perfbuf::Error;
// poll and consume return Result so loops need no try/catch.
//
// A ring buffer has one consumer position: two readers of the same ring
// buffer (two Readers, or a Reader and libbpf) would each take records the
// other then misses. Read each ring buffer with one Reader.
#pragma once

#include <perfbuf/error.h>
#include <perfbuf/action.h>
#include <perfbuf/bpf_counts.h>
#include <perfbuf/payload.h>

#include <signal.h>
#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

struct bpf_map;

namespace perfbuf {

// One record from the BPF program.
struct Sample {
  // The CPU whose perf ring held it. -1 for a ring buffer record: one ring
  // serves every CPU (send bpf_get_smp_processor_id() in the record if needed).
  int cpu = -1;
  std::uint64_t time_ns = 0;  // kernel timestamp on Options::clock, when Options::timestamps is set
  // The bytes passed to bpf_perf_event_output(), plus up to 7 bytes of kernel
  // padding; for a ring buffer, exactly the bytes output or submitted. Valid
  // only until the handler returns.
  std::span<const std::byte> data;
  // Options::ordered: an older record than this one was already handed out
  // (it reached its ring later than the reorder window allowed).
  bool late = false;

  // Copies the start of the payload into out; false if the payload is shorter.
  template <class T>
  bool read(T& out) const noexcept {
    return read_payload(data, out);
  }
};

// Called for every record. May return void (keep going) or Action::stop to end
// the current drain early; later records stay in the ring for the next call.
// An exception propagates out of poll/consume; the record that threw counts as
// consumed and the rings stay consistent.
class SampleHandler {
 public:
  SampleHandler() = default;
  template <class F, class = std::enable_if_t<std::is_invocable_v<F&, const Sample&>>>
  SampleHandler(F f) {  // NOLINT: implicit, so that a lambda can be passed directly
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Sample&>>) {
      fn_ = [f = std::move(f)](const Sample& s) mutable {
        f(s);
        return Action::next;
      };
    } else {
      fn_ = std::move(f);
    }
  }
  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  Action operator()(const Sample& s) const { return fn_(s); }

 private:
  std::function<Action(const Sample&)> fn_;
};

// Called with records that never reached a ring: those the kernel dropped on a
// full perf ring (cpu: that ring's), and, for a map whose program counts its
// outputs (Reader::count_outputs), those whose output failed (cpu: where the
// program ran; for a ring buffer this is the only report of a loss).
using LostHandler = std::function<void(int cpu, std::uint64_t count)>;

// When the kernel wakes a reader blocked in poll().
struct Wakeup {
  enum class Mode { adaptive, every_record, every_n_records, watermark_bytes };
  Mode mode = Mode::adaptive;
  std::uint32_t value = 0;

  // The default: follows the rate of each ring. While traffic is light
  // (below ~40,000 records/s on a ring) every record wakes the reader, so it
  // arrives within tens of microseconds; when it is heavy, the producer stops
  // waking the reader (waking costs the producer more than the record) and
  // the reader drains the ring every kAdaptivePoll instead. A perf event's
  // wakeup setting is fixed when it is opened, so each CPU gets two events
  // writing into its one ring of pages_per_cpu: one that wakes the reader on
  // every record, and one that wakes it only at the watermark; the map slot
  // points to one of them. One ring: per-CPU order is kept, nothing is lost
  // or delivered twice, and no memory is added. A ring buffer switches between the
  // kernel's per-record wakeups and the watermark, through its program's
  // counts map (Reader::count_outputs; without it the kernel's rule stays).
  static constexpr Wakeup adaptive() { return {Mode::adaptive, 0}; }
  // What libbpf does by default: lowest latency, one wakeup per record, so the
  // reader cannot keep up with a busy producer.
  static constexpr Wakeup every_record() { return {Mode::every_record, 1}; }
  // After every n records on a ring.
  static constexpr Wakeup every(std::uint32_t n) { return {Mode::every_n_records, n}; }
  // After `bytes` have been written to a ring since its last wakeup; 0 means
  // min(64 KiB, a quarter of the ring): wakeups stay rare under load (one per
  // ~2000 small records), and the ring is far from full when the reader runs,
  // which leaves room for a reader that is late to be scheduled. Records
  // below the threshold wait for the flush every max_delay.
  static constexpr Wakeup watermark(std::uint32_t bytes) { return {Mode::watermark_bytes, bytes}; }
};

// Wakeup::adaptive(): how often the reader drains a ring that does not wake it
// (heavy traffic), so records wait at most about this long there.
inline constexpr std::chrono::microseconds kAdaptivePoll{500};

// The ring size per CPU when Options::pages_per_cpu is 0.
inline constexpr std::size_t kDefaultRingBytes = 512 * 1024;

// Options. Those of the perf rings (pages_per_cpu, cpus, wakeup, timestamps,
// clock) do not apply to a ring buffer, whose size is the map's and whose
// records carry no kernel timestamp (time_ns is 0).
struct Options {
  // Data pages per ring (a power of two); the ring maps one more page for
  // control. 0: 512 KiB worth of pages (kDefaultRingBytes), whatever the page
  // size, so 64 KiB-page systems do not get 16 times the memory.
  std::size_t pages_per_cpu = 0;
  // CPU ids to read; empty: every online CPU. Each ring goes at key = CPU id.
  std::vector<int> cpus;
  Wakeup wakeup = Wakeup::adaptive();
  // With batched wakeups the last records below the threshold would wait for
  // more traffic. poll() never sleeps longer than this and drains every ring at
  // least this often, so a record reaches its handler at most max_delay after
  // it was written, as long as the application is in poll() (or calls consume()
  // that often from its own loop).
  std::chrono::milliseconds max_delay{10};
  // Low-latency option: before sleeping, poll() watches the rings for up to
  // this long and handles records that arrive meanwhile without waiting for a
  // wakeup to be scheduled. Costs CPU: the reader spins for busy_poll every
  // time traffic pauses. Pair it with Wakeup::every_record(). 0: off.
  std::chrono::microseconds busy_poll{0};
  // At most this many records from one ring per pass of poll(), so that one
  // flooding ring cannot hold the others back; the rest follows in the next
  // pass, without waiting. consume() takes everything.
  std::uint64_t ring_budget = 4096;
  // Time order: perf records of all CPUs are handed out oldest first, by
  // their timestamp (turns timestamps on; needs a clock other than kPerfClock).
  // A record waits until reorder_window has passed since its timestamp, so
  // that older records still on their way into another ring can overtake it:
  // it reaches its handler at most max_delay + reorder_window after it was
  // written. One older than a record already handed out is still delivered,
  // with Sample::late set, and counted in CpuStats::late. Ring buffer records
  // carry no timestamp: they are handed out as they come.
  bool ordered = false;
  std::chrono::microseconds reorder_window{1000};
  // Ask the kernel for a timestamp per record (PERF_SAMPLE_TIME) in Sample::time_ns.
  bool timestamps = false;
  // The clock of those timestamps. CLOCK_MONOTONIC (the default) is the clock of
  // bpf_ktime_get_ns() and of clock_gettime(CLOCK_MONOTONIC), so times compare
  // with both; also CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, CLOCK_BOOTTIME,
  // CLOCK_TAI, or kPerfClock for perf's own clock (which drifts from them).
  clockid_t clock = CLOCK_MONOTONIC;
};

// Options::clock value for perf's own local clock.
inline constexpr clockid_t kPerfClock = -1;

// Figures of one ring (or, from total_stats(), of all of them).
struct CpuStats {
  int cpu = -1;     // the ring's CPU; -1 for a ring buffer, shared by all CPUs
  int source = 0;   // which map: 0 the constructor's, 1 the first add()ed, ...
  std::uint64_t records = 0;  // samples delivered
  std::uint64_t bytes = 0;    // payload bytes delivered
  std::uint64_t lost = 0;     // records the kernel dropped on a full perf ring (it counts none
                              // for a ring buffer: see failed)
  // With Reader::count_outputs (else 0): outputs the program tried, and of
  // those, the ones that failed without the kernel counting them (ring buffer
  // full; no reader's ring on the CPU). For a perf ring: attempts == records +
  // lost + failed once everything is read; for a ring buffer, attempts ==
  // records + failed.
  std::uint64_t attempts = 0;
  std::uint64_t failed = 0;
  std::uint64_t wakeups = 0;  // times epoll reported the ring ready
  std::uint64_t drains = 0;   // times the reader read the ring (woken, polled or flushed)
  std::uint64_t drain_ns = 0;  // time in those drains: the handlers, and the parsing around them
  // The most bytes found waiting in the ring when a drain began: how close
  // it came to full (compare with Reader::ring_bytes()). From total_stats():
  // the highest of any ring.
  std::uint64_t fill_high_water = 0;
  std::uint64_t corrupt = 0;  // drains that found a malformed ring and skipped it
  std::uint64_t late = 0;     // Options::ordered: records older than one already handed out
  // Times the CPU came back online and got new perf events (the kernel ends
  // a CPU's events when it goes offline for good); 0 for a ring buffer.
  std::uint64_t reopens = 0;
  // Wakeup::adaptive(): times the ring moved between a wakeup per record and
  // being polled (odd: polled now). Many per second: its rate hovers at a
  // threshold.
  std::uint64_t switches = 0;
};

// The counts a program keeps with <perfbuf/bpf.h> in a PERFBUF_COUNTS_MAP,
// summed over CPUs (wakeup_bytes, paused: the reader's settings). Throws perfbuf::Error.
perfbuf_counts sum_output_counts(int counts_map_fd);

// The online CPU ids, from /sys/devices/system/cpu/online (may be sparse).
std::vector<int> online_cpus();

// The data pages per ring that Options::pages_per_cpu = 0 stands for on this machine.
std::size_t default_pages_per_cpu();

class Reader {
 public:
  // map_fd: a BPF_MAP_TYPE_PERF_EVENT_ARRAY with a slot for every CPU id read,
  // or a BPF_MAP_TYPE_RINGBUF. The reader keeps its own duplicate of the fd.
  // Throws perfbuf::Error.
  Reader(int map_fd, SampleHandler on_sample, LostHandler on_lost = {}, Options options = {});
  Reader(const bpf_map* map, SampleHandler on_sample, LostHandler on_lost = {},
         Options options = {});
  // Reads another map in the same poll(), with its own handlers: a perf event
  // array (opened with this reader's Options) or a ring buffer, any mix. Its
  // rings come after those already there (ring_count() grows). Throws
  // perfbuf::Error, and then leaves the reader as it was.
  void add(int map_fd, SampleHandler on_sample, LostHandler on_lost = {});
  void add(const bpf_map* map, SampleHandler on_sample, LostHandler on_lost = {});
  // Reads the output counts the program of map `source` (0: the constructor's,
  // 1: the first add()ed, ...) keeps with <perfbuf/bpf.h>: counts_map is the
  // PERFBUF_COUNTS_MAP it passes to perfbuf_perf_output() /
  // perfbuf_ringbuf_output(). From then on failed outputs, which the kernel
  // does not report, reach the lost handler and CpuStats::failed (counted
  // since the program was loaded, read at most every max_delay in poll()
  // and at every consume()). For a ring buffer it also lets the reader choose
  // when the program wakes it: with Wakeup::adaptive() on every record while
  // traffic is light and at the watermark while it is heavy; with
  // Wakeup::watermark() at that watermark of unread bytes (records below it
  // wait at most max_delay); otherwise on every record while the reader is
  // caught up. And it lets pause() stop a ring buffer. Throws perfbuf::Error.
  void count_outputs(int counts_map_fd, int source = 0);
  void count_outputs(const bpf_map* counts_map, int source = 0);
  // A moved-from Reader may only be destroyed or assigned to.
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  // Removes the rings from the map, unmaps and closes everything.
  ~Reader();

  // Waits up to timeout (negative or milliseconds::max(): no limit) for records, then handles what is
  // ready. Returns the number of records handled (0 on timeout), or an Error;
  // a signal during the wait gives an Error with interrupted() == true.
  Result<std::size_t> poll(std::chrono::milliseconds timeout);
  // The same, with `sigmask` as the thread's signal mask while it waits
  // (epoll_pwait). Block SIGINT/SIGTERM in the thread and pass a mask without
  // them: a signal then lands only inside the wait, so poll() reports it as
  // interrupted() every time, never between two waits where it could go unseen.
  Result<std::size_t> poll(std::chrono::milliseconds timeout, const sigset_t* sigmask);
  // Handles everything in every ring now, without waiting.
  Result<std::size_t> consume();
  // Handles everything in ring `index` (0 .. ring_count()-1) now.
  Result<std::size_t> consume_ring(std::size_t index);

  // Stops the programs' output into every map of this reader, without tearing
  // anything down, until resume(): the outputs meanwhile fail and are counted
  // (a perf ring's by the kernel, reported as lost; a ring buffer's by its
  // program's counts map, reported as failed: a ring buffer can only be paused
  // once count_outputs() was called for it). What the rings held is still
  // read. A map add()ed while paused is not paused. Throws perfbuf::Error
  // (then nothing changed).
  void pause();
  void resume();
  bool paused() const noexcept;

  // Makes a poll() waiting in another thread return now, with the records it
  // handled (maybe 0); if no poll() is waiting, the next one returns at once.
  // Several wake() calls before a poll() count as one. To stop a polling
  // thread: set your own stop flag, then wake(). Safe from any thread and from
  // a signal handler (one write(2) to an eventfd). With busy_poll, the wake is
  // seen when the busy poll ends.
  void wake() noexcept;

  // For someone else's event loop: readable when a ring has woken the reader
  // (or after wake(), until the next poll()); then call consume(). With batched
  // wakeups also call consume() every max_delay. Put this fd in your own epoll
  // or poll set; do not add fds to it: poll() then returns an Error (EINVAL)
  // rather than guess what they are.
  int epoll_fd() const noexcept;
  std::size_t ring_count() const noexcept;
  int ring_cpu(std::size_t index) const;
  // The fd epoll watches for that ring: its perf event, or the reader's own
  // duplicate of a ring buffer's map fd.
  int ring_fd(std::size_t index) const;
  std::size_t ring_bytes() const noexcept;  // data bytes of each perf ring (Options::pages_per_cpu)
  const Options& options() const noexcept;

  std::vector<CpuStats> stats() const;
  // cpu = -1. Also counts the outputs of CPUs that have no ring in stats()
  // (a perf event array read on some CPUs only).
  CpuStats total_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perfbuf
