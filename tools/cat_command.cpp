#include "cat_command.h"

#include <perfbuf/reader.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "btf_decoder.h"
#include "json_lines.h"
#include "nats_source.h"
#include "sink_cli.h"

namespace perfbuf::tools {

namespace {

constexpr const char* kDescription =
    "print the records of any program's perf event array or ring buffer, decoded with BTF\n"
    "Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY or BPF_MAP_TYPE_RINGBUF that another program\n"
    "writes, and prints each record: decoded with the BTF of --type, or in hex.\n"
    "\n"
    "A perf event array holds one ring per CPU, stored in the map by its reader: as\n"
    "`bpftool map event_pipe` does, perfbuf cat stores its own rings in the slots, so\n"
    "a reader that held them (the program's own user space) gets no records while it\n"
    "runs, and the slots are left empty when it ends; it warns when slots were held.\n"
    "A ring buffer has one consumer position: another reader of the same ring buffer\n"
    "takes records from it too, so each record reaches one of them.\n"
    "\n"
    "The type's BTF: --btf FILE (a BPF ELF object or raw BTF), else the BTF of the map,\n"
    "else that of the programs that use the map, whichever has --type.\n"
    "\n"
    "--sink nats://HOST:PORT ships the records to NATS JetStream instead of printing\n"
    "them; --source nats://HOST:PORT --subject SUBJ reads such a stream back, and\n"
    "reports gaps in each sender's record sequence numbers.\n"
    "Needs root (CAP_SYS_ADMIN to open a map by id). Exit: 0 done, 1 failure (no such\n"
    "map, wrong map type, type not found, BTF unreadable, no permission, a server\n"
    "that cannot be reached, corrupt frames read back), 2 bad usage.\n";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

enum class Format { text, json, hex };

struct CatArgs {
  std::optional<std::uint32_t> map_id;
  std::string pinned;
  std::string map_name;
  std::string btf_path;
  std::string type_name;
  Format format = Format::text;
  std::uint64_t count = 0;  // 0: no limit
  double duration_s = 0;    // 0: until a signal
  bool ordered = false;
  std::size_t pages = 0;
  std::string source;  // nats://...: read a stream back instead of a map
  SinkArgs sink;
};

// A failure that ends the command with exit 1 and this message.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct BtfDeleter {
  void operator()(struct btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<struct btf, BtfDeleter>;

const char* map_type_name(std::uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY: return "perf_event_array";
    case BPF_MAP_TYPE_RINGBUF: return "ringbuf";
    default: {
      const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
      return name ? name : "unknown";
    }
  }
}

std::string permission_hint(int err) {
  return err == EPERM || err == EACCES ? " (perfbuf cat needs root, or CAP_SYS_ADMIN)" : "";
}

struct OpenMap {
  Fd fd;
  bpf_map_info info{};
};

bpf_map_info map_info(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    const int err = errno;
    throw Failure(fmt::format("bpf_obj_get_info_by_fd: {}", std::strerror(err)));
  }
  return info;
}

OpenMap open_by_id(std::uint32_t id) {
  const int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw Failure(fmt::format("no map with id {}", id));
    throw Failure(fmt::format("cannot open map id {}: {}{}", id, std::strerror(err),
                              permission_hint(err)));
  }
  OpenMap m{Fd(fd), {}};
  m.info = map_info(fd);
  return m;
}

OpenMap open_pinned(const std::string& path) {
  // Asked first: for a missing path the kernel may answer EPERM rather than ENOENT.
  if (struct stat st {}; stat(path.c_str(), &st) != 0 && errno == ENOENT)
    throw Failure(fmt::format("no pinned BPF object at {} (is bpffs mounted there?)", path));
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT)
      throw Failure(fmt::format("no pinned BPF object at {} (is bpffs mounted there?)", path));
    throw Failure(fmt::format("cannot open pinned object {}: {}{}", path, std::strerror(err),
                              permission_hint(err)));
  }
  OpenMap m{Fd(fd), {}};
  // A pinned program or link opens too: the fd's kind says which it is.
  char link[64] = {};
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (readlink(self.c_str(), link, sizeof link - 1) < 0 || std::strcmp(link, "anon_inode:bpf-map") != 0)
    throw Failure(fmt::format("{} is not a BPF map ({})", path, link));
  m.info = map_info(fd);
  return m;
}

