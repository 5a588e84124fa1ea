#include "sink_bench.h"

#include <perfbuf/reader.h>

#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bench_program.h"
#include "json_lines.h"
#include "nats_sink.h"

namespace perfbuf::bench {

namespace {

using clock = std::chrono::steady_clock;

enum class Mode { devnull, packed, per_record };
constexpr Mode kModes[] = {Mode::devnull, Mode::packed, Mode::per_record};

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::devnull: return "text to /dev/null";
    case Mode::packed: return "nats packed";
    case Mode::per_record: return "nats 1 per message";
  }
  return "?";
}
const char* mode_key(Mode m) {
  switch (m) {
    case Mode::devnull: return "devnull";
    case Mode::packed: return "nats_packed";
    case Mode::per_record: return "nats_per_record";
  }
  return "?";
}

double cpu_of(clockid_t clock_id) {
  timespec t{};
  clock_gettime(clock_id, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

struct Run {
  double seconds = 0;         // from the producers' start until the last record was stored (or printed)
  std::uint64_t produced = 0;  // records the program tried to emit
  std::uint64_t kernel_lost = 0;
  std::uint64_t received = 0;
  std::uint64_t acknowledged = 0;  // devnull: printed
  std::uint64_t dropped = 0;
  std::uint64_t dropped_queue_full = 0, dropped_ack = 0, dropped_other = 0;
  std::uint64_t resent = 0;
  std::uint64_t messages = 0;
  std::uint64_t published = 0;  // records in those messages
  double reader_cpu_s = 0;
  double publisher_cpu_s = 0;
  double client_cpu_s = 0;  // the process's other threads: the NATS client's I/O and acks
  double rate() const { return seconds > 0 ? acknowledged / seconds : 0; }
  bool accounted() const { return received == acknowledged + dropped; }
};

// Prints a record as `perfbuf cat` prints one in hex, into `out`.
void print_text(std::FILE* out, const Sample& s, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  char line[128 + 2 * 8192];
  int n = std::snprintf(line, 128, "%" PRIu64 ".%09" PRIu64 " cpu %d, %zu bytes: ",
                        s.time_ns / 1000000000, s.time_ns % 1000000000, s.cpu, size);
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data.data());
  for (std::size_t i = 0; i < size; ++i) {
    line[n++] = kHex[p[i] >> 4];
    line[n++] = kHex[p[i] & 15];
  }
  line[n++] = '\n';
  std::fwrite(line, 1, static_cast<std::size_t>(n), out);
}

// Puts the calling thread's CPU affinity back as it was when made.
class AffinityRestore {
 public:
  AffinityRestore() { saved_ = sched_getaffinity(0, sizeof set_, &set_) == 0; }
  ~AffinityRestore() {
    if (saved_) sched_setaffinity(0, sizeof set_, &set_);
  }
  AffinityRestore(const AffinityRestore&) = delete;
  AffinityRestore& operator=(const AffinityRestore&) = delete;

 private:
  cpu_set_t set_{};
  bool saved_ = false;
};

Run run_once(Mode mode, int producer_count, std::uint32_t size, const SinkBenchArgs& args) {
  BenchProgram program({.record_size = size, .batch = args.batch});
  std::unique_ptr<tools::NatsSink> sink;
  if (mode != Mode::devnull) {
    tools::NatsSinkOptions o;
    o.url = args.url;
    o.subject = args.subject();
    o.stream = args.stream;
    o.frame_bytes = args.frame_bytes;
    o.frame_records = mode == Mode::per_record ? 1 : 0;
    // One message per record needs a deeper window and queue to keep up at all.
    o.max_pending = mode == Mode::per_record ? 4096 : 64;
    o.queue_frames = mode == Mode::per_record ? 65536 : 256;
    o.stream_max_bytes = std::int64_t{1} << 30;  // a bench fills no disk
    o.purge_stream = true;  // every run writes into an empty stream
    sink = std::make_unique<tools::NatsSink>(o);
  }
  std::FILE* devnull = std::fopen("/dev/null", "w");
  static char buffer[1 << 16];
  std::setvbuf(devnull, buffer, _IOFBF, sizeof buffer);
  std::uint64_t received = 0;
  auto on_sample = [&](const Sample& s) {
    ++received;
    const std::size_t n = std::min<std::size_t>(size, s.data.size());
    if (sink)
      sink->add(s.time_ns, s.cpu, {reinterpret_cast<const std::uint8_t*>(s.data.data()), n});
    else
      print_text(devnull, s, n);
  };
  Options options;
  options.pages_per_cpu = args.pages;
  options.timestamps = true;  // both print or ship each record's time
  Reader reader(program.perf_map(), on_sample, {}, options);

  // The reader (this thread) gets a core of its own while there is one to
  // spare, for this run only: the threads a later run starts from here (its
  // sink's publisher, the client's) must not inherit the pin.
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  AffinityRestore restore_affinity;
  if (producer_count < ncpu) pin_to_cpu(ncpu - 1);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const double reader0 = cpu_of(CLOCK_THREAD_CPUTIME_ID);
  const clock::time_point t0 = clock::now();
  const clock::time_point end = t0 + std::chrono::duration_cast<clock::duration>(
                                         std::chrono::duration<double>(args.duration_s));
  Producers producers(producer_count, std::nullopt);
  for (clock::time_point now = t0; now < end; now = clock::now()) {
    if (sink) {
      sink->flush_due(now);
    }
    const auto r = reader.poll(std::chrono::milliseconds(10));
    if (!r && !r.interrupted()) throw r.error();
  }
  producers.stop();
  if (const auto r = reader.consume(); !r) throw r.error();
  const bench_counters sent = program.counters();
  Run run;
  run.produced = sent.attempts;
  run.kernel_lost = sent.failures;
  run.received = received;
  if (sink) {
    sink->set_kernel_lost(sent.failures);
    const tools::SinkCounts c = sink->finish();
    run.acknowledged = c.acknowledged;
    run.dropped = c.dropped;
    run.dropped_queue_full = c.dropped_queue_full;
    run.dropped_ack = c.dropped_ack;
    run.dropped_other = c.dropped_publish + c.dropped_at_finish;
    run.resent = c.resent_messages;
    run.messages = c.published_messages;
    run.published = c.published_records;
    run.publisher_cpu_s = c.publisher_cpu_s;
  } else {
    std::fflush(devnull);
    run.acknowledged = received;
  }
  run.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  run.reader_cpu_s = cpu_of(CLOCK_THREAD_CPUTIME_ID) - reader0;
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  auto seconds_of = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  const double process_s = seconds_of(after.ru_utime) + seconds_of(after.ru_stime) -
                           seconds_of(before.ru_utime) - seconds_of(before.ru_stime);
  run.client_cpu_s = std::max(0.0, process_s - producers.cpu_seconds() - run.reader_cpu_s -
                                       run.publisher_cpu_s);
  std::fclose(devnull);
  return run;
}

double median_rate(std::vector<Run> runs) {
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.rate() < b.rate(); });
  const std::size_t n = runs.size();
  return n % 2 ? runs[n / 2].rate() : (runs[n / 2 - 1].rate() + runs[n / 2].rate()) / 2;
}

}  // namespace

