// The parser of an overwritable perf ring written backward (the flight
// recorder): no system calls, only a control page and the data area.
//
// With perf_event_attr.write_backward the kernel writes each record just
// below the previous one: data_head is free running and decreases (from 0 it
// goes "negative" as a u64), the newest record starts at data_head mod size,
// and records run forward in memory from there to older ones. Mapped without
// PROT_WRITE the ring is overwritable: the kernel ignores data_tail and
// overwrites the oldest records. So a reader that copies the ring finds, from
// the head on: the newest record, older ones, then either never-written bytes
// (a header of size 0: the ring has not wrapped yet) or, after a ring's worth
// of bytes, the oldest record cut short by a newer one (dropped).
//
// Two steps, both pure: copy_backward_ring() takes the data area rotated so
// that the newest record is at offset 0 (nothing wraps in the copy), and
// walk_backward_copy() hands its records to a visitor, newest first.
// FlightRecorder (flight_recorder.h) pauses the kernel's output around the
// copy; tests drive both over rings built in memory.
#pragma once

#include <linux/perf_event.h>
#include <perfbuf/ring.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace perfbuf {

// Reads data_head (acquire: pairs with the kernel's store of data_head after
// the record bytes in perf_output_put_handle, kernel/events/ring_buffer.c,
// 6.x: the bytes of every record from the head on are visible after it).
inline std::uint64_t load_backward_head(const perf_event_mmap_page* control) noexcept {
  return std::atomic_ref<const __u64>(control->data_head).load(std::memory_order_acquire);
}

// Copies the data area (its size a power of two) into `out` (the same size)
// rotated so that out[0] is the byte at data_head: the newest record first.
// Returns the head it read.
inline std::uint64_t copy_backward_ring(const perf_event_mmap_page* control,
                                        std::span<const std::byte> data,
                                        std::span<std::byte> out) noexcept {
  const std::uint64_t head = load_backward_head(control);
  const std::size_t size = std::min(data.size(), out.size());
  if (size == 0) return head;
  const std::size_t offset = head & (size - 1);
  std::memcpy(out.data(), data.data() + offset, size - offset);
  std::memcpy(out.data() + (size - offset), data.data(), offset);
  return head;
}

// How a walk of a copied backward ring ended.
struct BackwardWalk {
  std::uint64_t records = 0;  // samples handed to the visitor
  std::uint64_t lost = 0;     // sum of PERF_RECORD_LOST (outputs while the ring was paused)
  std::uint64_t bytes = 0;    // bytes of whole records walked, headers included
  // The walk reached the bytes the kernel never wrote (a header of size 0):
  // the ring has not wrapped since it was opened.
  bool reached_unwritten = false;
  // The oldest record ran past what the copy holds of it: newer records had
  // overwritten its end, so it was dropped.
  bool dropped_partial = false;
  // Set when the bytes hold what no kernel writes (a size below the header,
  // not a multiple of 8, sample fields larger than the record). The walk
  // stops there; what it handed out before is whole.
  const char* corrupt = nullptr;
};

// Hands the records of `copy` (from copy_backward_ring; its size a multiple
// of 8) to the visitor, newest first, while they are whole:
//   void visitor.on_sample(const RawSample&)   // data valid while `copy` is
//   void visitor.on_lost(std::uint64_t count)
// Only the first `limit` bytes are trusted (a record reaching past them is
// dropped as partly overwritten): the copy's size, less what the kernel wrote
// while it was taken. Never reads outside `copy`.
template <class Visitor>
BackwardWalk walk_backward_copy(std::span<const std::byte> copy, std::size_t limit, bool has_time,
                                Visitor&& visitor) {
  BackwardWalk walk;
  limit = std::min(limit, copy.size());
  std::size_t at = 0;
  while (at + sizeof(perf_event_header) <= copy.size()) {
    perf_event_header header;
    std::memcpy(&header, copy.data() + at, sizeof header);
    if (header.size == 0) {
      walk.reached_unwritten = true;
      break;
    }
    if (header.size < sizeof header) {
      walk.corrupt = "record size smaller than its header";
      break;
    }
    if (header.size % 8 != 0) {
      walk.corrupt = "record size not a multiple of 8";
      break;
    }
    if (header.size > limit - at) {  // its end was overwritten by the newest records
      walk.dropped_partial = true;
      break;
    }
    const std::span<const std::byte> rec = copy.subspan(at, header.size);
    if (header.type == PERF_RECORD_SAMPLE) {
      RawSample sample;
      if (!parse_sample_record(rec, has_time, sample)) {
        walk.corrupt = "sample fields larger than the record";
        break;
      }
      ++walk.records;
      visitor.on_sample(sample);
    } else if (header.type == PERF_RECORD_LOST) {
      std::uint64_t body[2];  // u64 id; u64 lost
      if (rec.size() < sizeof header + sizeof body) {
        walk.corrupt = "lost record too short";
        break;
      }
      std::memcpy(body, rec.data() + sizeof header, sizeof body);
      walk.lost += body[1];
      visitor.on_lost(body[1]);
    }  // nothing else carries data for a BPF output event
    at += header.size;
    walk.bytes = at;
  }
  return walk;
}

}  // namespace perfbuf
