#include "trace_command.h"

#include <perfbuf/flight_recorder.h>
#include <perfbuf/reader.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "json_lines.h"
#include "latency_histogram.h"
#include "sink_cli.h"
#include "write_tracer.h"

namespace perfbuf::tools {

namespace {

std::size_t sys_page_size() { return static_cast<std::size_t>(getpagesize()); }

constexpr const char* kDescription =
    "count write(2) calls through a perf buffer, print events/s\n"
    "Counts write(2) calls seen by a BPF program, one record per call through a perf\n"
    "buffer, checks each record's cookie and prints the rate once a second.\n";

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_stop_signals = 0;  // SIGINT/SIGTERM received so far
void on_signal(int) {
  g_stop = 1;
  g_stop_signals = g_stop_signals + 1;
}
volatile sig_atomic_t g_dump = 0;  // --flight-recorder: SIGUSR1 asks for the records kept
void on_dump_signal(int) { g_dump = 1; }

// trace's standard output. Signals interrupt a write blocked on a reader that
// does not keep up (no SA_RESTART), and on that error the C library's own
// stream drops its whole buffer: up to 64 KiB of event lines already
// formatted would never be seen. This one writes on after the first Ctrl-C,
// so those lines still reach a slow reader, and gives up at the second,
// writing nothing more: a reader that never reads holds the tool no longer.
bool g_output_given_up = false;
ssize_t write_stdout(void*, const char* data, std::size_t size) {
  std::size_t done = 0;
  while (!g_output_given_up && done < size) {
    const ssize_t n = ::write(STDOUT_FILENO, data + done, size - done);
    if (n >= 0)
      done += static_cast<std::size_t>(n);
    else if (errno != EINTR || g_stop_signals >= 2)
      g_output_given_up = true;
  }
  return done == size ? static_cast<ssize_t>(size) : -1;
}

// Makes `stdout` write_stdout() with a 64 KiB buffer for as long as it lives.
class TraceOutput {
 public:
  TraceOutput() {
    FILE* out = fopencookie(nullptr, "w", {nullptr, write_stdout, nullptr, nullptr});
    if (!out) return;  // (no memory) the C library's stream then
    std::fflush(stdout);
    std::setvbuf(out, buffer_, _IOFBF, sizeof buffer_);
    saved_ = stdout;
    stdout = out;
  }
  ~TraceOutput() {
    if (!saved_) return;
    std::fclose(stdout);  // writes what is left
    stdout = saved_;
  }
  TraceOutput(const TraceOutput&) = delete;
  TraceOutput& operator=(const TraceOutput&) = delete;

 private:
  FILE* saved_ = nullptr;
  char buffer_[1 << 16];
};

struct TraceArgs {
  AttachMode attach = AttachMode::automatic;
  double duration_s = 0;  // 0: until a signal
  std::uint32_t pid = 0;
  std::size_t pages = 0;  // 0: the library default
  Transport transport = Transport::perf;
  bool events = false;
  bool ordered = false;
  bool json = false;
  SinkArgs sink;
  std::size_t flight_bytes = 0;  // --flight-recorder: ring bytes per CPU; 0: off
};

// "64K", "1M", "1G" or a number of bytes; a power of two of pages up to 1 GiB.
std::optional<std::size_t> parse_flight_size(const std::string& text) {
  std::string digits = text;
  std::size_t unit = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k': case 'K': unit = std::size_t(1) << 10; break;
      case 'm': case 'M': unit = std::size_t(1) << 20; break;
      case 'g': case 'G': unit = std::size_t(1) << 30; break;
      default: break;
    }
    if (unit != 1) digits.pop_back();
  }
  const auto n = parse_number<std::size_t>(digits, 1, (std::size_t(1) << 30) / unit);
  if (!n) return std::nullopt;
  const std::size_t bytes = *n * unit;
  if (bytes % sys_page_size() != 0 || !std::has_single_bit(bytes / sys_page_size()))
    return std::nullopt;
  return bytes;
}

