// The checks behind ring_check.h. Every loop is bounded by the input's size.
#include "ring_check.h"

#include <perfbuf/ring.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "fake_ring.h"
#include "fuzz_input.h"

namespace perfbuf::testing {
namespace {

constexpr const char* kScratchTooSmall = "wrapped record larger than the scratch buffer";
constexpr std::size_t kMaxRing = 65536;
constexpr std::size_t kMaxRecord = 0xffff & ~std::size_t(7);  // the header's u16 size, aligned
// Bytes the fake kernel writes per content input at most (four full rings of
// the largest size): keeps every input fast.
constexpr std::size_t kMaxWritten = 256 << 10;

unsigned long long ull(std::uint64_t v) { return v; }

bool same_reason(const char* a, const char* b) {
  return (a == nullptr) == (b == nullptr) && (a == nullptr || std::strcmp(a, b) == 0);
}
const char* text(const char* reason) { return reason ? reason : "none"; }

// The scratch buffer handed to the parser, followed by a guard zone as large
// as any record in the ring, so a copy that overruns it lands here, is
// reported, and cannot corrupt the heap of a plain (non-ASan) test build.
class GuardedScratch {
 public:
  GuardedScratch(std::size_t size, std::size_t ring_size)
      : size_(size), bytes_(size + std::min(ring_size, kMaxRecord), kPoison) {}
  std::size_t size() const { return size_; }
  std::span<std::byte> span() { return std::span(bytes_).first(size_); }
  // A copy left over from an earlier record must not pass for the current one.
  void poison() { std::fill(bytes_.begin(), bytes_.begin() + size_, kPoison); }
  // Every guard byte is the poison: the first is, and each equals the next.
  bool guard_intact() const {
    const std::byte* guard = bytes_.data() + size_;
    const std::size_t n = bytes_.size() - size_;
    return n == 0 || (guard[0] == kPoison && std::memcmp(guard, guard + 1, n - 1) == 0);
  }

 private:
  static constexpr std::byte kPoison{0xee};
  std::size_t size_;
  std::vector<std::byte> bytes_;
};

// ---- Content mode ----------------------------------------------------------

// A record the fake kernel wrote that the parser has not consumed yet.
struct Written {
  Written(std::uint64_t at, std::size_t bytes, std::uint32_t record_type)
      : pos(at), size(bytes), type(record_type) {}
  std::uint64_t pos;
  std::size_t size;
  std::uint32_t type;
  std::uint64_t time_ns = 0;    // samples, with PERF_SAMPLE_TIME
  std::uint64_t lost = 0;       // PERF_RECORD_LOST
  std::vector<std::byte> raw;   // samples: the PERF_SAMPLE_RAW bytes, padding included
};

// What one drain must do, worked out from the records alone.
struct Expected {
  std::uint64_t records = 0;
  std::uint64_t lost = 0;
  std::uint64_t bytes = 0;
  bool stopped = false;
  const char* corrupt = nullptr;
  std::size_t handed_out_end = 0;  // queue index after the last record handed out
  std::size_t consumed = 0;        // queue entries the drain removes
  bool reaches_wrap = false;       // a wrapped record is copied or rejected
  std::uint64_t tail = 0;          // where the tail ends
};

// Fills out with bytes that differ between records and between neighbouring
// bytes, so a byte taken from anywhere else shows (xorshift32).
NO_COVERAGE void fill_bytes(std::span<std::byte> out, std::uint64_t record_no, std::uint8_t seed) {
  std::uint32_t x = static_cast<std::uint32_t>(record_no * 2654435761u) ^ (seed << 8) ^ 0x9e3779b9u;
  if (x == 0) x = 1;
  for (std::size_t i = 0; i < out.size(); i += sizeof x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    std::memcpy(out.data() + i, &x, std::min(sizeof x, out.size() - i));
  }
}

// The index of the first byte where two spans of the same size differ, or their size.
NO_COVERAGE std::size_t first_difference(std::span<const std::byte> a,
                                         std::span<const std::byte> b) {
  if (std::memcmp(a.data(), b.data(), a.size()) == 0) return a.size();
  std::size_t i = 0;
  while (a[i] == b[i]) ++i;
  return i;
}

class Scenario {
 public:
  Scenario(std::size_t ring_size, std::size_t scratch_size, bool has_time, unsigned stop_after,
           std::uint64_t start, RingCheckStats& stats)
      : ring_(ring_size, start, has_time),
        parser_(ring_.parser()),
        scratch_(scratch_size, ring_size),
        stop_after_(stop_after),
        stats_(stats) {}

