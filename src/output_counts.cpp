#include "output_counts.h"

#include <linux/bpf.h>

#include <cstring>
#include <string>

namespace perfbuf::detail {

namespace {

void check_counts_map(int fd) {
  const sys::MapInfo info = sys::map_info(fd);
  if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY || info.key_size != 4 ||
      info.value_size != sizeof(perfbuf_counts) || info.max_entries < 2)
    throw Error(EINVAL, "map \"" + info.name + "\" (type " +
                            std::to_string(info.type) + ", key " + std::to_string(info.key_size) +
                            " B, value " + std::to_string(info.value_size) + " B, " +
                            std::to_string(info.max_entries) +
                            " entries) is not a counts map: declare it with "
                            "PERFBUF_COUNTS_MAP(name) from <perfbuf/bpf.h> and pass that map");
}

perfbuf_counts counts_of_cpu(const std::vector<std::byte>& values, std::size_t cpu) {
  perfbuf_counts c;
  std::memcpy(&c, values.data() + cpu * sizeof c, sizeof c);
  return c;
}

}  // namespace

OutputCounts::OutputCounts(sys::Fd fd) : fd_(std::move(fd)) {
  check_counts_map(fd_.get());
  // From zero: outputs tried before the reader came are reported too (a ring
  // buffer's records of that time are still read; a perf output without a
  // reader's ring failed), so records + lost + failed adds up to attempts.
  last_.resize(sys::possible_cpus());
}

// Hot: a counted map is read every max_delay, beside the loop's code.
[[gnu::hot]] const std::vector<OutputCounts::Growth>& OutputCounts::read() {
  sys::percpu_lookup(fd_.get(), PERFBUF_KEY_COUNTS, sizeof(perfbuf_counts), values_);
  grown_.clear();
  for (std::size_t cpu = 0; cpu < last_.size(); ++cpu) {
    const perfbuf_counts now = counts_of_cpu(values_, cpu);
    perfbuf_counts& was = last_[cpu];
    const std::uint64_t failed = (now.failures - now.kernel_counted) -
                                 (was.failures - was.kernel_counted);
    const std::uint64_t kernel_counted = now.kernel_counted - was.kernel_counted;
    if (now.attempts != was.attempts || failed != 0 || kernel_counted != 0)
      grown_.push_back({static_cast<int>(cpu), now.attempts - was.attempts, failed, kernel_counted});
    was = now;
  }
  return grown_;
}

void OutputCounts::set_wakeup_bytes(std::uint64_t bytes) {
  control_.wakeup_bytes = bytes;
  write_control();
}

void OutputCounts::set_paused(bool paused) {
  control_.paused = paused;
  write_control();
}

OutputCounts::~OutputCounts() {
  if (fd_.get() < 0 || (control_.paused == 0 && control_.wakeup_bytes == 0)) return;
  control_ = {};
  try {
    write_control();
  } catch (const Error&) {
    // Nothing to report it to; the map's next reader clears the control too.
  }
}

void OutputCounts::write_control() {
  sys::percpu_update_all(fd_.get(), PERFBUF_KEY_CONTROL, &control_, sizeof control_);
}

}  // namespace perfbuf::detail

namespace perfbuf {

perfbuf_counts sum_output_counts(int counts_map_fd) {
  detail::check_counts_map(counts_map_fd);
  const std::vector<std::byte> values =
      sys::percpu_lookup(counts_map_fd, PERFBUF_KEY_COUNTS, sizeof(perfbuf_counts));
  perfbuf_counts sum{};
  for (std::size_t cpu = 0; cpu < values.size() / sizeof sum; ++cpu) {
    const perfbuf_counts c = detail::counts_of_cpu(values, cpu);
    sum.attempts += c.attempts;
    sum.failures += c.failures;
    sum.kernel_counted += c.kernel_counted;
  }
  const std::vector<std::byte> control =
      sys::percpu_lookup(counts_map_fd, PERFBUF_KEY_CONTROL, sizeof(perfbuf_counts));
  sum.wakeup_bytes = detail::counts_of_cpu(control, 0).wakeup_bytes;
  sum.paused = detail::counts_of_cpu(control, 0).paused;
  return sum;
}

}  // namespace perfbuf