// The options of `perfbuf trace`, parsed into args.
void add_options(CLI::App& app, TraceArgs& args) {
  add_parsed(app, "--attach", "MODE",
             "auto (default), kprobe, tracepoint or raw_tracepoint;\n"
             "auto tries them in that order and says which it used",
             "takes auto, kprobe, tracepoint or raw_tracepoint",
             [](const std::string& v) { return parse_attach_mode(v); },
             [&args](AttachMode m) { args.attach = m; });
  add_parsed(app, "--duration", "SEC", "stop after SEC seconds (default: run until Ctrl-C)",
             "takes a number of seconds greater than 0", number_in<double>(0.001, 1e9),
             [&args](double d) { args.duration_s = d; });
  add_parsed(app, "--pid", "PID", "only count writes by process PID",
             "takes a process id (a positive integer)",
             number_in<std::uint32_t>(1, 0x3fffffff), [&args](std::uint32_t p) {
               if (::kill(static_cast<pid_t>(p), 0) != 0 && errno == ESRCH)
                 throw CLI::ValidationError("--pid " + std::to_string(p), "no such process");
               args.pid = p;
             });
  add_parsed(app, "--transport", "T",
             "perf (default: a perf event array, one ring per CPU) or\n"
             "ringbuf (a BPF ring buffer shared by all CPUs)",
             "takes perf or ringbuf", [](const std::string& v) { return parse_transport(v); },
             [&args](Transport t) { args.transport = t; });
  add_parsed(app, "--pages", "N",
             "ring size in pages, a power of two: per CPU for perf\n"
             "(default: 512 KiB worth), in all for ringbuf (default:\n"
             "512 KiB per CPU)",
             "takes a power of two from 1 to 262144",
             [](const std::string& v) {
               const auto p = parse_number<std::size_t>(v, 1, std::size_t(1) << 18);
               return p && std::has_single_bit(*p) ? p : std::nullopt;
             },
             [&args](std::size_t p) { args.pages = p; });
  add_parsed(app, "--flight-recorder", "SIZE",
             "keep only the newest SIZE bytes of records per CPU (e.g.\n"
             "64K, 1M) instead of printing or counting them; print\n"
             "them on SIGUSR1 and at exit",
             "takes a ring size per CPU that is a power of two of pages, " +
                 std::to_string(sys_page_size() / 1024) + "K to 1G (e.g. 64K, 1M)",
             [](const std::string& v) { return parse_flight_size(v); },
             [&args](std::size_t b) { args.flight_bytes = b; });
  app.add_flag("--events", args.events, "print every event: time, cpu, pid, tid");
  app.add_flag("--ordered", args.ordered, "events of all CPUs in time order (perf transport)");
  app.add_flag("--json", args.json, "one JSON object per line instead of text");
  add_sink_options(app, args.sink);
  // Checked once every option is in.
  app.callback([&args] {
    check_sink_args(args.sink);
    if (args.ordered && args.transport == Transport::ringbuf)
      throw CLI::ValidationError("--ordered",
                                 "is for --transport perf: a ring buffer is one ring, already in "
                                 "the order its records were reserved");
    if (args.flight_bytes) {
      const char* other = args.transport == Transport::ringbuf ? "--transport ringbuf"
                          : args.ordered                       ? "--ordered"
                          : args.events                        ? "--events"
                          : args.pages                         ? "--pages"
                          : args.sink.enabled()                ? "--sink"
                                                               : nullptr;
      if (other)
        throw CLI::ValidationError(
            "--flight-recorder", std::string("cannot be combined with ") + other +
                                     ": it keeps per-CPU perf rings of its own size and "
                                     "prints what they hold, in time order, on SIGUSR1 and at exit");
    }
  });
}

struct Counts {
  std::uint64_t received = 0;
  std::uint64_t cookie_errors = 0;
  // --events: how late each printed event reached the reader, from the
  // program's stamp (CLOCK_MONOTONIC) to its handler.
  std::unique_ptr<bench::LatencyHistogram> delays;
};