  const std::string& failure() const { return failure_; }
  bool full() const { return written_ >= kMaxWritten; }

  // payload_bytes is taken modulo the ring size: sizes the ring can hold, or
  // just cannot (dropped), are what matter.
  void sample(std::size_t payload_bytes, std::uint8_t seed) {
    payload_bytes &= ring_.size() - 1;
    payload_bytes = std::min(payload_bytes, kMaxRecord - ring_.sample_fixed_bytes());
    const std::size_t size = ring_.sample_size(payload_bytes);
    if (!make_room(size)) return;
    Written w(ring_.head(), size, PERF_RECORD_SAMPLE);
    w.raw.resize(size - ring_.sample_fixed_bytes());  // zero padding after the payload
    fill_bytes(std::span(w.raw).first(payload_bytes), samples_written_, seed);
    if (ring_.has_time()) w.time_ns = 0x100000000 * (samples_written_ + 1) + seed;
    ++samples_written_;
    ring_.add_sample(std::span(w.raw).first(payload_bytes), w.time_ns);
    record(std::move(w));
  }

  void drop(std::uint64_t n) {
    pending_lost_ += n;
    stats_.kernel_drops += n;
  }

  void other(std::uint8_t type_choice, std::size_t words) {
    static constexpr std::uint32_t kTypes[] = {PERF_RECORD_THROTTLE, PERF_RECORD_UNTHROTTLE,
                                               PERF_RECORD_LOST_SAMPLES, PERF_RECORD_SWITCH,
                                               0xffff};  // a type from a newer kernel
    const std::uint32_t type = kTypes[type_choice % std::size(kTypes)];
    const std::size_t size = sizeof(perf_event_header) + 8 * words;
    if (!make_room(size)) return;
    std::vector<std::byte> body(8 * words);
    fill_bytes(body, type, type_choice);
    Written w(ring_.head(), size, type);
    ring_.add_record(type, body);
    record(std::move(w));
  }

  // Drains until everything written is consumed. Each drain consumes at least
  // one record or reaches the head, so queue size + 1 drains are enough.
  void drain_all() {
    const std::size_t bound = queue_.size() + 1;
    for (std::size_t n = 0; n < bound && failure_.empty(); ++n) {
      drain_once();
      if (queue_.empty()) break;
    }
    if (!failure_.empty()) return;
    if (!queue_.empty())
      return fail(format("%zu records left after %zu drains", queue_.size(), bound));
    if (ring_.tail() != ring_.head() || parser_.readable() != 0)
      fail(format("ring not empty after draining: tail %#llx, head %#llx",
                  ull(ring_.tail()), ull(ring_.head())));
  }

 private:
  // Checks each record as the parser hands it out, while its view is valid.
  struct Visitor {
    Scenario& s;
    const Expected& want;
    std::size_t next = 0;  // queue index to look for the next record from
    std::uint64_t samples = 0;
    std::uint64_t lost = 0;

    Action on_sample(const RawSample& got) {
      const Written* w = s.next_handed_out(next, want);
      if (!w) {
        s.fail(format("sample %llu handed out beyond where the drain should end", ull(samples)));
      } else if (w->type != PERF_RECORD_SAMPLE) {
        s.fail(format("a sample handed out where a lost record was written at %#llx",
                      ull(w->pos)));
      } else {
        s.check_sample(*w, got);
      }
      ++samples;
      return s.stop_after_ && samples == s.stop_after_ ? Action::stop : Action::next;
    }

    void on_lost(std::uint64_t count) {
      const Written* w = s.next_handed_out(next, want);
      if (!w || w->type != PERF_RECORD_LOST)
        s.fail(format("a lost count of %llu that was never written", ull(count)));
      else if (count != w->lost)
        s.fail(format("lost record at %#llx: count %llu, written %llu", ull(w->pos), ull(count),
                      ull(w->lost)));
      lost += count;
    }
  };

