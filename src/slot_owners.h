// Who of this process holds each slot of a perf event array: a Reader's
// perf source or a FlightRecorder. Shared so that neither empties a slot
// the other took over.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "sys.h"

namespace perfbuf::detail {

// Which source of this process last stored its ring in a map slot. A slot
// holds one event: when a newer reader takes a slot over (or replaces an older
// reader by move-assignment), the older one must not empty it when it goes.
// Where a source's rings go: the map, and who claimed its slots.
struct Slot {
  int map_fd;
  std::uint32_t map_id;
  const void* owner;
};

class SlotOwners {
 public:
  void claim(std::uint32_t map_id, int cpu, const void* owner) {
    std::lock_guard lock(mu_);
    owners_[{map_id, cpu}] = owner;
  }
  // Stores event_fd in the slot if `slot.owner` still holds it; false if a
  // newer reader took the slot over. Throws Error if the map update fails.
  bool store_if_owner(const Slot& slot, int cpu, int event_fd) {
    std::lock_guard lock(mu_);
    const auto it = owners_.find({slot.map_id, cpu});
    if (it == owners_.end() || it->second != slot.owner) return false;
    sys::map_set(slot.map_fd, cpu, event_fd);
    return true;
  }
  // True when `owner` still held the slot (it is then released).
  bool release(std::uint32_t map_id, int cpu, const void* owner) {
    std::lock_guard lock(mu_);
    const auto it = owners_.find({map_id, cpu});
    if (it == owners_.end() || it->second != owner) return false;
    owners_.erase(it);
    return true;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::uint32_t, int>, const void*> owners_;
};

// The one registry of this process (perf sources and flight recorders).
SlotOwners& slot_owners();

}  // namespace perfbuf::detail