// The delays of the events printed, in the summary: JSON fields, or a text line.
void add_delays(Json& summary, const Counts& c) {
  if (!c.delays) return;
  summary["events_printed"] = c.delays->count();
  if (c.delays->count() == 0) return;
  const bench::LatencyHistogram::Summary d = c.delays->summary_us();
  summary["delay_p50_us"] = rounded(d.p50_us, 1);
  summary["delay_p99_us"] = rounded(d.p99_us, 1);
  summary["delay_max_us"] = rounded(d.max_us, 1);
}
void print_delays(const Counts& c) {
  if (!c.delays || c.delays->count() == 0) return;
  const bench::LatencyHistogram::Summary d = c.delays->summary_us();
  std::printf("  delay from the program to the reader over %" PRIu64
              " events: p50 %.1f us, p99 %.1f us, max %.1f us\n",
              c.delays->count(), d.p50_us, d.p99_us, d.max_us);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Every record that did not arrive: dropped on a full perf ring, or an output
// the program saw fail.
std::uint64_t all_lost(const CpuStats& s) { return s.lost + s.failed; }

// How the reader kept up with a ring (or, from total_stats(), all of them):
// the record bytes it handed out, its drains and the time they took (handlers
// included), the most bytes a drain found waiting (how near the ring came
// to full), how often its CPU came back online, and how often the default
// wakeup policy switched it between a wakeup per record and polling.
void add_ring_telemetry(Json& object, const CpuStats& s) {
  object["bytes"] = s.bytes;
  object["drains"] = s.drains;
  object["drain_ns"] = s.drain_ns;
  object["fill_high_water_bytes"] = s.fill_high_water;
  object["reopens"] = s.reopens;
  object["switches"] = s.switches;
}

void print_summary(const TraceArgs& args, AttachMode mode, const Reader& reader, const Counts& c,
                   double seconds, const NatsSink* sink, const SinkCounts& sink_counts) {
  const CpuStats total = reader.total_stats();
  const double rate = seconds > 0 ? c.received / seconds : 0;
  if (args.json) {
    Json per_cpu = Json::array();
    for (const CpuStats& s : reader.stats()) {
      Json entry = {{"cpu", s.cpu},
                    {"records", s.records},
                    {"lost", s.lost},
                    {"send_failures", s.failed},
                    {"wakeups", s.wakeups}};
      add_ring_telemetry(entry, s);
      per_cpu.push_back(std::move(entry));
    }
    Json summary = {{"type", "summary"},
                    {"attach", to_string(mode)},
                    {"received", c.received},
                    {"lost", all_lost(total)},
                    {"cookie_errors", c.cookie_errors},
                    {"seconds", rounded(seconds, 3)},
                    {"events_per_s", std::llround(rate)},
                    {"attempts", total.attempts},
                    {"kernel_lost", total.lost},
                    {"send_failures", total.failed},
                    {"wakeups", total.wakeups}};
    add_ring_telemetry(summary, total);
    add_delays(summary, c);
    summary["per_cpu"] = std::move(per_cpu);
    if (sink) summary["sink"] = sink_summary_json(args.sink, *sink, sink_counts, all_lost(total));
    print_json_line(summary);
  } else {
    std::printf("summary: received %" PRIu64 " events in %.2f s (%.0f events/s), lost %" PRIu64
                " (%" PRIu64 " outputs failed in the program), cookie errors %" PRIu64
                ", attached via %s\n",
                c.received, seconds, rate, all_lost(total), total.failed, c.cookie_errors,
                to_string(mode));
    print_delays(c);
    for (const CpuStats& s : reader.stats())
      std::printf("  cpu %d: %" PRIu64 " records, %" PRIu64 " lost, %" PRIu64 " wakeups\n",
                  s.cpu, s.records, all_lost(s), s.wakeups);
    if (sink)
      std::fputs(sink_summary_text(args.sink, *sink, sink_counts, all_lost(total)).c_str(), stdout);
  }
  if (sink && sink_counts.dropped)
    std::fprintf(stderr,
                 "perfbuf trace: the sink dropped %" PRIu64 " of %" PRIu64
                 " records (not acknowledged by the server; last error: %s)\n",
                 sink_counts.dropped, sink_counts.received, sink_counts.last_error.c_str());
  if (c.cookie_errors)
    std::fprintf(stderr, "perfbuf trace: %" PRIu64 " records had a wrong cookie\n",
                 c.cookie_errors);
}

// Ctrl-C ends a wait for records at once; one that lands between two waits is
// seen within kMaxWait. Handlers stop a drain as soon as it lands, and output
// stays interruptible if whoever reads it stalls.
constexpr std::chrono::milliseconds kMaxWait{100};

// stop_signals are blocked while the tracer starts, and unblocked from then on.
int run(const TraceArgs& args, const sigset_t& stop_signals) {
  using clock = std::chrono::steady_clock;
  // A ring buffer gets as much memory as the perf rings would have together.
  const std::size_t ringbuf_bytes =
      args.pages ? args.pages * sys_page_size()
                 : std::bit_ceil(kDefaultRingBytes * online_cpus().size());  // a power of two
  if (ringbuf_bytes > (std::size_t{1} << 31))
    throw Error(E2BIG, "--pages " + std::to_string(args.pages) + ": a ring buffer is at most 2 GiB");
  WriteTracer tracer({.only_tgid = args.pid,
                      .ignore_tgid = static_cast<std::uint32_t>(getpid()),
                      .transport = args.transport,
                      .ringbuf_bytes = static_cast<std::uint32_t>(ringbuf_bytes)});
  // Connected and the stream there before the program is attached: a server
  // that is not there fails the command before it starts.
  std::unique_ptr<NatsSink> sink;
  if (args.sink.enabled()) sink = std::make_unique<NatsSink>(args.sink.options());
  Counts counts;
  if (args.events) counts.delays = std::make_unique<bench::LatencyHistogram>();
  bool final_drain = false;
  auto on_sample = [&](const Sample& s) {
    const std::optional<write_event> checked = checked_write_event(s);
    if (checked) ++counts.received; else ++counts.cookie_errors;
    // Every record received is shipped, also those after Ctrl-C.
    if (checked && sink)
      sink->add(args.transport == Transport::perf ? s.time_ns : checked->time_ns, s.cpu,
                {reinterpret_cast<const std::uint8_t*>(s.data.data()), sizeof(write_event)});
    // After Ctrl-C no more event lines: stop this drain at once; the final one
    // after detaching only counts what is left, so the summary is complete.
    if (g_stop) return final_drain ? Action::next : Action::stop;
    if (!checked || !args.events) return Action::next;
    const write_event& e = *checked;
    const std::uint64_t delay_ns = bench::ns_since(e.time_ns);
    counts.delays->record(delay_ns);
    // A perf record's kernel stamp (the one --ordered sorts by); a ring
    // buffer's records have none, so the program's own.
    const std::uint64_t time_ns = args.transport == Transport::perf ? s.time_ns : e.time_ns;
    if (args.json)
      print_json_line(
          {{"type", "event"}, {"time_ns", time_ns}, {"cpu", s.cpu}, {"pid", e.tgid}, {"tid", e.tid},
           {"delay_us", rounded(delay_ns / 1e3, 1)}});
    else
      std::printf("%" PRIu64 ".%09" PRIu64 " cpu %d pid %u tid %u\n", time_ns / 1000000000,
                  time_ns % 1000000000, s.cpu, e.tgid, e.tid);
    return Action::next;
  };
  // The rings exist before the program is attached, so no record is missed.
  Reader reader(tracer.events_map(), on_sample, {},
                [&] {
                  Options o;
                  o.pages_per_cpu = args.pages;
                  o.timestamps = args.events || sink;  // a sink sends each record's time
                  o.ordered = args.ordered;
                  return o;
                }());
  reader.count_outputs(tracer.counts_map());  // outputs that fail are reported too
  std::vector<std::string> notes;
  const AttachMode mode = tracer.attach(args.attach, notes);

  if (args.json) {
    Json start = {{"type", "start"},
                  {"attach", to_string(mode)},
                  {"transport", to_string(args.transport)},
                  {"cpus", online_cpus().size()},
                  {"rings", reader.ring_count()},
                  {"pages", args.transport == Transport::perf ? reader.options().pages_per_cpu
                                                              : ringbuf_bytes / sys_page_size()}};
    if (sink) {
      start["sink"] = args.sink.url;
      start["subject"] = args.sink.subject;
      start["stream"] = sink->stream();
    }
    print_json_line(start);
  } else {
    for (const std::string& n : notes) std::printf("skipped %s\n", n.c_str());
    std::printf("tracing write(2) via %s on %zu CPUs%s%s; Ctrl-C to stop\n", to_string(mode),
                online_cpus().size(),
                args.transport == Transport::ringbuf ? " through a ring buffer" : "",
                args.pid ? (" for pid " + std::to_string(args.pid)).c_str() : "");
    if (sink)
      std::printf("shipping records to %s, subject %s, stream %s\n", args.sink.url.c_str(),
                  args.sink.subject.c_str(), std::string(sink->stream()).c_str());
  }
  std::fflush(stdout);
  sigprocmask(SIG_UNBLOCK, &stop_signals, nullptr);  // a Ctrl-C during start-up lands here

  const clock::time_point start = clock::now();
  const clock::time_point end =
      args.duration_s > 0 ? start + std::chrono::duration_cast<clock::duration>(
                                        std::chrono::duration<double>(args.duration_s))
                          : clock::time_point::max();
  clock::time_point next_tick = start + std::chrono::seconds(1);
  std::uint64_t at_last_tick = 0;
  int status = 0;
  while (!g_stop) {
    const clock::time_point now = clock::now();
    if (sink) {
      sink->set_kernel_lost(all_lost(reader.total_stats()));
      sink->flush_due(now);
    }
    if (now >= next_tick) {
      const std::uint64_t n = counts.received - at_last_tick;
      const CpuStats total = reader.total_stats();
      const std::uint64_t lost = all_lost(total);
      at_last_tick = counts.received;
      if (args.json) {
        Json interval = {{"type", "interval"},
                         {"second", std::llround(seconds_since(start))},
                         {"events_per_s", n},
                         {"received", counts.received},
                         {"lost", lost},
                         {"cookie_errors", counts.cookie_errors}};
        add_ring_telemetry(interval, total);  // so far, as received and lost
        if (sink) {
          const SinkCounts c = sink->counts();
          interval["sink"] = {{"published", c.published_records},
                              {"acknowledged", c.acknowledged},
                              {"dropped", c.dropped}};
        }
        print_json_line(interval);
      } else if (lost == 0 && counts.cookie_errors == 0)
        std::printf("recv %" PRIu64 " events/s\n", n);
      else  // losses and bad records are news: say them every second once there are any
        std::printf("recv %" PRIu64 " events/s (lost %" PRIu64 ", cookie errors %" PRIu64
                    " so far)\n",
                    n, lost, counts.cookie_errors);
      std::fflush(stdout);
      next_tick += std::chrono::seconds(1);
      continue;
    }
    if (now >= end) break;
    const clock::time_point frame_due =
        sink ? sink->next_deadline().value_or(clock::time_point::max()) : clock::time_point::max();
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(now, std::min({next_tick, end, now + kMaxWait, frame_due})) - now);
    const auto r = reader.poll(wait);
    if (!r && !r.interrupted()) {
      std::fprintf(stderr, "perfbuf trace: %s\n", r.error().what());
      status = 1;
      break;
    }
  }
  const double seconds = seconds_since(start);
  // Detach first, then take what is still in the rings: the summary is complete.
  tracer.detach();
  final_drain = true;
  if (const auto r = reader.consume(); !r) {
    std::fprintf(stderr, "perfbuf trace: %s\n", r.error().what());
    status = 1;
  }
  SinkCounts sink_counts;
  if (sink) {
    sink->set_kernel_lost(all_lost(reader.total_stats()));
    sink_counts = sink->finish();
  }
  print_summary(args, mode, reader, counts, seconds, sink.get(), sink_counts);
  std::fflush(stdout);
  return status;
}