OpenMap open_by_name(const std::string& name) {
  // Map names are cut to BPF_OBJ_NAME_LEN - 1 characters by the kernel.
  const std::string wanted = name.substr(0, BPF_OBJ_NAME_LEN - 1);
  std::vector<OpenMap> found;
  __u32 id = 0;
  int denied = 0;
  for (int i = 0; i < 1000000 && bpf_map_get_next_id(id, &id) == 0; ++i) {
    const int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) {
      if (errno == EPERM || errno == EACCES) denied = errno;
      continue;  // gone since, or not ours to open
    }
    OpenMap m{Fd(fd), {}};
    m.info = map_info(fd);
    if (wanted == m.info.name) found.push_back(std::move(m));
  }
  if (found.empty() && denied)
    throw Failure(fmt::format("cannot open maps to look for '{}': {}{}", name,
                              std::strerror(denied), permission_hint(denied)));
  if (found.empty()) throw Failure(fmt::format("no map named '{}'", name));
  // Among maps of that name, only those perfbuf cat can read are candidates.
  if (found.size() > 1)
    std::erase_if(found, [](const OpenMap& m) {
      return m.info.type != BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.info.type != BPF_MAP_TYPE_RINGBUF;
    });
  if (found.size() > 1) {
    std::string list;
    for (const OpenMap& m : found)
      list += fmt::format("\n  id {} ({})", m.info.id, map_type_name(m.info.type));
    throw Failure(fmt::format("{} maps are named '{}': pick one with --map-id{}", found.size(),
                              name, list));
  }
  if (found.empty()) throw Failure(fmt::format("no perf event array or ring buffer named '{}'", name));
  return std::move(found.front());
}

// The ids of the BTF of the programs that use map `map_id`.
std::vector<std::uint32_t> btf_of_programs_using(std::uint32_t map_id) {
  std::vector<std::uint32_t> out;
  __u32 id = 0;
  for (int i = 0; i < 1000000 && bpf_prog_get_next_id(id, &id) == 0; ++i) {
    Fd fd(bpf_prog_get_fd_by_id(id));
    if (fd.get() < 0) continue;
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || info.nr_map_ids == 0 ||
        info.btf_id == 0)
      continue;
    std::vector<__u32> maps(info.nr_map_ids);
    const __u32 btf_id = info.btf_id;
    info = {};
    info.nr_map_ids = static_cast<__u32>(maps.size());
    info.map_ids = reinterpret_cast<__u64>(maps.data());
    len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    maps.resize(std::min<std::size_t>(maps.size(), info.nr_map_ids));
    if (std::find(maps.begin(), maps.end(), map_id) != maps.end() &&
        std::find(out.begin(), out.end(), btf_id) == out.end())
      out.push_back(btf_id);
  }
  return out;
}

struct TypeSource {
  BtfPtr btf;
  std::uint32_t type_id = 0;
  std::string from;  // where the BTF came from, for the start line
};