  void fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  // perf_output_begin: a pending loss goes out first, in front of the record,
  // and both must fit; otherwise this output fails and is counted too.
  bool make_room(std::size_t size) {
    const std::size_t lost_size = pending_lost_ ? sizeof(perf_event_header) + 16 : 0;
    if (size + lost_size > ring_.free_space()) {
      drop(1);
      return false;
    }
    if (pending_lost_) {
      Written w(ring_.head(), lost_size, PERF_RECORD_LOST);
      w.lost = pending_lost_;
      ring_.add_lost(pending_lost_);
      record(std::move(w));
      pending_lost_ = 0;
    }
    return true;
  }

  void record(Written w) {
    written_ += w.size;
    if (w.pos + w.size < w.pos && !crossed_2_64_) {
      crossed_2_64_ = true;
      ++stats_.crossed_2_64;
    }
    queue_.push_back(std::move(w));
  }

  bool wraps(const Written& w) const {
    return (w.pos & (ring_.size() - 1)) + w.size > ring_.size();
  }

  // The next sample or lost record from queue index i, before where the drain ends.
  const Written* next_handed_out(std::size_t& i, const Expected& want) const {
    while (i < want.handed_out_end && queue_[i].type != PERF_RECORD_SAMPLE &&
           queue_[i].type != PERF_RECORD_LOST)
      ++i;
    return i < want.handed_out_end ? &queue_[i++] : nullptr;
  }

  // What the next drain must do with the queued records.
  Expected expect() const {
    Expected e;
    e.tail = ring_.head();
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      const Written& w = queue_[i];
      e.reaches_wrap = e.reaches_wrap || wraps(w);
      if (wraps(w) && w.size > scratch_.size()) {
        // Rejected: everything up to the head is skipped, nothing else handed out.
        e.corrupt = kScratchTooSmall;
        e.bytes = ring_.head() - ring_.tail();
        e.consumed = queue_.size();
        return e;
      }
      e.bytes += w.size;
      e.handed_out_end = e.consumed = i + 1;
      if (w.type == PERF_RECORD_LOST) e.lost += w.lost;
      if (w.type != PERF_RECORD_SAMPLE) continue;
      ++e.records;
      if (stop_after_ && e.records == stop_after_) {
        e.stopped = true;
        e.tail = w.pos + w.size;
        return e;
      }
    }
    return e;
  }

  void check_sample(const Written& w, const RawSample& got) {
    const std::size_t fixed = ring_.sample_fixed_bytes();
    if (got.data.size() != w.raw.size())
      return fail(format("sample at %#llx: %zu bytes, written %zu", ull(w.pos), got.data.size(),
                         w.raw.size()));
    const std::size_t at = first_difference(w.raw, got.data);
    if (at != w.raw.size()) {
      const std::size_t to_end = ring_.size() - (w.pos & (ring_.size() - 1));
      return fail(format("sample at %#llx (%zu bytes, %zu before the ring's end): payload byte "
                         "%zu is %#x, written %#x",
                         ull(w.pos), w.size, to_end, at, unsigned(got.data[at]),
                         unsigned(w.raw[at])));
    }
    if (got.time_ns != w.time_ns)
      return fail(format("sample at %#llx: time %llu, written %llu", ull(w.pos),
                         ull(got.time_ns), ull(w.time_ns)));
    // In place unless it wraps: then a copy in the scratch buffer.
    const std::size_t offset = w.pos & (ring_.size() - 1);
    if (!wraps(w)) {
      const std::byte* in_ring = ring_.data().data() + offset + fixed;
      if (got.data.data() != in_ring)
        return fail(format("sample at %#llx not handed out in place", ull(w.pos)));
      ++stats_.samples_in_place;
      if (offset + w.size == ring_.size()) ++stats_.records_ending_at_end;
    } else {
      const std::span<std::byte> scratch = scratch_.span();
      const std::byte* s = scratch.data();
      if (got.data.data() < s || got.data.data() + got.data.size() > s + scratch.size())
        return fail(format("wrapped sample at %#llx not in the scratch buffer", ull(w.pos)));
      ++stats_.samples_wrapped;
      const std::size_t to_end = ring_.size() - offset;
      if (to_end > fixed && to_end < fixed + w.raw.size()) ++stats_.payloads_across_end;
    }
    if (ring_.has_time()) ++stats_.timed_samples;
    if (rejected_) ++stats_.delivered_after_reject;
  }

