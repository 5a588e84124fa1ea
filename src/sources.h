// Sources: the maps a Reader reads, each owning its rings. A PERF_EVENT_ARRAY
// gives one perf ring per CPU, stored in the map at key = CPU id; a RINGBUF is
// one ring shared by every CPU.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "output_counts.h"
#include "polled_ring.h"
#include "sys.h"

namespace perfbuf::detail {

class Source {
 public:
  explicit Source(Handlers h) : handlers(std::move(h)) {}
  virtual ~Source() = default;

  // The program's output counts for this map (<perfbuf/bpf.h>): from now on
  // read_counts() reports its failures as lost records.
  void count_outputs(sys::Fd counts_fd);
  // Adds what the counts grew by to the rings' stats and hands new failures
  // to the lost handler. Nothing without counts.
  void read_counts();

  // Stops or restarts the program's output into this map's rings, keeping
  // everything else; outputs meanwhile fail and are counted. can_pause()
  // says why not, first, so that a reader pauses all its maps or none.
  virtual std::optional<std::string> why_not_pausable() const { return std::nullopt; }
  virtual void pause(bool paused) = 0;

  // After CPUs went offline or online: `online` now, of which `returned` went
  // offline since the last call. Rings whose events a CPU's going offline
  // ended are reopened, CPUs new to the source may get rings.
  struct CpuChange {
    std::vector<PolledRing*> added;     // to watch
    std::vector<PolledRing*> reopened;  // to watch again: new fds
  };
  virtual CpuChange follow_cpus(const std::vector<int>& /*online*/,
                                const std::set<int>& /*returned*/) {
    return {};
  }

  std::vector<std::unique_ptr<PolledRing>> rings;
  Handlers handlers;  // the map's, shared by its rings
  CpuStats elsewhere;  // counted outputs of CPUs that have no ring of this map

 protected:
  // The ring that CPU's outputs go to; nullptr if the reader has none there.
  virtual PolledRing* ring_of_cpu(int cpu) = 0;
  // Hands the counts map to what uses its control (ring buffers); by default
  // clears the control an earlier reader may have left.
  virtual void control(OutputCounts& counts) { counts.set_wakeup_bytes(0); }

 protected:
  std::optional<OutputCounts> counts_;
};

// The bytes after which Wakeup::watermark(bytes) wakes the reader of a ring
// of ring_bytes: `bytes`, or for 0, a quarter of the ring up to 64 KiB.
inline std::uint32_t watermark_bytes(const Wakeup& wakeup, std::size_t ring_bytes) {
  if (wakeup.value) return wakeup.value;
  return static_cast<std::uint32_t>(std::min<std::size_t>(ring_bytes / 4, 64 * 1024));
}

// `options` resolved and validated; `index`: the source's place in the reader.
std::unique_ptr<Source> open_perf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                         Handlers handlers, const Options& options, int index);
std::unique_ptr<Source> open_ringbuf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                            Handlers handlers, const Options& options, int index);

}  // namespace perfbuf::detail