TypeSource find_type(const CatArgs& args, const bpf_map_info& map) {
  TypeSource s;
  if (!args.btf_path.empty()) {
    s.btf.reset(btf__parse(args.btf_path.c_str(), nullptr));
    if (!s.btf) {
      const int err = errno;
      throw Failure(fmt::format("cannot read BTF from {}: {} (give a BPF object compiled with "
                                "-g, or raw BTF)",
                                args.btf_path, std::strerror(err)));
    }
    const auto id = BtfDecoder::find_type(s.btf.get(), args.type_name);
    if (!id)
      throw Failure(fmt::format("no struct, union or typedef '{}' in the BTF of {}",
                                args.type_name, args.btf_path));
    s.type_id = *id;
    s.from = args.btf_path;
    return s;
  }
  std::vector<std::pair<std::uint32_t, std::string>> candidates;
  if (map.btf_id) candidates.emplace_back(map.btf_id, "the map's BTF");
  for (std::uint32_t id : btf_of_programs_using(map.id))
    if (id != map.btf_id) candidates.emplace_back(id, "the BTF of a program using the map");
  for (auto& [btf_id, what] : candidates) {
    BtfPtr btf(btf__load_from_kernel_by_id(btf_id));
    if (!btf) continue;
    if (const auto id = BtfDecoder::find_type(btf.get(), args.type_name)) {
      s.btf = std::move(btf);
      s.type_id = *id;
      s.from = fmt::format("{} (BTF id {})", what, btf_id);
      return s;
    }
  }
  throw Failure(fmt::format(
      "no struct, union or typedef '{}' in the BTF of map {} nor of the programs using it ({} "
      "BTF checked); pass the program's object with --btf FILE",
      args.type_name, map.id, candidates.size()));
}

// For a perf event array, the kernel pads each record so that the record and
// its 4-byte size end on 8 bytes: a record of the type's size comes with up
// to 7 more bytes. Those are not the program's, so they are not "trailing".
std::size_t perf_padded(std::size_t size) { return ((size + 4 + 7) & ~std::size_t{7}) - 4; }

void add_options(CLI::App& app, CatArgs& args) {
  CLI::Option* id =
      add_parsed(app, "--map-id", "N", "the map with this id (bpftool map list)",
                 "takes a map id (a positive integer)",
                 number_in<std::uint32_t>(1, UINT32_MAX), [&args](std::uint32_t v) { args.map_id = v; });
  CLI::Option* pinned = app.add_option("--pinned", args.pinned, "the map pinned at PATH (bpffs)")
                            ->type_name("PATH");
  CLI::Option* name =
      app.add_option("--map", args.map_name,
                     "the map called NAME; when several are, the error lists them")
          ->type_name("NAME");
  id->excludes(pinned)->excludes(name);
  pinned->excludes(name);
  app.add_option("--btf", args.btf_path,
                 "the BTF of --type: a BPF object (ELF, with .BTF) or raw BTF\n"
                 "(default: the map's, or that of the programs using it)")
      ->type_name("FILE");
  app.add_option("--type", args.type_name,
                 "decode records as this struct, union or typedef\n(default: print them in hex)")
      ->type_name("NAME");
  add_parsed(app, "--format", "F",
             "text (default: one line per record), json (one object per\n"
             "line, and a start and summary object) or hex (the bytes;\n"
             "a perf record has up to 7 bytes of kernel padding)",
             "takes text, json or hex",
             [](const std::string& v) -> std::optional<Format> {
               if (v == "text") return Format::text;
               if (v == "json") return Format::json;
               if (v == "hex") return Format::hex;
               return std::nullopt;
             },
             [&args](Format f) { args.format = f; });
  add_parsed(app, "--count", "N", "stop after N records", "takes a number of records, 1 or more",
             number_in<std::uint64_t>(1, UINT64_MAX), [&args](std::uint64_t v) { args.count = v; });
  add_parsed(app, "--duration", "SEC", "stop after SEC seconds (default: run until Ctrl-C)",
             "takes a number of seconds greater than 0", number_in<double>(0.001, 1e9),
             [&args](double d) { args.duration_s = d; });
  add_parsed(app, "--pages", "N",
             "ring size in pages per CPU, a power of two (perf event\n"
             "arrays; default 512 KiB worth)",
             "takes a power of two from 1 to 262144",
             [](const std::string& v) {
               const auto p = parse_number<std::size_t>(v, 1, std::size_t(1) << 18);
               return p && std::has_single_bit(*p) ? p : std::nullopt;
             },
             [&args](std::size_t p) { args.pages = p; });
  app.add_flag("--ordered", args.ordered,
               "records of all CPUs in time order (perf event arrays)");
  add_sink_options(app, args.sink);
  CLI::Option* source =
      add_parsed(app, "--source", "URL",
                 "read the records of a JetStream stream that --sink filled,\n"
                 "at nats://HOST:PORT, subject --subject (instead of a map)",
                 "takes nats://HOST:PORT[,nats://HOST:PORT...]",
                 nats_url_option,
                 [&args](std::string v) { args.source = std::move(v); });
  source->excludes(id)->excludes(pinned)->excludes(name);
  app.callback([&args] {
    if (!args.source.empty()) {
      if (args.sink.enabled())
        throw CLI::ValidationError("--source", "reads a stream back: it cannot ship with --sink");
      if (args.sink.subject.empty())
        throw CLI::ValidationError("--source", "needs --subject SUBJ: the subject to read");
      if (args.ordered || args.pages)
        throw CLI::ValidationError(args.ordered ? "--ordered" : "--pages", "is for maps, not --source");
      if (!args.type_name.empty() && args.btf_path.empty())
        throw CLI::ValidationError("--type", "with --source needs --btf FILE: there is no map to take BTF from");
      if (!args.btf_path.empty() && args.type_name.empty())
        throw CLI::ValidationError("--btf", "needs --type NAME: the type to decode records as");
      return;
    }
    check_sink_args(args.sink);
    if (!args.map_id && args.pinned.empty() && args.map_name.empty())
      throw CLI::RequiredError("which map? give --map-id N, --pinned PATH or --map NAME");
    if (!args.btf_path.empty() && args.type_name.empty())
      throw CLI::ValidationError("--btf", "needs --type NAME: the type to decode records as");
  });
}

