#include "consumers.h"

#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace perfbuf::bench {

void RecordSink::on_record(const void* data, std::size_t size) {
  if (size < sizeof(bench_record)) return;  // not the producer's record: not counted
  // Published now and then from here too: one consume call of a reader that
  // the producer outruns (libbpf's ring buffer reader reads until the ring is
  // empty) may last the whole run, and records_published() must still count them.
  if ((++records_ & 1023) == 0) publish();
  std::uint64_t emitted;
  std::memcpy(&emitted, data, sizeof emitted);  // bench_record::time_ns
  latencies_.record(ns_since(emitted));
}

namespace {

using std::chrono::milliseconds;

constexpr int kWaitMs = 100;

// perfbuf's Reader, on the perf rings or the ring buffer. With spin = true it
// is never woken and reads in a tight loop: the ceiling.
class PerfbufConsumer final : public Consumer {
 public:
  PerfbufConsumer(Reader reader, bool spin) : spin_(spin), reader_(std::move(reader)) {}

  void step() override {
    if (!spin_) {
      check(reader_.poll(milliseconds(kWaitMs)));
      return;
    }
    // Spin, but give the core to a producer that shares it when there is nothing to read.
    const Result<std::size_t> n = reader_.consume();
    check(n);
    if (*n == 0) sched_yield();
  }
  void drain() override { check(reader_.consume()); }
  std::uint64_t wakeups() const override { return reader_.total_stats().wakeups; }

 private:
  static void check(const Result<std::size_t>& r) {
    if (!r && !r.interrupted()) throw r.error();
  }
  bool spin_;
  Reader reader_;
};

Error libbpf_error(const char* call) {
  const int err = errno;
  return Error(err, std::string(call) + ": " + std::strerror(err));
}

// libbpf's perf buffer with its defaults: one wakeup per record.
class LibbpfPerfConsumer final : public Consumer {
 public:
  LibbpfPerfConsumer(const BenchProgram& p, RecordSink& sink, std::size_t pages) {
    pb_ = perf_buffer__new(bpf_map__fd(p.perf_map()), pages, on_sample, nullptr, &sink, nullptr);
    if (!pb_) throw libbpf_error("perf_buffer__new");
  }
  ~LibbpfPerfConsumer() override { perf_buffer__free(pb_); }
  void step() override {
    const int n = perf_buffer__poll(pb_, kWaitMs);
    if (n > 0) wakeups_ += n;  // libbpf returns the number of rings epoll reported
  }
  void drain() override { perf_buffer__consume(pb_); }
  std::uint64_t wakeups() const override { return wakeups_; }

 private:
  static void on_sample(void* ctx, int, void* data, __u32 size) {
    static_cast<RecordSink*>(ctx)->on_record(data, size);
  }
  perf_buffer* pb_ = nullptr;
  std::uint64_t wakeups_ = 0;
};

// libbpf's raw perf buffer with perfbuf's default wakeup: a watermark at
// min(64 KiB, a quarter of the ring), and the same 10 ms flush of records below it.
class LibbpfPerfTunedConsumer final : public Consumer {
 public:
  LibbpfPerfTunedConsumer(const BenchProgram& p, RecordSink& sink, std::size_t pages) {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    attr.watermark = 1;
    const std::size_t ring = pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    attr.wakeup_watermark = static_cast<__u32>(std::min<std::size_t>(ring / 4, 64 * 1024));
    pb_ = perf_buffer__new_raw(bpf_map__fd(p.perf_map()), pages, &attr, on_event, &sink, nullptr);
    if (!pb_) throw libbpf_error("perf_buffer__new_raw");
  }
  ~LibbpfPerfTunedConsumer() override { perf_buffer__free(pb_); }
  void step() override {
    const int n = perf_buffer__poll(pb_, 10);
    if (n > 0)
      wakeups_ += n;
    else
      perf_buffer__consume(pb_);  // the flush: records below the watermark
  }
  void drain() override { perf_buffer__consume(pb_); }
  std::uint64_t wakeups() const override { return wakeups_; }

