// FlightRecorder: one backward, overwritable perf ring per CPU, stored in the
// map slots like a Reader's, copied and parsed on snapshot().
#include <perfbuf/flight_recorder.h>
#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <bit>
#include <string>

#include "flight_snapshot.h"
#include "slot_owners.h"
#include "sys.h"

namespace perfbuf {

namespace {

constexpr std::size_t kDefaultFlightBytes = 64 * 1024;
constexpr std::size_t kMaxFlightBytes = std::size_t(1) << 30;

Error bad_option(const std::string& what) {
  return Error(EINVAL, "perfbuf::FlightOptions: " + what);
}

void resolve_and_validate(FlightOptions& o) {
  const std::size_t page = sys::page_size();
  if (o.bytes_per_cpu == 0) o.bytes_per_cpu = std::max(kDefaultFlightBytes, page);
  if (o.bytes_per_cpu % page != 0 || !std::has_single_bit(o.bytes_per_cpu / page))
    throw bad_option("bytes_per_cpu = " + std::to_string(o.bytes_per_cpu) +
                     " must be a power of two of pages (" + std::to_string(page) + ", " +
                     std::to_string(2 * page) + ", " + std::to_string(4 * page) +
                     " ...): the kernel maps rings only in such sizes");
  if (o.bytes_per_cpu > kMaxFlightBytes)
    throw bad_option("bytes_per_cpu = " + std::to_string(o.bytes_per_cpu) +
                     " is over the limit of 1 GiB per CPU");
  if (!sys::perf_can_stamp_with(o.clock))
    throw bad_option("clock = " + std::to_string(o.clock) +
                     " is not a clock perf can stamp records with");
  if (const std::string problem = sys::cpu_list_problem(o.cpus); !problem.empty())
    throw bad_option(problem);
}

perf_event_attr backward_attr(const FlightOptions& o) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  attr.sample_period = 1;
  attr.sample_type = PERF_SAMPLE_RAW | (o.timestamps ? PERF_SAMPLE_TIME : 0);
  attr.write_backward = 1;  // the newest record at data_head, older ones after it
  // Nobody waits on the ring: wake as rarely as the kernel allows.
  attr.watermark = 1;
  attr.wakeup_watermark = static_cast<__u32>(o.bytes_per_cpu);
  if (o.clock != kPerfClock) {
    attr.use_clockid = 1;
    attr.clockid = o.clock;
  }
  return attr;
}

// One CPU's backward event and its read-only (overwritable) ring.
struct BackwardRing {
  int cpu;
  sys::Fd fd;
  sys::Mapping mapping;
};

}  // namespace

struct FlightRecorder::Impl {
  FlightOptions options;
  sys::Fd map_fd;
  std::uint32_t map_id = 0;
  std::vector<BackwardRing> rings;
  std::vector<std::byte> copy;  // one ring's bytes, rotated newest first

  ~Impl() {
    // Take our events out of the map so the program stops writing to them,
    // unless another reader of this process has put its own there since.
    for (const BackwardRing& r : rings)
      if (detail::slot_owners().release(map_id, r.cpu, this)) sys::map_delete(map_fd.get(), r.cpu);
  }

  void open(int fd) {
    resolve_and_validate(options);
    map_fd = sys::dup_map_fd(fd);
    const sys::MapInfo info = sys::map_info(map_fd.get());
    if (info.type != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
      throw Error(EINVAL, "map \"" + info.name + "\" (fd " + std::to_string(fd) +
                              ") has map type " + std::to_string(info.type) +
                              ", not BPF_MAP_TYPE_PERF_EVENT_ARRAY (" +
                              std::to_string(BPF_MAP_TYPE_PERF_EVENT_ARRAY) +
                              "): a flight recorder keeps per-CPU perf rings; pass the map the "
                              "program writes with bpf_perf_event_output()");
    map_id = info.id;
    const std::vector<int> cpus = options.cpus.empty() ? online_cpus() : options.cpus;
    sys::check_cpus_fit_map(cpus, info);
    copy.resize(options.bytes_per_cpu);
    perf_event_attr attr = backward_attr(options);
    rings.reserve(cpus.size());
    for (int cpu : cpus) {
      sys::Fd event = sys::perf_event_open(attr, cpu);
      sys::Mapping mapping = sys::map_ring(event.get(), options.bytes_per_cpu + sys::page_size(),
                                           cpu, /*writable=*/false);
      // In rings first, so that whatever fails next, the destructor takes the
      // event out of the map again.
      rings.push_back({cpu, std::move(event), std::move(mapping)});
      detail::slot_owners().claim(map_id, cpu, this);
      sys::map_set(map_fd.get(), cpu, rings.back().fd.get());
    }
  }

  Snapshot snapshot() {
    Snapshot snap;
    std::vector<std::vector<FlightRecord>> per_cpu(rings.size());
    for (std::size_t i = 0; i < rings.size(); ++i) {
      const BackwardRing& ring = rings[i];
      const auto* control = static_cast<const perf_event_mmap_page*>(ring.mapping.get());
      const std::span<const std::byte> data(
          static_cast<const std::byte*>(ring.mapping.get()) + sys::page_size(),
          options.bytes_per_cpu);
      // Paused only while copying: the kernel refuses (and counts) outputs
      // meanwhile, so the copy is one consistent state of the ring.
      sys::perf_event_pause_output(ring.fd.get(), true);
      const std::uint64_t head = copy_backward_ring(control, data, copy);
      // A write that began before the pause may have finished during the
      // copy, over the oldest bytes: trust only what it cannot have reached.
      const std::uint64_t written = head - load_backward_head(control);
      sys::perf_event_pause_output(ring.fd.get(), false);
      const std::size_t limit = written >= copy.size() ? 0 : copy.size() - written;
      FlightCpu cpu =
          detail::collect_ring(copy, limit, options.timestamps, ring.cpu, per_cpu[i]);
      snap.lost += cpu.lost;
      snap.cpus.push_back(cpu);
    }
    snap.records = detail::merge_cpus(std::move(per_cpu), options.timestamps);
    return snap;
  }
};

FlightRecorder::FlightRecorder(int map_fd, FlightOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->open(map_fd);
}

FlightRecorder::FlightRecorder(const bpf_map* map, FlightOptions options)
    : FlightRecorder(map ? bpf_map__fd(map) : -1, std::move(options)) {}

FlightRecorder::FlightRecorder(FlightRecorder&&) noexcept = default;
FlightRecorder& FlightRecorder::operator=(FlightRecorder&&) noexcept = default;
FlightRecorder::~FlightRecorder() = default;

Snapshot FlightRecorder::snapshot() { return impl_->snapshot(); }

std::size_t FlightRecorder::ring_bytes() const noexcept { return impl_->options.bytes_per_cpu; }

std::vector<int> FlightRecorder::cpus() const {
  std::vector<int> cpus;
  for (const auto& r : impl_->rings) cpus.push_back(r.cpu);
  return cpus;
}

const FlightOptions& FlightRecorder::options() const noexcept { return impl_->options; }

}  // namespace perfbuf
