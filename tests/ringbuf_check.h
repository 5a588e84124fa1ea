// Checks of the BPF ring buffer cursor (include/perfbuf/ringbuf.h) against one
// input, shared by the libFuzzer target (fuzz/ringbuf_cursor_fuzz.cpp) and the
// corpus replay test (tests/ringbuf_corpus_test.cpp): the plain test build
// runs the same checks on every seed that the fuzzer starts from. No libFuzzer
// needed to build it.
//
// The ring buffer is a data area of `size` bytes on the heap, twice: the second
// half always holds the same bytes as the first, as the kernel's second
// mapping of the same pages does. The consumer and producer positions are
// separate heap words. Under ASan a read outside any of them is reported; in
// a plain build every view the cursor hands out is checked to lie inside the
// area, in place (at the record's offset, also when it runs past the end).
//
// After every step the cursor is compared with a model of what it must do:
// the record peek() returns (position, length, bytes), where advance() and
// commit() leave the consumer position, what drain() hands out and reports
// (records, bytes, stopped, corrupt) under its budget and an early stop.
//
// Input: the first byte selects the mode. All fields little-endian.
//   u8  mode
//   u8  ring      data area of 16 << (ring % 13) bytes (16 B .. 64 KiB)
//   u64 start     the consumer position (content mode: rounded down to 8)
//
// Even: content mode. A fake kernel reserves, submits and discards records the
// way kernel/bpf/ringbuf.c does (a header {len | BUSY, pg_off} at reservation,
// the payload, then BUSY cleared or DISCARD set; a reservation that would take
// the producer more than size - 1 bytes past the consumer fails). Everything
// the cursor hands out is compared with what the kernel wrote there, and a
// record is handed out only once it is submitted and every record reserved
// before it is submitted or discarded. Then operations until the input ends,
// each an op byte (op % 9) and arguments:
//     0 reserve  u16 payload bytes (modulo the ring size): a BUSY record
//     1 submit   u8 k: the k-th (modulo their count) record still BUSY
//     2 discard  u8 k: the same, discarded
//     3 output   u16 payload bytes: reserve, write and submit
//     4 peek
//     5 advance
//     6 commit
//     7 drain    u8 budget (bit 7: none, else 0..127), u8 stop (bits 0-6: the
//                visitor stops after that many records, 0 never; bit 7: the
//                kernel outputs a record from inside the first visitor call)
//     8 reopen   a new cursor from the published consumer position
//   then every BUSY record is submitted and a drain without a budget must
//   empty the ring. Operations stop once 1 MiB has been reserved.
//
// Odd: raw mode, arbitrary bytes, mostly corrupt: the cursor must stay inside
// the area, hand out only records whose headers are there, stop at BUSY, skip
// DISCARD, and report what no kernel writes instead of crashing.
//   u8  mode
//   u8  ring
//   u64 start
//   i32 producer - consumer   (negative: a producer behind the consumer)
//   u8  n, then n operations of 3 bytes: op (op % 5: peek, advance, commit,
//       drain, reopen) and the two argument bytes of drain (else ignored)
//   ring bytes: the first half of the data area (zero-filled past the input)
//   then a final drain without a budget.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>

namespace perfbuf::testing {

// What the checked inputs reached, summed over inputs: the corpus test
// requires each case at least once, so a regenerated corpus cannot lose one.
struct RingbufCheckStats {
  std::uint64_t content_inputs = 0;
  std::uint64_t raw_inputs = 0;
  std::uint64_t records = 0;              // handed out and checked
  std::uint64_t empty_records = 0;        // zero-byte payloads
  std::uint64_t payloads_across_end = 0;  // payload bytes on both sides of the ring's end
  std::uint64_t payloads_after_end = 0;   // header in the last 8 bytes: payload wholly past it
  std::uint64_t records_ending_at_end = 0;
  std::uint64_t busy_waits = 0;           // a peek or drain held back by a BUSY record
  std::uint64_t discards_skipped = 0;
  std::uint64_t out_of_order_submits = 0; // a record submitted while an earlier one is BUSY
  std::uint64_t reservations_refused = 0; // the fake kernel found no room
  std::uint64_t rings_filled = 0;         // producer reached consumer + size - 8
  std::uint64_t repeated_peeks = 0;       // peek twice: the same record
  std::uint64_t advances_without_record = 0;
  std::uint64_t budget_ends = 0;          // a drain that handed out its whole budget
  std::uint64_t zero_budget_drains = 0;
  std::uint64_t visitor_stops = 0;
  std::uint64_t writes_during_drain = 0;  // records the drain must leave for the next one
  std::uint64_t reopens_dropping_advance = 0;  // uncommitted advances a new cursor forgets
  std::uint64_t crossed_2_64 = 0;         // inputs whose positions passed 2^64
  std::set<std::string> corrupt_reasons;  // corrupt() / DrainResult::corrupt texts seen
};

// Decodes one input and checks the cursor on it. Returns the first thing that
// went wrong, or an empty string.
std::string check_ringbuf_input(std::span<const std::uint8_t> input,
                                RingbufCheckStats* stats = nullptr);

}  // namespace perfbuf::testing