  void drain_once() {
    const Expected want = expect();
    const std::uint64_t head = ring_.head();
    // The scratch buffer matters only to drains that meet a wrapped record.
    if (want.reaches_wrap) scratch_.poison();
    Visitor v{*this, want};
    const DrainResult r = parser_.drain(v, scratch_.span());
    if (want.reaches_wrap && !scratch_.guard_intact())
      return fail("drain: wrote past the end of the scratch buffer");
    if (!failure_.empty()) return;
    // The reason first: a wrong one explains the counts that follow from it.
    if (!same_reason(r.corrupt, want.corrupt))
      return fail(format("drain: corrupt = \"%s\", expected \"%s\"", text(r.corrupt),
                         text(want.corrupt)));
    if (r.records != want.records || v.samples != want.records)
      return fail(format("drain: %llu records (handler saw %llu), written %llu", ull(r.records),
                         ull(v.samples), ull(want.records)));
    if (r.lost != want.lost || v.lost != want.lost)
      return fail(format("drain: %llu lost (handler saw %llu), written %llu", ull(r.lost),
                         ull(v.lost), ull(want.lost)));
    if (r.bytes != want.bytes)
      return fail(format("drain: %llu bytes consumed, written %llu", ull(r.bytes),
                         ull(want.bytes)));
    if (r.stopped != want.stopped)
      return fail(format("drain: stopped = %d, expected %d", r.stopped, want.stopped));
    if (ring_.tail() != want.tail || ring_.head() != head)
      return fail(format("drain: tail at %#llx, expected %#llx", ull(ring_.tail()),
                         ull(want.tail)));
    if (r.stopped) ++stats_.stops;
    if (r.corrupt) {
      ++stats_.scratch_rejects;
      stats_.corrupt_reasons.insert(r.corrupt);
      rejected_ = true;
    }
    for (std::size_t i = 0; i < want.consumed; ++i) {
      if (queue_.front().type == PERF_RECORD_LOST) ++stats_.lost_records;
      else if (queue_.front().type != PERF_RECORD_SAMPLE) ++stats_.other_records;
      queue_.pop_front();
    }
  }

  FakeRing ring_;
  RingParser parser_;
  GuardedScratch scratch_;
  unsigned stop_after_;
  RingCheckStats& stats_;
  std::deque<Written> queue_;
  std::uint64_t samples_written_ = 0;
  std::size_t written_ = 0;  // bytes, to stop at kMaxWritten
  std::uint64_t pending_lost_ = 0;
  bool rejected_ = false;
  bool crossed_2_64_ = false;
  std::string failure_;
};

std::string check_content(Input in, RingCheckStats& stats) {
  std::uint8_t mode, ring_choice, options;
  std::uint16_t scratch;
  std::uint64_t start;
  if (!in.read(mode) || !in.read(ring_choice) || !in.read(scratch) || !in.read(options) ||
      !in.read(start))
    return {};
  ++stats.content_inputs;
  const std::size_t ring_size = std::size_t(64) << (ring_choice % 11);
  Scenario s(ring_size, scratch ? scratch : ring_size, options & 1, options >> 1,
             start & ~std::uint64_t(7), stats);
  for (std::uint8_t op; s.failure().empty() && !s.full() && in.read(op);) {
    switch (op % 5) {
      case 0:
      case 1: {
        std::uint16_t payload;
        std::uint8_t seed;
        if (in.read(payload) && in.read(seed)) s.sample(payload, seed);
        break;
      }
      case 2: {
        std::uint16_t n;
        if (in.read(n)) s.drop(std::uint64_t(n) + 1);
        break;
      }
      case 3: {
        std::uint8_t type, words;
        if (in.read(type) && in.read(words)) s.other(type, words % 33);
        break;
      }
      case 4:
        s.drain_all();
        break;
    }
  }
  if (s.failure().empty()) s.drain_all();
  return s.failure().empty() ? std::string() : "content input: " + s.failure();
}

// ---- Raw mode --------------------------------------------------------------

// Where views point and what the drain counts, for arbitrary ring bytes.
struct RawVisitor {
  std::span<const std::byte> ring;
  std::span<const std::byte> scratch;
  unsigned stop_after;
  std::uint64_t samples = 0;
  std::uint64_t lost = 0;
  bool outside = false;
  unsigned sum = 0;