// Prints what the flight recorder holds: a snapshot line, then one line per
// record, oldest first, the CPUs merged by time.
void print_flight_snapshot(const TraceArgs& args, FlightRecorder& recorder,
                           const WriteTracer& tracer, const char* reason) {
  const Snapshot snap = recorder.snapshot();
  std::uint64_t cookie_errors = 0;
  for (const FlightRecord& r : snap.records) {
    write_event e;
    if (!r.read(e) || e.cookie != PERFBUF_WRITE_COOKIE) ++cookie_errors;
  }
  if (args.json) {
    Json per_cpu = Json::array();
    for (const FlightCpu& c : snap.cpus)
      per_cpu.push_back({{"cpu", c.cpu},
                         {"records", c.records},
                         {"lost", c.lost},
                         {"overwritten", !c.complete}});
    print_json_line({{"type", "snapshot"},
                     {"reason", reason},
                     {"records", snap.records.size()},
                     {"lost", snap.lost},
                     {"cookie_errors", cookie_errors},
                     {"attempts", tracer.attempts()},
                     {"per_cpu", std::move(per_cpu)}});
  } else {
    std::printf("snapshot on %s: %zu records kept of %" PRIu64 " writes seen, lost %" PRIu64
                " while copying, cookie errors %" PRIu64 "\n",
                reason, snap.records.size(), tracer.attempts(), snap.lost, cookie_errors);
  }
  for (const FlightRecord& r : snap.records) {
    write_event e{};
    const bool ok = r.read(e) && e.cookie == PERFBUF_WRITE_COOKIE;
    if (args.json) {
      Json line = {{"type", "record"}, {"time_ns", r.time_ns}, {"cpu", r.cpu}};
      if (ok) {
        line["pid"] = e.tgid;
        line["tid"] = e.tid;
        line["cookie"] = e.cookie;
      } else {
        line["bad_cookie"] = true;
      }
      print_json_line(line);
    } else if (ok) {
      std::printf("%" PRIu64 ".%09" PRIu64 " cpu %d pid %u tid %u\n", r.time_ns / 1000000000,
                  r.time_ns % 1000000000, r.cpu, e.tgid, e.tid);
    } else {
      std::printf("%" PRIu64 ".%09" PRIu64 " cpu %d bad cookie\n", r.time_ns / 1000000000,
                  r.time_ns % 1000000000, r.cpu);
    }
  }
  std::fflush(stdout);
}