struct Counts {
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
};

// perfbuf cat --source: the records of a stream, read back.
int read_source(const CatArgs& args, const sigset_t& stop_signals) {
  NatsSourceOptions o;
  o.url = args.source;
  o.subject = args.sink.subject;
  o.stream = args.sink.stream;
  o.format = args.format == Format::json  ? NatsSourceOptions::Format::json
             : args.format == Format::hex ? NatsSourceOptions::Format::hex
                                          : NatsSourceOptions::Format::text;
  o.count = args.count;
  o.duration_s = args.duration_s;
  std::optional<TypeSource> type;
  std::optional<BtfDecoder> decoder;
  if (!args.type_name.empty()) {
    type = find_type(args, bpf_map_info{});  // from --btf: no map here
    decoder.emplace(type->btf.get(), type->type_id);
    o.decoder = &*decoder;
  }
  sigprocmask(SIG_UNBLOCK, &stop_signals, nullptr);
  return read_nats_source(o, g_stop);
}

int run(const CatArgs& args, const sigset_t& stop_signals) {
  using clock = std::chrono::steady_clock;
  if (!args.source.empty()) return read_source(args, stop_signals);
  OpenMap map = args.map_id          ? open_by_id(*args.map_id)
                : !args.pinned.empty() ? open_pinned(args.pinned)
                                       : open_by_name(args.map_name);
  const bool perf = map.info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY;
  if (!perf && map.info.type != BPF_MAP_TYPE_RINGBUF)
    throw Failure(fmt::format("map {} ('{}') is a {} map: perfbuf cat reads a perf_event_array "
                              "or a ringbuf",
                              map.info.id, map.info.name, map_type_name(map.info.type)));
  if (args.ordered && !perf)
    throw Failure("--ordered is for perf event arrays: a ring buffer is one ring, already in "
                  "the order its records were reserved");

  std::optional<TypeSource> source;
  std::optional<BtfDecoder> decoder;
  if (!args.type_name.empty()) {
    source = find_type(args, map.info);
    decoder.emplace(source->btf.get(), source->type_id);
  }

  // Slots another reader held: deleting returns 0 only for a slot that held a
  // ring. perfbuf stores its own there next, as bpftool map event_pipe does.
  std::vector<int> held;
  if (perf)
    for (int cpu : online_cpus()) {
      const __u32 key = static_cast<__u32>(cpu);
      if (key < map.info.max_entries && bpf_map_delete_elem(map.fd.get(), &key) == 0)
        held.push_back(cpu);
    }
  if (!held.empty()) {
    std::string cpus;
    for (int cpu : held) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
    std::fprintf(stderr,
                 "perfbuf cat: warning: another reader's rings were in the slots of CPUs %s of "
                 "map %u: it gets no records from them while perfbuf cat runs, nor after (the "
                 "slots are left empty)\n",
                 cpus.c_str(), map.info.id);
  }

  std::unique_ptr<NatsSink> sink;
  if (args.sink.enabled()) sink = std::make_unique<NatsSink>(args.sink.options());
  Counts counts;
  bool final_drain = false;
  auto on_sample = [&](const Sample& s) {
    if (g_stop && !final_drain) return Action::stop;
    if (args.count && counts.received >= args.count) return Action::stop;
    ++counts.received;
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(s.data.data()),
                                              s.data.size());
    if (sink) {  // shipped, not printed
      sink->add(s.time_ns, s.cpu, bytes);
      return args.count && counts.received >= args.count ? Action::stop : Action::next;
    }
    std::optional<Decoded> d;
    if (decoder && args.format != Format::hex) {
      d = decoder->decode(bytes);
      if (perf && bytes.size() == perf_padded(d->type_size)) d->trailing.clear();
    }
    if (args.format == Format::json) {
      Json line = {{"type", "record"}, {"cpu", s.cpu}};
      if (args.ordered) line["time_ns"] = s.time_ns;
      line["size"] = s.data.size();
      if (d) {
        line["value"] = to_json(d->value);
        if (d->short_record) {
          line["short"] = true;
          line["type_size"] = d->type_size;
        }
        if (!d->trailing.empty()) line["trailing"] = to_hex(d->trailing);
      } else {
        line["hex"] = to_hex(bytes);
      }
      print_json_line(line);
    } else if (d) {
      std::string text = fmt::format("cpu {}: {}", s.cpu, to_text(d->value));
      if (d->short_record)
        text += fmt::format(" (short record: {} of {} bytes)", d->record_size, d->type_size);
      if (!d->trailing.empty()) text += " trailing " + to_hex(d->trailing);
      std::puts(text.c_str());
    } else {
      std::printf("cpu %d, %zu bytes: %s\n", s.cpu, bytes.size(), to_hex(bytes).c_str());
    }
    return args.count && counts.received >= args.count ? Action::stop : Action::next;
  };
  auto on_lost = [&](int, std::uint64_t n) { counts.lost += n; };
  Options options;
  options.pages_per_cpu = args.pages;
  options.ordered = args.ordered;
  options.timestamps = args.ordered || sink;  // a sink sends each record's time
  Reader reader(map.fd.get(), on_sample, on_lost, options);

  if (args.format == Format::json) {
    Json start = {{"type", "start"},
                  {"map_id", map.info.id},
                  {"map_name", map.info.name},
                  {"map_type", map_type_name(map.info.type)},
                  {"rings", reader.ring_count()}};
    if (source) {
      start["type_name"] = args.type_name;
      start["type_size"] = decoder->type_size();
      start["btf"] = source->from;
    }
    if (sink) {
      start["sink"] = args.sink.url;
      start["subject"] = args.sink.subject;
      start["stream"] = sink->stream();
    }
    print_json_line(start);
  } else {
    std::fprintf(stderr, "perfbuf cat: reading %s map %u ('%s'), %zu ring%s%s; Ctrl-C to stop\n",
                 map_type_name(map.info.type), map.info.id, map.info.name, reader.ring_count(),
                 reader.ring_count() == 1 ? "" : "s",
                 source ? fmt::format(", as {} from {}", args.type_name, source->from).c_str()
                        : "");
  }
  std::fflush(stdout);
  sigprocmask(SIG_UNBLOCK, &stop_signals, nullptr);

  const clock::time_point start = clock::now();
  const clock::time_point end =
      args.duration_s > 0 ? start + std::chrono::duration_cast<clock::duration>(
                                        std::chrono::duration<double>(args.duration_s))
                          : clock::time_point::max();
  int status = 0;
  while (!g_stop && !(args.count && counts.received >= args.count)) {
    const clock::time_point now = clock::now();
    if (now >= end) break;
    if (sink) {
      sink->set_kernel_lost(reader.total_stats().lost);
      sink->flush_due(now);
    }
    const clock::time_point frame_due =
        sink ? sink->next_deadline().value_or(clock::time_point::max()) : clock::time_point::max();
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(now, std::min({end, now + std::chrono::milliseconds(100), frame_due})) - now);
    const auto r = reader.poll(wait);
    if (!r && !r.interrupted()) {
      std::fprintf(stderr, "perfbuf cat: %s\n", r.error().what());
      status = 1;
      break;
    }
  }
  // What is still in the rings is printed too, up to --count.
  final_drain = true;
  if (!(args.count && counts.received >= args.count))
    if (const auto r = reader.consume(); !r) {
      std::fprintf(stderr, "perfbuf cat: %s\n", r.error().what());
      status = 1;
    }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  const CpuStats total = reader.total_stats();
  SinkCounts sink_counts;
  if (sink) {
    sink->set_kernel_lost(total.lost);
    sink_counts = sink->finish();
  }
  if (args.format == Format::json) {
    Json rings = Json::array();
    for (const CpuStats& s : reader.stats())
      rings.push_back({{"cpu", s.cpu}, {"records", s.records}, {"lost", s.lost}});
    Json summary = {{"type", "summary"},
                    {"received", counts.received},
                    {"lost", total.lost},
                    {"seconds", rounded(seconds, 3)},
                    {"per_ring", std::move(rings)}};
    if (sink) summary["sink"] = sink_summary_json(args.sink, *sink, sink_counts, total.lost);
    print_json_line(summary);
  } else {
    std::fflush(stdout);
    std::string text = fmt::format("perfbuf cat: received {} records in {:.2f} s, lost {}{}\n",
                                   counts.received, seconds, total.lost,
                                   perf ? "" : " (a ring buffer's losses are the program's "
                                               "failed outputs, which only it sees)");
    for (const CpuStats& s : reader.stats())
      text += s.cpu < 0 ? fmt::format("  ring buffer: {} records\n", s.records)
                        : fmt::format("  cpu {}: {} records, {} lost\n", s.cpu, s.records, s.lost);
    if (sink) text += sink_summary_text(args.sink, *sink, sink_counts, total.lost);
    std::fputs(text.c_str(), stderr);
  }
  // (The text summary has the drops already; with --format json, stderr
  // still says it.)
  if (sink && sink_counts.dropped && args.format == Format::json)
    std::fprintf(stderr, "perfbuf cat: the sink dropped %llu of %llu records (last error: %s)\n",
                 static_cast<unsigned long long>(sink_counts.dropped),
                 static_cast<unsigned long long>(sink_counts.received),
                 sink_counts.last_error.c_str());
  std::fflush(stdout);
  return status;
}

int cat(const CatArgs& args) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    return run(args, stop_signals);
  } catch (const std::exception& e) {  // Failure, perfbuf::Error
    std::fflush(stdout);
    std::fprintf(stderr, "perfbuf cat: %s\n", e.what());
    return 1;
  }
}

}  // namespace

Command add_cat_command(CLI::App& perfbuf) {
  CLI::App* app = perfbuf.add_subcommand("cat", kDescription);
  configure(*app);
  auto args = std::make_shared<CatArgs>();
  add_options(*app, *args);
  return {app, [args] { return cat(*args); }};
}

}  // namespace perfbuf::tools