int run_sink_bench(const SinkBenchArgs& args) {
  constexpr double kTargetRate = 500000;   // records/s into JetStream, packed
  constexpr double kTargetRatio = 0.5;     // of the rate printed to /dev/null
  if (!args.json)
    std::printf("perfbuf bench --sink %s: subject %s, stream %s (file storage), %g s x %d "
                "rounds, frames of up to %zu bytes\n",
                args.url.c_str(), args.subject().c_str(), args.stream.c_str(), args.duration_s,
                args.rounds, args.frame_bytes);
  for (int producers : args.producers)
    for (std::uint32_t size : args.sizes) {
      std::vector<Run> runs[3];
      for (int round = 0; round < args.rounds; ++round)
        for (int i = 0; i < 3; ++i) {
          const int m = (i + round) % 3;  // interleaved: each round starts with another mode
          runs[m].push_back(run_once(kModes[m], producers, size, args));
        }
      double rates[3];
      if (!args.json)
        std::printf("\n%d producer%s, %u-byte records\n%-20s %12s %12s %12s %10s %10s %8s %8s "
                    "%9s %9s\n",
                    producers, producers == 1 ? "" : "s", size, "mode", "records/s",
                    "received", "stored", "dropped", "kern lost", "rec/msg", "reader",
                    "publisher", "client");
      bool accounted = true;
      for (int m = 0; m < 3; ++m) {
        Run total;
        for (const Run& r : runs[m]) {
          total.seconds += r.seconds;
          total.produced += r.produced;
          total.kernel_lost += r.kernel_lost;
          total.received += r.received;
          total.acknowledged += r.acknowledged;
          total.dropped += r.dropped;
          total.dropped_queue_full += r.dropped_queue_full;
          total.dropped_ack += r.dropped_ack;
          total.dropped_other += r.dropped_other;
          total.resent += r.resent;
          total.messages += r.messages;
          total.published += r.published;
          total.reader_cpu_s += r.reader_cpu_s;
          total.publisher_cpu_s += r.publisher_cpu_s;
          total.client_cpu_s += r.client_cpu_s;
        }
        rates[m] = median_rate(runs[m]);
        accounted = accounted && total.accounted();
        const double per_msg = total.messages ? double(total.published) / total.messages : 0;
        auto pct = [&](double cpu) { return total.seconds > 0 ? 100 * cpu / total.seconds : 0; };
        if (args.json)
          tools::print_json_line({{"type", "sink_bench"},
                                  {"mode", mode_key(kModes[m])},
                                  {"producers", producers},
                                  {"size", size},
                                  {"records_per_s", std::llround(rates[m])},
                                  {"produced", total.produced},
                                  {"received", total.received},
                                  {"stored", total.acknowledged},
                                  {"dropped", total.dropped},
                                  {"dropped_queue_full", total.dropped_queue_full},
                                  {"dropped_ack", total.dropped_ack},
                                  {"dropped_other", total.dropped_other},
                                  {"resent_messages", total.resent},
                                  {"kernel_lost", total.kernel_lost},
                                  {"accounted", total.accounted()},
                                  {"messages", total.messages},
                                  {"records_per_message", tools::rounded(per_msg, 1)},
                                  {"reader_cpu_pct", tools::rounded(pct(total.reader_cpu_s), 1)},
                                  {"publisher_cpu_pct", tools::rounded(pct(total.publisher_cpu_s), 1)},
                                  {"client_cpu_pct", tools::rounded(pct(total.client_cpu_s), 1)}});
        else
          std::printf("%-20s %12.0f %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64
                      " %8.1f %7.0f%% %8.0f%% %8.0f%%\n",
                      mode_name(kModes[m]), rates[m], total.received, total.acknowledged,
                      total.dropped, total.kernel_lost, per_msg, pct(total.reader_cpu_s),
                      pct(total.publisher_cpu_s), pct(total.client_cpu_s));
      }
      const bool rate_met = rates[1] >= kTargetRate;
      const double ratio = rates[0] > 0 ? rates[1] / rates[0] : 0;
      const bool ratio_met = ratio >= kTargetRatio;
      if (args.json)
        tools::print_json_line({{"type", "sink_targets"},
                                {"producers", producers},
                                {"size", size},
                                {"packed_records_per_s", std::llround(rates[1])},
                                {"rate_target", kTargetRate},
                                {"rate_met", rate_met},
                                {"ratio_to_devnull", tools::rounded(ratio, 2)},
                                {"ratio_target", kTargetRatio},
                                {"ratio_met", ratio_met},
                                {"no_silent_loss", accounted}});
      else
        std::printf("targets: packed >= %.0f records/s: %s (%.0f); packed >= %.1f x /dev/null: "
                    "%s (%.2f); no silent loss (received = stored + dropped, every mode): %s\n",
                    kTargetRate, rate_met ? "met" : "missed", rates[1], kTargetRatio,
                    ratio_met ? "met" : "missed", ratio, accounted ? "met" : "MISSED");
    }
  std::fflush(stdout);
  // Figures, not a verdict: the exit code says only whether the bench ran.
  return 0;
}

}  // namespace perfbuf::bench