  NO_COVERAGE static unsigned touch(std::span<const std::byte> view) {
    unsigned sum = 0;
    for (std::byte b : view) sum += std::to_integer<unsigned>(b);
    return sum;
  }
  static bool inside(std::span<const std::byte> view, std::span<const std::byte> area) {
    return view.data() >= area.data() && view.data() + view.size() <= area.data() + area.size();
  }
  Action on_sample(const RawSample& s) {
    if (!s.data.empty() && !inside(s.data, ring) && !inside(s.data, scratch)) outside = true;
    sum += touch(s.data);  // ASan sees every byte
    ++samples;
    return stop_after && samples == stop_after ? Action::stop : Action::next;
  }
  void on_lost(std::uint64_t n) { lost += n; }
};

std::string check_raw(Input in, RingCheckStats& stats) {
  std::uint8_t mode, options;
  std::uint64_t tail;
  std::uint32_t delta;
  std::uint16_t scratch_choice;
  if (!in.read(mode) || !in.read(tail) || !in.read(delta) || !in.read(options) ||
      !in.read(scratch_choice) || in.rest().size() < 8)
    return {};
  ++stats.raw_inputs;
  std::size_t ring_size = 8;
  while (ring_size * 2 <= in.rest().size() && ring_size * 2 <= kMaxRing) ring_size *= 2;
  FakeRing ring(ring_size, tail, options & 1);
  std::memcpy(ring.data().data(), in.rest().data(), ring_size);
  ring.control().data_head = tail + delta;
  GuardedScratch scratch(scratch_choice ? scratch_choice : ring_size, ring_size);
  RingParser parser = ring.parser();
  const unsigned stop_after = options >> 1;

  // Each drain ends at the head or hands out stop_after >= 1 records of >= 8 bytes.
  for (std::size_t n = 0; n < ring_size / 8 + 2 && parser.readable() != 0; ++n) {
    const std::uint64_t before = ring.tail();
    const std::uint64_t head = ring.head();
    RawVisitor v{ring.data(), scratch.span(), stop_after};
    const DrainResult r = parser.drain(v, scratch.span());
    if (v.outside) return "raw input: a view outside the ring and the scratch buffer";
    if (r.records != v.samples)
      return format("raw input: drain counted %llu records, handed out %llu", ull(r.records),
                    ull(v.samples));
    if (r.lost != v.lost)
      return format("raw input: drain counted %llu lost, handed out %llu", ull(r.lost),
                    ull(v.lost));
    if (r.bytes != ring.tail() - before)
      return format("raw input: drain counted %llu bytes, the tail moved %llu", ull(r.bytes),
                    ull(ring.tail() - before));
    if (r.stopped && (r.corrupt || !stop_after || r.records != stop_after))
      return "raw input: a drain stopped without being told to";
    if (!r.stopped && ring.tail() != head) return "raw input: a drain ended before the head";
    if (r.corrupt) stats.corrupt_reasons.insert(r.corrupt);
    if (r.stopped) ++stats.stops;
  }
  if (parser.readable() != 0) return "raw input: drains did not empty the ring";
  if (!scratch.guard_intact()) return "raw input: a drain wrote past the end of the scratch buffer";
  return {};
}

}  // namespace

std::string check_ring_input(std::span<const std::uint8_t> input, RingCheckStats* stats) {
  RingCheckStats ignored;
  RingCheckStats& s = stats ? *stats : ignored;
  if (input.empty()) return {};
  return input[0] % 2 == 0 ? check_content(Input(input), s) : check_raw(Input(input), s);
}

}  // namespace perfbuf::testing
