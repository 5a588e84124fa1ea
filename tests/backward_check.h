// Checks of the backward ring parser (backward_ring.h) and the flight
// recorder's collection of a ring (src/flight_snapshot.h) against one input,
// shared by the libFuzzer target (fuzz/backward_ring_fuzz.cpp) and the corpus
// replay test (tests/backward_corpus_test.cpp).
//
// Input: the first byte selects the mode. All fields little-endian.
//
// Even: content mode. A fake kernel (FakeBackwardRing) writes records
// backward into an overwritable ring; at each snapshot the ring is copied
// and walked, and what comes out is compared with a model: exactly the
// newest records that fit whole (in the trusted bytes), oldest first, each
// payload byte and time stamp, the lost counts among them, and whether the
// oldest was dropped as partly overwritten or the walk reached bytes never
// written.
//   u8  mode
//   u8  ring      data area of 64 << (ring % 9) bytes (64 B .. 16 KiB)
//   u8  options   bit 0: PERF_SAMPLE_TIME
//   u64 start     first head, rounded down to a multiple of 8
//   then operations until the input ends, each an op byte (op % 3) and arguments:
//     0 sample    u16 payload bytes (modulo 1024), u8 seed of payload and time
//     1 lost      u8 n: a PERF_RECORD_LOST of n + 1
//     2 snapshot  u16 bytes written during the copy (modulo the ring size,
//                 rounded down to 8): the oldest that many bytes are not trusted
//   and a final snapshot. At most 4096 operations.
//
// Odd: raw mode, arbitrary ring bytes. The walk must stay inside the copy
// and its trusted bytes, hand out only samples whose payload lies in it, and
// count what it handed out.
//   u8  mode
//   u64 head
//   u32 limit     trusted bytes (taken modulo the ring size + 1)
//   u8  options   bit 0: PERF_SAMPLE_TIME
//   ring bytes    the largest power-of-two prefix (8 B .. 64 KiB) of the rest
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>

namespace perfbuf::testing {

// What the checked inputs reached, summed over inputs.
struct BackwardCheckStats {
  std::uint64_t content_inputs = 0;
  std::uint64_t raw_inputs = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t records = 0;               // samples handed out in content mode
  std::uint64_t timed_records = 0;
  std::uint64_t records_across_end = 0;    // a record on both sides of the area's end
  std::uint64_t lost_records = 0;
  std::uint64_t partial_dropped = 0;       // snapshots that dropped a partly overwritten record
  std::uint64_t unwritten_reached = 0;     // snapshots of a ring never wrapped
  std::uint64_t exactly_full = 0;          // whole records filling the ring to the byte
  std::uint64_t untrusted_tail = 0;        // snapshots with bytes written during the copy
  std::uint64_t crossed_2_64 = 0;          // content inputs whose head passed below 0
  std::set<std::string> corrupt_reasons;   // BackwardWalk::corrupt texts seen (raw mode)
};

std::string check_backward_input(std::span<const std::uint8_t> input,
                                 BackwardCheckStats* stats = nullptr);

}  // namespace perfbuf::testing
