// The pure half of FlightRecorder::snapshot(): a copied backward ring to its
// records, and the CPUs' records merged. No system calls: the unit tests run
// it over rings built in memory.
#pragma once

#include <perfbuf/backward_ring.h>
#include <perfbuf/flight_recorder.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

namespace perfbuf::detail {

// The records of one CPU's ring from its copy (copy_backward_ring), oldest
// first, appended to `out`. `limit`: the bytes of the copy to trust (see
// walk_backward_copy).
inline FlightCpu collect_ring(std::span<const std::byte> copy, std::size_t limit, bool has_time,
                              int cpu, std::vector<FlightRecord>& out) {
  const std::size_t first = out.size();
  struct Visitor {
    std::vector<FlightRecord>& out;
    int cpu;
    void on_sample(const RawSample& s) {
      out.push_back({cpu, s.time_ns, std::vector<std::byte>(s.data.begin(), s.data.end())});
    }
    void on_lost(std::uint64_t) {}
  } visitor{out, cpu};
  const BackwardWalk walk = walk_backward_copy(copy, limit, has_time, visitor);
  std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());  // newest last
  FlightCpu result;
  result.cpu = cpu;
  result.records = walk.records;
  result.lost = walk.lost;
  result.dropped_partial = walk.dropped_partial;
  result.complete = walk.reached_unwritten;
  result.corrupt = walk.corrupt;
  return result;
}

// Every CPU's records (each oldest first) as one list: by time when
// by_time (a k-way merge: each CPU's own order is kept even where its stamps
// are not monotonic; on equal times the lower index goes first), else one
// CPU after the other.
inline std::vector<FlightRecord> merge_cpus(std::vector<std::vector<FlightRecord>> per_cpu,
                                            bool by_time) {
  std::vector<FlightRecord> merged;
  std::size_t total = 0;
  for (const auto& records : per_cpu) total += records.size();
  merged.reserve(total);
  if (!by_time) {
    for (auto& records : per_cpu)
      for (auto& r : records) merged.push_back(std::move(r));
    return merged;
  }
  std::vector<std::size_t> next(per_cpu.size(), 0);
  while (merged.size() < total) {
    std::size_t pick = per_cpu.size();
    for (std::size_t i = 0; i < per_cpu.size(); ++i) {
      if (next[i] == per_cpu[i].size()) continue;
      if (pick == per_cpu.size() ||
          per_cpu[i][next[i]].time_ns < per_cpu[pick][next[pick]].time_ns)
        pick = i;
    }
    merged.push_back(std::move(per_cpu[pick][next[pick]++]));
  }
  return merged;
}

}  // namespace perfbuf::detail
