// Checks of the ring parser against one input, shared by the libFuzzer target
// (fuzz/ring_parser_fuzz.cpp) and the corpus replay test
// (tests/ring_corpus_test.cpp): the plain test build runs the same checks on
// every seed that the fuzzer starts from. No libFuzzer needed to build it.
//
// Input: the first byte selects the mode. All fields little-endian.
//
// Even: content mode, a description of what the kernel writes. A fake kernel
// (FakeRing plus perf_output_begin's rules: a record that does not fit in the
// free space is dropped and counted, and the count goes out as a
// PERF_RECORD_LOST in front of the next record that fits) writes it, the
// parser drains it, and everything handed out is compared with what was
// written: payload bytes, time stamps, lost counts, record and byte counts,
// where each drain stops, where the tail ends.
//   u8  mode
//   u8  ring      data area of 64 << (ring % 11) bytes (64 B .. 64 KiB)
//   u16 scratch   scratch buffer bytes; 0: as large as the ring
//   u8  options   bit 0: PERF_SAMPLE_TIME; bits 1-7: each drain stops after
//                 that many samples (0: never)
//   u64 start     first head and tail position, rounded down to a multiple of 8
//   then operations until the input ends, each an op byte (op % 5) and arguments:
//     0, 1 sample  u16 payload bytes (modulo the ring size, capped to what a
//                  u16 record size holds), u8 seed of the payload and time stamp
//     2    drop    u16 n: the kernel fails n + 1 outputs (as when the ring is full)
//     3    other   u8 type choice, u8 body words: a record of another type
//     4    drain   drain until the ring is empty (more than once when drains stop)
//   and a final drain. Operations stop once 256 KiB have been written.
//
// Odd: raw mode, arbitrary ring bytes. The parser must stay inside the ring
// and the scratch buffer, count what it hands out, end at the head or where
// it was told to stop, and leave the ring empty.
//   u8  mode
//   u64 tail
//   u32 head - tail
//   u8  options   as above
//   u16 scratch   as above
//   ring bytes    the largest power-of-two prefix (8 B .. 64 KiB) of the rest
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>

namespace perfbuf::testing {

// What the checked inputs reached, summed over inputs: the corpus test
// requires each case at least once, so a regenerated corpus cannot lose one.
struct RingCheckStats {
  std::uint64_t content_inputs = 0;
  std::uint64_t raw_inputs = 0;
  std::uint64_t samples_in_place = 0;
  std::uint64_t samples_wrapped = 0;        // copied into the scratch buffer
  std::uint64_t payloads_across_end = 0;    // payload bytes on both sides of the ring's end
  std::uint64_t records_ending_at_end = 0;  // the last byte is the ring's last byte
  std::uint64_t timed_samples = 0;
  std::uint64_t lost_records = 0;
  std::uint64_t kernel_drops = 0;           // outputs the fake kernel failed
  std::uint64_t other_records = 0;
  std::uint64_t stops = 0;                  // drains that stopped when told to
  std::uint64_t scratch_rejects = 0;        // wrapped records larger than the scratch buffer
  std::uint64_t delivered_after_reject = 0; // samples handed out after a rejection
  std::uint64_t crossed_2_64 = 0;           // content inputs whose head passed 2^64
  std::set<std::string> corrupt_reasons;    // DrainResult::corrupt texts seen
};

// Decodes one input and checks the parser on it. Returns the first thing that
// went wrong, or an empty string.
std::string check_ring_input(std::span<const std::uint8_t> input,
                             RingCheckStats* stats = nullptr);

}  // namespace perfbuf::testing
