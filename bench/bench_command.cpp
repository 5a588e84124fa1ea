#include "bench_command.h"

#include <perfbuf/reader.h>

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "json_lines.h"
#include "bench_program.h"
#include "consumers.h"
#include "nats_sink.h"
#include "sink_bench.h"

namespace perfbuf::bench {

namespace {

constexpr const char* kDescription =
    "compare perf ring readers (perfbuf, libbpf) on this machine\n"
    "Measures perf ring readers side by side on this machine: producer threads make a\n"
    "cheap system call in a loop, a BPF program emits records on each call, and each\n"
    "consumer reads them in turn. Rounds interleave the consumers; medians are reported.\n";

struct BenchArgs {
  std::vector<int> producers = {1, 2};
  std::vector<std::uint32_t> sizes = {16};
  std::uint32_t batch = 1;
  std::vector<std::optional<double>> rates = {std::nullopt};  // records/s per producer; none: max
  double duration_s = 2;
  int rounds = 3;
  std::size_t pages = default_pages_per_cpu();
  std::vector<std::string> consumers = consumer_names();
  bool json = false;
  std::string plot;
  std::string sink;  // nats://...: the sink comparison instead of the readers'
  std::string stream = "PERFBUF_BENCH";
  std::size_t frame_bytes = 64 * 1024;
};

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in{std::string(text)};
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

template <class T>
std::optional<std::vector<T>> parse_list(std::string_view text, T min, T max) {
  std::vector<T> out;
  for (const std::string& item : split(text)) {
    const auto v = tools::parse_number<T>(item, min, max);
    if (!v) return std::nullopt;
    out.push_back(*v);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// The --rate list: rates in [0, 1e8] or "max" (unpaced, none).
std::optional<std::vector<std::optional<double>>> parse_rates(const std::string& text) {
  std::vector<std::optional<double>> rates;
  for (const std::string& item : split(text)) {
    if (item == "max") {
      rates.emplace_back(std::nullopt);
      continue;
    }
    const auto v = tools::parse_number<double>(item, 0, 1e8);
    if (!v) return std::nullopt;
    rates.emplace_back(*v);
  }
  if (rates.empty()) return std::nullopt;
  return rates;
}

// The --consumers list: known names, at least one.
std::optional<std::vector<std::string>> parse_consumers(const std::string& text) {
  std::vector<std::string> names = split(text);
  for (const std::string& c : names)
    if (std::find(consumer_names().begin(), consumer_names().end(), c) == consumer_names().end())
      throw CLI::ValidationError("--consumers", "unknown consumer '" + c + "'");
  if (names.empty()) return std::nullopt;
  return names;
}

// The options of `perfbuf bench`, parsed into out.
void add_options(CLI::App& app, BenchArgs& out) {
  using tools::add_parsed;
  add_parsed(app, "--producers", "LIST", "producer thread counts, e.g. 1,2 (default 1,2)",
             "takes a list of counts from 1 to 64, e.g. 1,2",
             [](const std::string& v) { return parse_list<int>(v, 1, 64); },
             [&out](std::vector<int> v) { out.producers = std::move(v); });
  add_parsed(app, "--size", "LIST", "record sizes in bytes, 16..8192 (default 16)",
             "takes record sizes from 16 to 8192 bytes, e.g. 16,256",
             [](const std::string& v) {
               return parse_list<std::uint32_t>(v, sizeof(bench_record), BENCH_MAX_RECORD);
             },
             [&out](std::vector<std::uint32_t> v) { out.sizes = std::move(v); });
  add_parsed(app, "--batch", "N", "records per system call, 1..64 (default 1)",
             "takes a number of records from 1 to 64",
             tools::number_in<std::uint32_t>(1, BENCH_MAX_BATCH),
             [&out](std::uint32_t v) { out.batch = v; });
  add_parsed(app, "--rate", "LIST",
             "records per second per producer, or max (unpaced), e.g.\n"
             "0,100,1000,10000,100000,max (default max). A paced producer\n"
             "keeps to its schedule; 0 measures the consumers idle. Every\n"
             "record's delivery delay is measured",
             "takes a list of rates from 0 to 1e8 records per second, or max, e.g. 100,1000,max",
             parse_rates, [&out](std::vector<std::optional<double>> v) { out.rates = std::move(v); });
  add_parsed(app, "--duration", "SEC", "seconds per run (default 2)",
             "takes seconds, from 0.01 to 3600", tools::number_in<double>(0.01, 3600),
             [&out](double v) { out.duration_s = v; });
  add_parsed(app, "--rounds", "N", "runs per consumer and configuration (default 3)",
             "takes a number from 1 to 100", tools::number_in<int>(1, 100),
             [&out](int v) { out.rounds = v; });
  add_parsed(app, "--pages", "N",
             "data pages per perf ring, a power of two (default: perfbuf's\n"
             "default, 512 KiB worth); the ring buffer gets the same total size",
             "takes a power of two from 1 to 16384",
             [](const std::string& v) {
               const auto p = tools::parse_number<std::size_t>(v, 1, 1 << 14);
               return p && std::has_single_bit(*p) ? p : std::nullopt;
             },
             [&out](std::size_t v) { out.pages = v; });
  add_parsed(app, "--consumers", "LIST",
             "which consumers (default all):\n"
             "ceiling, perfbuf, perfbuf-ordered, perfbuf-watermark,\n"
             "perfbuf-every-record, perfbuf-every-64, perfbuf-low-latency,\n"
             "libbpf-perfbuf, libbpf-perfbuf-tuned, perfbuf-ringbuf, libbpf-ringbuf",
             "takes at least one consumer name", parse_consumers,
             [&out](std::vector<std::string> v) { out.consumers = std::move(v); });
  add_parsed(app, "--plot", "FILE.png", "also draw throughput and CPU per record (needs gnuplot)",
             "takes a file name",
             [](const std::string& v) { return v.empty() ? std::nullopt : std::optional(v); },
             [&out](std::string v) { out.plot = std::move(v); });
  app.add_flag("--json", out.json, "one JSON object per consumer and configuration");
  add_parsed(app, "--sink", "URL",
             "instead: the same records printed to /dev/null, shipped to\n"
             "JetStream at nats://HOST:PORT packed, and one per message",
             "takes nats://HOST:PORT",
             tools::nats_url_option,
             [&out](std::string v) { out.sink = std::move(v); });
  app.add_option("--stream", out.stream, "with --sink: the stream (default PERFBUF_BENCH, subject\n"
                                         "perfbuf.bench.NAME, created with file storage, at most\n"
                                         "1 GiB; emptied before each run)")
      ->type_name("NAME");
  add_parsed(app, "--frame-bytes", "N", "with --sink: bytes per packed message (default 65536)",
             "takes a number of bytes from 64 to 1048576",
             tools::number_in<std::size_t>(64, std::size_t{1} << 20),
             [&out](std::size_t v) { out.frame_bytes = v; });
  // Checked once every option is in. A record (with its 8-byte header and
  // 4-byte size) must fit in a perf ring, or the kernel can never write it
  // and every one would count as lost.
  app.callback([&out] {
    const std::size_t ring = out.pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    for (std::uint32_t size : out.sizes)
      if (size + 12 > ring)
        throw CLI::ValidationError("--size " + std::to_string(size),
                                   "does not fit in a ring of " + std::to_string(out.pages) +
                                       " pages; raise --pages");
  });
}

// One run's exact record counts. The producers stop before the consumer's
// final drain, so every record the program emitted has been handled by then:
// consumed + lost == produced.
struct Counts {
  std::uint64_t produced = 0;  // records the program tried to emit
  std::uint64_t consumed = 0;  // records the consumer handled
  std::uint64_t lost = 0;      // records the program failed to emit (ring full)
};

struct Figures {
  double produced_per_s = 0;
  double achieved_rate = 0;  // produced per second per producer: what --rate asked for
  double consumed_per_s = 0;
  double lost_per_s = 0;
  double cpu_ns_per_record = 0;
  double wakeups_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  double peak_rss_mib = 0;
  double consumer_cpu_pct = 0;            // the consumer thread's CPU time, % of a core
  double producer_cpu_ns_per_record = 0;  // the producers' CPU time (not waiting) per record
  Counts counts;  // exact, not a rate: summed over rounds, never a median
  LatencyHistogram latencies;  // every record's delivery delay, in ns
};

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// The process's peak resident memory since the last reset_peak_rss().
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// CPU time of the calling thread, as getrusage(RUSAGE_THREAD) counts it.
double thread_rusage_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct Config {
  int producers;
  std::uint32_t size;
  std::optional<double> rate;  // records/s per producer; none: unpaced
};

std::string rate_text(const std::optional<double>& rate) {
  if (!rate) return "max";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", *rate);
  return buf;
}

Figures run_once(const std::string& name, const Config& config, const BenchArgs& args) {
  const bool ringbuf = reads_ringbuf(name);
  const std::size_t ring_total =
      args.pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) * std::thread::hardware_concurrency();
  BenchProgram program({.record_size = config.size, .batch = args.batch, .ringbuf = ringbuf,
                        .ringbuf_bytes = std::bit_ceil(ring_total)});
  RecordSink sink;
  reset_peak_rss();
  std::unique_ptr<Consumer> consumer = make_consumer(name, program, sink, args.pages);

  // The consumer gets a core of its own while there is one to spare.
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  const int consumer_cpu = config.producers < ncpu ? ncpu - 1 : -1;
  std::atomic<bool> stop{false};
  double cpu_s = 0, rusage_s = 0, wall_s = 0;
  std::exception_ptr failure;
  std::thread reader([&] {
    if (consumer_cpu >= 0) pin_to_cpu(consumer_cpu);
    const auto wall0 = std::chrono::steady_clock::now();
    const double cpu0 = thread_cpu_seconds();
    const double rusage0 = thread_rusage_seconds();
    try {
      // Acquire: the final drain below starts after the producers have stopped.
      while (!stop.load(std::memory_order_acquire)) {
        consumer->step();
        sink.publish();
      }
      consumer->drain();
      sink.publish();
    } catch (...) {
      failure = std::current_exception();
    }
    cpu_s = thread_cpu_seconds() - cpu0;
    rusage_s = thread_rusage_seconds() - rusage0;
    wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  });

  using clock = std::chrono::steady_clock;
  const clock::time_point t0 = clock::now();
  // A paced producer makes one call per `batch` records.
  Producers producers(config.producers, config.rate ? std::optional<double>(*config.rate / args.batch)
                                                    : std::nullopt);
  std::this_thread::sleep_for(std::chrono::duration<double>(args.duration_s));
  producers.stop();
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const bench_counters sent = program.counters();
  const std::uint64_t consumed_in_time = sink.records_published();
  stop = true;
  reader.join();
  if (failure) std::rethrow_exception(failure);

  Figures f;
  f.counts = {.produced = sent.attempts, .consumed = sink.records(), .lost = sent.failures};
  f.produced_per_s = sent.attempts / seconds;
  f.achieved_rate = f.produced_per_s / config.producers;
  f.consumed_per_s = consumed_in_time / seconds;
  f.lost_per_s = sent.failures / seconds;
  f.cpu_ns_per_record = sink.records() ? cpu_s * 1e9 / sink.records() : 0;
  f.wakeups_per_s = consumer->wakeups() / seconds;
  f.latencies = sink.latencies();
  const LatencyHistogram::Summary delays = f.latencies.summary_us();
  f.p50_us = delays.p50_us;
  f.p99_us = delays.p99_us;
  f.max_us = delays.max_us;
  f.peak_rss_mib = peak_rss_mib();
  f.consumer_cpu_pct = wall_s > 0 ? 100 * rusage_s / wall_s : 0;
  f.producer_cpu_ns_per_record = sent.attempts ? producers.cpu_seconds() * 1e9 / sent.attempts : 0;
  return f;
}

// The median of each figure over the rounds.
Figures median(std::vector<Figures> runs) {
  auto med = [&](double Figures::*field) {
    std::vector<double> v;
    for (const Figures& f : runs) v.push_back(f.*field);
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  Figures m;
  for (double Figures::*field :
       {&Figures::produced_per_s, &Figures::achieved_rate, &Figures::consumed_per_s,
       &Figures::lost_per_s, &Figures::cpu_ns_per_record, &Figures::wakeups_per_s,
       &Figures::p50_us, &Figures::p99_us, &Figures::max_us, &Figures::peak_rss_mib,
       &Figures::consumer_cpu_pct, &Figures::producer_cpu_ns_per_record})
    m.*field = med(field);
  return m;
}

Counts total(const std::vector<Figures>& runs) {
  Counts t;
  for (const Figures& f : runs) {
    t.produced += f.counts.produced;
    t.consumed += f.counts.consumed;
    t.lost += f.counts.lost;
  }
  return t;
}

// Delivery delays over every record of every round, in microseconds.
using Latency = LatencyHistogram::Summary;

Latency latency_of(const std::vector<Figures>& runs) {
  LatencyHistogram all;
  for (const Figures& f : runs) all.merge(f.latencies);
  return all.summary_us();
}

struct Row {
  std::string consumer;
  Config config;
  Figures figures;  // medians (its latencies unused: see latency)
  Counts totals;    // over all rounds
  Latency latency;  // over all rounds
  std::optional<double> ratio_to_ceiling;  // none when the ceiling consumed nothing
};

std::string ratio_text(const std::optional<double>& r) {
  char buf[32];
  if (!r) return "-";
  std::snprintf(buf, sizeof buf, "%.2f", *r);
  return buf;
}

void print_table(const std::vector<Row>& rows, const BenchArgs& args) {
  std::printf("\n%-22s %3s %5s %7s %11s %11s %9s %7s %8s %7s %9s %10s %8s %8s %9s %8s\n",
              "consumer", "P", "size", "rate", "produced/s", "consumed/s", "lost/s", "vs ceil",
              "cpu ns/r", "cpu %", "prod ns/r", "wakeups/s", "p50 us", "p99 us", "max us",
              "peak MiB");
  for (const Row& r : rows) {
    const Figures& f = r.figures;
    std::printf(
        "%-22s %3d %5u %7s %11.0f %11.0f %9.0f %7s %8.0f %7.2f %9.0f %10.0f %8.1f %8.1f %9.1f "
        "%8.1f\n",
        r.consumer.c_str(), r.config.producers, r.config.size, rate_text(r.config.rate).c_str(),
        f.produced_per_s, f.consumed_per_s, f.lost_per_s, ratio_text(r.ratio_to_ceiling).c_str(),
        f.cpu_ns_per_record, f.consumer_cpu_pct, f.producer_cpu_ns_per_record, f.wakeups_per_s,
        r.latency.p50_us, r.latency.p99_us, r.latency.max_us, f.peak_rss_mib);
  }
  std::printf("(batch %u, %d rounds of %.1f s, medians; delays over every record of all rounds; "
              "%zu pages per perf ring)\n",
              args.batch, args.rounds, args.duration_s, args.pages);
  // Every record is consumed or counted lost; anything else is a bug in a reader or the bench.
  for (const Row& r : rows) {
    const Counts& t = r.totals;
    if (t.consumed + t.lost != t.produced)
      std::printf("accounting error: %s (%d producers, size %u, rate %s): consumed %llu + lost "
                  "%llu != produced %llu\n",
                  r.consumer.c_str(), r.config.producers, r.config.size,
                  rate_text(r.config.rate).c_str(),
                  static_cast<unsigned long long>(t.consumed),
                  static_cast<unsigned long long>(t.lost),
                  static_cast<unsigned long long>(t.produced));
  }
}

void print_json(const std::vector<Row>& rows, const BenchArgs& args) {
  using tools::rounded;
  for (const Row& r : rows) {
    const Figures& f = r.figures;
    tools::print_json_line({
        {"consumer", r.consumer},
        {"producers", r.config.producers},
        {"size", r.config.size},
        {"batch", args.batch},
        {"rounds", args.rounds},
        {"rate", r.config.rate ? tools::Json(*r.config.rate) : tools::Json("max")},
        {"achieved_rate", rounded(f.achieved_rate, 0)},
        {"produced_per_s", rounded(f.produced_per_s, 0)},
        {"consumed_per_s", rounded(f.consumed_per_s, 0)},
        {"lost_per_s", rounded(f.lost_per_s, 0)},
        {"cpu_ns_per_record", rounded(f.cpu_ns_per_record, 1)},
        {"consumer_cpu_pct", rounded(f.consumer_cpu_pct, 3)},
        {"producer_cpu_ns_per_record", rounded(f.producer_cpu_ns_per_record, 1)},
        {"wakeups_per_s", rounded(f.wakeups_per_s, 0)},
        {"p50_us", rounded(f.p50_us, 2)},
        {"p99_us", rounded(f.p99_us, 2)},
        {"max_us", rounded(f.max_us, 2)},
        {"latency_p50_us", rounded(r.latency.p50_us, 2)},
        {"latency_p99_us", rounded(r.latency.p99_us, 2)},
        {"latency_max_us", rounded(r.latency.max_us, 2)},
        {"peak_rss_mib", rounded(f.peak_rss_mib, 1)},
        {"ratio_to_ceiling",
         r.ratio_to_ceiling ? tools::Json(rounded(*r.ratio_to_ceiling, 2)) : tools::Json()},
        {"produced", r.totals.produced},
        {"consumed", r.totals.consumed},
        {"lost", r.totals.lost},
    });
  }
}

const Row* find_row(const std::vector<Row>& rows, const std::string& consumer, int producers,
                    std::uint32_t size, std::optional<double> rate = std::nullopt) {
  for (const Row& r : rows)
    if (r.consumer == consumer && r.config.producers == producers && r.config.size == size &&
        r.config.rate == rate)
      return &r;
  return nullptr;
}

// The targets perfbuf is held to, judged on this run (1 producer, 16-byte
// records, unpaced).
void print_targets(const std::vector<Row>& rows, std::chrono::milliseconds bound) {
  const Row* pb = find_row(rows, "perfbuf", 1, 16);
  const Row* ceiling = find_row(rows, "ceiling", 1, 16);
  const Row* lib = find_row(rows, "libbpf-perfbuf", 1, 16);
  const Row* tuned = find_row(rows, "libbpf-perfbuf-tuned", 1, 16);
  const Row* ring = find_row(rows, "libbpf-ringbuf", 1, 16);
  const Row* low = find_row(rows, "perfbuf-low-latency", 1, 16);
  const Row* ordered = find_row(rows, "perfbuf-ordered", 1, 16);
  const Row* pb_ring = find_row(rows, "perfbuf-ringbuf", 1, 16);
  if (!pb && !(pb_ring && ring)) return;
  std::printf("\ntargets (1 producer, 16-byte records):\n");
  auto line = [](bool met, const std::string& text) {
    std::printf("  [%s] %s\n", met ? "met" : "MISSED", text.c_str());
  };
  char buf[256];
  // perfbuf on the BPF ring buffer, against libbpf's reader of the same ring.
  if (pb_ring && ring) {
    const double x =
        pb_ring->figures.consumed_per_s / std::max(ring->figures.consumed_per_s, 1.0);
    std::snprintf(buf, sizeof buf,
                  "perfbuf-ringbuf >= 1.5x libbpf-ringbuf with 0 lost: %.2fx (%.0f vs %.0f "
                  "records/s), %llu lost",
                  x, pb_ring->figures.consumed_per_s, ring->figures.consumed_per_s,
                  static_cast<unsigned long long>(pb_ring->totals.lost));
    line(x >= 1.5 && pb_ring->totals.lost == 0, buf);
  }
  if (!pb) return;
  const Figures& p = pb->figures;
  // Time order across CPUs may cost a little throughput, not much.
  if (ordered) {
    const double x = ordered->figures.consumed_per_s / std::max(p.consumed_per_s, 1.0);
    std::snprintf(buf, sizeof buf,
                  "perfbuf-ordered >= 0.8x perfbuf: %.2fx (%.0f vs %.0f records/s)", x,
                  ordered->figures.consumed_per_s, p.consumed_per_s);
    line(x >= 0.8, buf);
  }
  if (ceiling && !pb->ratio_to_ceiling) {
    std::printf("  [n/a] perfbuf against ceiling: the ceiling consumed nothing in this run\n");
  } else if (ceiling) {
    std::snprintf(buf, sizeof buf, "perfbuf at >= 90%% of ceiling with 0 lost: %.0f%%, %llu lost",
                  100 * *pb->ratio_to_ceiling, static_cast<unsigned long long>(pb->totals.lost));
    line(*pb->ratio_to_ceiling >= 0.9 && pb->totals.lost == 0, buf);
  }
  if (lib) {
    const double x = p.consumed_per_s / std::max(lib->figures.consumed_per_s, 1.0);
    std::snprintf(buf, sizeof buf, "perfbuf >= 10x libbpf-perfbuf: %.1fx", x);
    line(x >= 10, buf);
    std::snprintf(buf, sizeof buf, "perfbuf CPU per record <= half of libbpf-perfbuf: %.0f vs %.0f ns",
                  p.cpu_ns_per_record, lib->figures.cpu_ns_per_record);
    line(p.cpu_ns_per_record <= lib->figures.cpu_ns_per_record / 2, buf);
  }
  for (const Row* other : {tuned, ring}) {
    if (!other) continue;
    std::snprintf(buf, sizeof buf, "perfbuf ahead of %s: %.0f vs %.0f records/s",
                  other->consumer.c_str(), p.consumed_per_s, other->figures.consumed_per_s);
    line(p.consumed_per_s > other->figures.consumed_per_s, buf);
  }
  std::snprintf(buf, sizeof buf, "perfbuf p99 latency within its max_delay bound (%lld ms): %.1f us",
                static_cast<long long>(bound.count()), pb->latency.p99_us);
  line(pb->latency.p99_us <= bound.count() * 1000.0, buf);
  if (low && lib) {
    std::snprintf(buf, sizeof buf,
                  "perfbuf-low-latency p99 no worse than libbpf-perfbuf: %.1f vs %.1f us",
                  low->latency.p99_us, lib->latency.p99_us);
    line(low->latency.p99_us <= lib->latency.p99_us, buf);
  }
}

// The targets of a rate sweep (1 producer, 16-byte records), for perfbuf's
// default reader: delay at paced rates, throughput unpaced, CPU against
// libbpf's default at every paced rate, and CPU with no traffic.
void print_rate_targets(const std::vector<Row>& rows, const BenchArgs& args) {
  const auto row = [&](const char* consumer, std::optional<double> rate) {
    return find_row(rows, consumer, 1, 16, rate);
  };
  // Only for a sweep: without a paced (or idle) rate every line would be n/a but one.
  bool any = false;
  for (const auto& rate : args.rates) any = any || (rate && row("perfbuf", rate));
  if (!any) return;
  std::printf("\nrate targets (perfbuf default, 1 producer, 16-byte records):\n");
  auto line = [](std::optional<bool> met, const std::string& text) {
    std::printf("  [%s] %s\n", !met ? "n/a" : *met ? "met" : "MISSED", text.c_str());
  };
  char buf[256];
  for (const auto& [rate, bound_us] : {std::pair{100.0, 100.0}, std::pair{1000.0, 100.0},
                                       std::pair{10000.0, 100.0}, std::pair{100000.0, 1000.0}}) {
    const Row* pb = row("perfbuf", rate);
    if (!pb) {
      std::snprintf(buf, sizeof buf, "p99 delay <= %.0f us at %.0f/s: not in this run (--rate)",
                    bound_us, rate);
      line(std::nullopt, buf);
      continue;
    }
    std::snprintf(buf, sizeof buf, "p99 delay <= %.0f us at %.0f/s: %.1f us", bound_us, rate,
                  pb->latency.p99_us);
    line(pb->latency.p99_us <= bound_us, buf);
  }
  // Unpaced: at least 0.95 of the best fixed policy, losing nothing.
  if (const Row* pb = row("perfbuf", std::nullopt)) {
    const Row* best = nullptr;
    for (const char* fixed : {"perfbuf-watermark", "perfbuf-every-record", "perfbuf-every-64",
                              "perfbuf-low-latency"})
      if (const Row* r = row(fixed, std::nullopt))
        if (!best || r->figures.consumed_per_s > best->figures.consumed_per_s) best = r;
    if (!best) {
      line(std::nullopt, "at max >= 0.95x the best fixed perfbuf policy: none of them ran");
    } else {
      const double x = pb->figures.consumed_per_s / std::max(best->figures.consumed_per_s, 1.0);
      std::snprintf(buf, sizeof buf,
                    "at max >= 0.95x the best fixed perfbuf policy (%s) with 0 lost: %.2fx "
                    "(%.0f vs %.0f records/s), %llu lost",
                    best->consumer.c_str(), x, pb->figures.consumed_per_s,
                    best->figures.consumed_per_s,
                    static_cast<unsigned long long>(pb->totals.lost));
      line(x >= 0.95 && pb->totals.lost == 0, buf);
    }
  } else {
    line(std::nullopt, "at max >= 0.95x the best fixed perfbuf policy: max not in this run");
  }
  for (const auto& rate : args.rates) {
    if (!rate || *rate <= 0) continue;
    const Row* pb = row("perfbuf", rate);
    const Row* lib = row("libbpf-perfbuf", rate);
    if (!pb || !lib) continue;
    std::snprintf(buf, sizeof buf, "consumer CPU <= libbpf-perfbuf's at %.0f/s: %.2f%% vs %.2f%%",
                  *rate, pb->figures.consumer_cpu_pct, lib->figures.consumer_cpu_pct);
    line(pb->figures.consumer_cpu_pct <= lib->figures.consumer_cpu_pct, buf);
  }
  if (const Row* idle = row("perfbuf", 0.0)) {
    std::snprintf(buf, sizeof buf, "idle (rate 0) CPU <= 0.1%% of a core: %.3f%%",
                  idle->figures.consumer_cpu_pct);
    line(idle->figures.consumer_cpu_pct <= 0.1, buf);
  } else {
    line(std::nullopt, "idle CPU <= 0.1% of a core: rate 0 not in this run (--rate 0,...)");
  }
}

// Draws consumed records/s and CPU ns per record for every consumer, one bar
// per producer count, with gnuplot.
void plot(const std::vector<Row>& rows, const BenchArgs& args) {
  char dir_template[] = "/tmp/perfbuf-plot-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) throw Error(errno, "mkdtemp for the plot data: " + std::string(std::strerror(errno)));
  const std::string data = std::string(dir) + "/data.txt";
  const std::string script = std::string(dir) + "/plot.gp";
  const std::uint32_t size = args.sizes.front();
  const std::optional<double> rate = args.rates.front();
  {
    std::ofstream out(data);
    out << "# consumer";
    for (int p : args.producers) out << " rate_p" << p << " cpu_p" << p;
    out << "\n";
    for (const std::string& c : args.consumers) {
      out << c;
      for (int p : args.producers) {
        const Row* r = find_row(rows, c, p, size, rate);
        out << " " << (r ? r->figures.consumed_per_s / 1e6 : 0) << " "
            << (r ? r->figures.cpu_ns_per_record : 0);
      }
      out << "\n";
    }
  }
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 1200,900 font ',10'\n"
       << "set output '" << args.plot << "'\n"
       << "set multiplot layout 2,1 title 'perfbuf bench: " << size << "-byte records, batch "
       << args.batch << " (medians of " << args.rounds << " rounds)'\n"
       << "set style data histograms\nset style histogram cluster gap 1\n"
       << "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset grid ytics\n"
       << "set xtics rotate by -20 scale 0\nset key top right\nset yrange [0:*]\n"
       << "set ylabel 'consumed (M records/s)'\nplot ";
    for (std::size_t i = 0; i < args.producers.size(); ++i)
      gp << (i ? ", " : "") << "'" << data << "' using " << 2 + 2 * i
         << (i ? "" : ":xtic(1)") << " title '" << args.producers[i] << " producer"
         << (args.producers[i] > 1 ? "s" : "") << "'";
    gp << "\nset ylabel 'consumer CPU (ns per record)'\nset logscale y\nset yrange [1:*]\nplot ";
    for (std::size_t i = 0; i < args.producers.size(); ++i)
      gp << (i ? ", " : "") << "'" << data << "' using " << 3 + 2 * i
         << (i ? "" : ":xtic(1)") << " title '" << args.producers[i] << " producer"
         << (args.producers[i] > 1 ? "s" : "") << "'";
    gp << "\nunset multiplot\n";
  }
  const std::string cmd = "gnuplot '" + script + "'";
  const int rc = std::system(cmd.c_str());
  std::remove(data.c_str());
  std::remove(script.c_str());
  ::rmdir(dir);
  if (rc != 0)
    throw Error(ENOENT, "gnuplot failed (exit " + std::to_string(rc) +
                            "); install it with scripts/install-deps.sh (package gnuplot-nox)");
}

int run(const BenchArgs& args) {
  const bool progress = isatty(STDERR_FILENO);
  std::vector<Row> rows;
  std::vector<Config> configs;
  for (int producers : args.producers)
    for (std::uint32_t size : args.sizes)
      for (const std::optional<double>& rate : args.rates) configs.push_back({producers, size, rate});
  for (const Config& config : configs) {
    std::map<std::string, std::vector<Figures>> runs;
    for (int round = 0; round < args.rounds; ++round) {
      // Interleave: each round starts with a different consumer.
      std::vector<std::string> order = args.consumers;
      std::rotate(order.begin(), order.begin() + round % order.size(), order.end());
      for (const std::string& name : order) {
        if (progress)
          std::fprintf(stderr, "\rproducers %d, size %u, rate %s, round %d/%d: %-22s",
                       config.producers, config.size, rate_text(config.rate).c_str(), round + 1,
                       args.rounds, name.c_str());
        runs[name].push_back(run_once(name, config, args));
      }
    }
    if (progress) std::fprintf(stderr, "\r%100s\r", "");
    const double ceiling = runs.count("ceiling") ? median(runs["ceiling"]).consumed_per_s : 0;
    for (const std::string& name : args.consumers) {
      Row row{name, config, median(runs[name]), total(runs[name]), latency_of(runs[name]),
              std::nullopt};
      if (ceiling > 0) row.ratio_to_ceiling = row.figures.consumed_per_s / ceiling;
      rows.push_back(row);
    }
  }
  if (args.json) {
    print_json(rows, args);
  } else {
    std::printf("perfbuf bench on %u CPUs\n", std::thread::hardware_concurrency());
    print_table(rows, args);
    print_targets(rows, Options{}.max_delay);
    print_rate_targets(rows, args);
  }
  std::fflush(stdout);
  if (!args.plot.empty()) {
    plot(rows, args);
    std::fprintf(stderr, "plot written to %s\n", args.plot.c_str());
  }
  return 0;
}

int bench(const BenchArgs& args) {
  try {
    if (!args.sink.empty())
      return run_sink_bench({.url = args.sink,
                             .stream = args.stream,
                             .producers = args.producers,
                             .sizes = args.sizes,
                             .batch = args.batch,
                             .duration_s = args.duration_s,
                             .rounds = args.rounds,
                             .pages = args.pages,
                             .frame_bytes = args.frame_bytes,
                             .json = args.json});
    return run(args);
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "\nperfbuf bench: %s\n", e.what());
    return 1;
  } catch (const tools::SinkError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "perfbuf bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace

tools::Command add_bench_command(CLI::App& perfbuf) {
  CLI::App* app = perfbuf.add_subcommand("bench", kDescription);
  tools::configure(*app);
  auto args = std::make_shared<BenchArgs>();
  add_options(*app, *args);
  return {app, [args] { return bench(*args); }};
}

}  // namespace perfbuf::bench