 private:
  static bpf_perf_event_ret on_event(void* ctx, int, perf_event_header* h) {
    if (h->type == PERF_RECORD_SAMPLE) {
      struct Raw {
        perf_event_header header;
        std::uint32_t size;
        char data[];
      };
      const Raw* raw = reinterpret_cast<const Raw*>(h);
      static_cast<RecordSink*>(ctx)->on_record(raw->data, raw->size);
    }
    return LIBBPF_PERF_EVENT_CONT;
  }
  perf_buffer* pb_ = nullptr;
  std::uint64_t wakeups_ = 0;
};

// libbpf's BPF ring buffer reader (the program writes into a RINGBUF map).
class LibbpfRingbufConsumer final : public Consumer {
 public:
  LibbpfRingbufConsumer(const BenchProgram& p, RecordSink& sink) {
    rb_ = ring_buffer__new(p.ringbuf_fd(), on_sample, &sink, nullptr);
    if (!rb_) throw libbpf_error("ring_buffer__new");
  }
  ~LibbpfRingbufConsumer() override { ring_buffer__free(rb_); }
  void step() override {
    if (ring_buffer__poll(rb_, kWaitMs) > 0) ++wakeups_;
  }
  void drain() override { ring_buffer__consume(rb_); }
  std::uint64_t wakeups() const override { return wakeups_; }

 private:
  static int on_sample(void* ctx, void* data, std::size_t size) {
    static_cast<RecordSink*>(ctx)->on_record(data, size);
    return 0;
  }
  ring_buffer* rb_ = nullptr;
  std::uint64_t wakeups_ = 0;
};

}  // namespace

const std::vector<std::string>& consumer_names() {
  static const std::vector<std::string> names = {
      "ceiling",          "perfbuf",        "perfbuf-ordered",      "perfbuf-watermark",
      "perfbuf-every-record", "perfbuf-every-64", "perfbuf-low-latency", "libbpf-perfbuf",
      "libbpf-perfbuf-tuned",
      "perfbuf-ringbuf",  "libbpf-ringbuf"};
  return names;
}

bool reads_ringbuf(std::string_view name) {
  return name == "libbpf-ringbuf" || name == "perfbuf-ringbuf";
}

std::unique_ptr<Consumer> make_consumer(std::string_view name, const BenchProgram& program,
                                        RecordSink& sink, std::size_t pages) {
  const auto on_sample = [&sink](const Sample& s) { sink.on_record(s.data.data(), s.data.size()); };
  const auto perfbuf = [&](Wakeup wakeup, std::chrono::microseconds busy_poll, bool spin,
                           bool ordered = false) {
    Options o;
    o.pages_per_cpu = pages;
    o.wakeup = wakeup;
    o.busy_poll = busy_poll;
    o.ordered = ordered;
    return std::make_unique<PerfbufConsumer>(
        Reader(program.perf_map(), on_sample, {}, std::move(o)), spin);
  };
  const std::chrono::microseconds no_spin{0};
  if (name == "ceiling") return perfbuf(Wakeup::every(1u << 30), no_spin, true);
  if (name == "perfbuf") return perfbuf(Options{}.wakeup, no_spin, false);
  if (name == "perfbuf-ordered") return perfbuf(Options{}.wakeup, no_spin, false, true);
  // The ring buffer's size is the map's. Given the program's counts map, the
  // reader sets its watermark there, and the program wakes it past it
  // (<perfbuf/bpf.h>), as perfbuf's default does on perf rings.
  if (name == "perfbuf-ringbuf") {
    Reader reader(program.ringbuf_fd(), on_sample);
    reader.count_outputs(program.counts_fd());
    return std::make_unique<PerfbufConsumer>(std::move(reader), false);
  }
  if (name == "perfbuf-watermark") return perfbuf(Wakeup::watermark(0), no_spin, false);
  if (name == "perfbuf-every-record") return perfbuf(Wakeup::every_record(), no_spin, false);
  if (name == "perfbuf-every-64") return perfbuf(Wakeup::every(64), no_spin, false);
  if (name == "perfbuf-low-latency")
    return perfbuf(Wakeup::every_record(), std::chrono::microseconds(50), false);
  if (name == "libbpf-perfbuf") return std::make_unique<LibbpfPerfConsumer>(program, sink, pages);
  if (name == "libbpf-perfbuf-tuned")
    return std::make_unique<LibbpfPerfTunedConsumer>(program, sink, pages);
  if (name == "libbpf-ringbuf") return std::make_unique<LibbpfRingbufConsumer>(program, sink);
  throw Error(EINVAL, "unknown consumer '" + std::string(name) + "'");
}

}  // namespace perfbuf::bench