// --flight-recorder: the program writes into overwritable rings nobody reads;
// SIGUSR1, and the end, print what they hold.
int run_flight_recorder(const TraceArgs& args, const sigset_t& signals) {
  using clock = std::chrono::steady_clock;
  WriteTracer tracer({.only_tgid = args.pid,
                      .ignore_tgid = static_cast<std::uint32_t>(getpid()),
                      .transport = Transport::perf});
  FlightOptions options;
  options.bytes_per_cpu = args.flight_bytes;
  FlightRecorder recorder(tracer.events_map(), options);
  std::vector<std::string> notes;
  const AttachMode mode = tracer.attach(args.attach, notes);
  if (args.json) {
    print_json_line({{"type", "start"},
                     {"attach", to_string(mode)},
                     {"transport", "perf"},
                     {"cpus", recorder.cpus().size()},
                     {"flight_recorder_bytes", recorder.ring_bytes()}});
  } else {
    for (const std::string& n : notes) std::printf("skipped %s\n", n.c_str());
    std::printf("recording write(2) via %s on %zu CPUs%s, keeping the newest %zu bytes of "
                "records per CPU; SIGUSR1 (kill -USR1 %d) prints them, Ctrl-C prints them and "
                "stops\n",
                to_string(mode), recorder.cpus().size(),
                args.pid ? (" for pid " + std::to_string(args.pid)).c_str() : "",
                recorder.ring_bytes(), static_cast<int>(getpid()));
  }
  std::fflush(stdout);
  sigprocmask(SIG_UNBLOCK, &signals, nullptr);  // a signal during start-up lands here

  const clock::time_point end =
      args.duration_s > 0 ? clock::now() + std::chrono::duration_cast<clock::duration>(
                                               std::chrono::duration<double>(args.duration_s))
                          : clock::time_point::max();
  while (!g_stop) {
    if (g_dump) {
      g_dump = 0;
      print_flight_snapshot(args, recorder, tracer, "SIGUSR1");
      continue;
    }
    const clock::time_point now = clock::now();
    if (now >= end) break;
    // A signal ends the sleep at once (no SA_RESTART); one that lands just
    // before it is seen within kMaxWait.
    const auto wait = std::min<clock::duration>(end - now, kMaxWait);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    nanosleep(&ts, nullptr);
  }
  tracer.detach();  // the last records are in the rings: print them
  print_flight_snapshot(args, recorder, tracer, "exit");
  return 0;
}

int trace(const TraceArgs& args) {
  // No SA_RESTART: a signal interrupts the wait (or a blocked write), the loop
  // sees g_stop and ends with a summary. Blocked until tracing starts, so that
  // loading and attaching are never interrupted half-way.
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (args.flight_bytes) {
    struct sigaction dump {};
    dump.sa_handler = on_dump_signal;
    sigemptyset(&dump.sa_mask);
    sigaction(SIGUSR1, &dump, nullptr);
    sigaddset(&stop_signals, SIGUSR1);
  }
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  static TraceOutput output;  // (static: its buffer is not on the stack)
  try {
    return args.flight_bytes ? run_flight_recorder(args, stop_signals) : run(args, stop_signals);
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "perfbuf trace: %s\n", e.what());
    return 1;
  } catch (const SinkError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "perfbuf trace: %s\n", e.what());
    return 1;
  }
}

}  // namespace

Command add_trace_command(CLI::App& perfbuf) {
  CLI::App* app = perfbuf.add_subcommand("trace", kDescription);
  configure(*app);
  auto args = std::make_shared<TraceArgs>();
  add_options(*app, *args);
  return {app, [args] { return trace(*args); }};
}

}  // namespace perfbuf::tools
