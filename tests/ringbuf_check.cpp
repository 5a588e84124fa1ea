// The checks behind ringbuf_check.h. Every loop is bounded by the input's size
// or the ring's.
#include "ringbuf_check.h"

#include <perfbuf/ringbuf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "fuzz_input.h"

namespace perfbuf::testing {
namespace {

constexpr std::uint32_t kBusy = RingbufCursor::kBusyBit;
constexpr std::uint32_t kDiscard = RingbufCursor::kDiscardBit;
constexpr std::uint32_t kHeader = RingbufCursor::kHeaderBytes;
constexpr std::uint64_t kNoBudget = UINT64_MAX;
// Bytes the fake kernel reserves per content input at most: keeps every input fast.
constexpr std::uint64_t kMaxReserved = 1 << 20;

// The texts the cursor gives, one piece each, by what is wrong.
constexpr const char* kTooFar = "more than the ring size ahead";
constexpr const char* kMisaligned = "not 8-byte aligned";
constexpr const char* kPastProducer = "past the producer";

unsigned long long ull(std::uint64_t v) { return v; }

// What a record occupies in the ring: header and payload, padded to 8 bytes.
std::uint64_t record_bytes(std::uint32_t len) {
  return (std::uint64_t{len & ~(kBusy | kDiscard)} + kHeader + 7) & ~std::uint64_t{7};
}

// Bytes that differ between records and between neighbouring bytes, so a byte
// taken from anywhere else shows (xorshift32).
NO_COVERAGE void fill_bytes(std::span<std::byte> out, std::uint64_t seed) {
  std::uint32_t x = static_cast<std::uint32_t>(seed * 2654435761u) ^ 0x9e3779b9u;
  if (x == 0) x = 1;
  for (std::size_t i = 0; i < out.size(); i += sizeof x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    std::memcpy(out.data() + i, &x, std::min(sizeof x, out.size() - i));
  }
}

// The data area twice over (the second half mirrors the first, as the
// kernel's second mapping does) and the two positions, each its own heap
// block so that ASan sees a read past any of them.
class Area {
 public:
  Area(std::size_t size, std::uint64_t consumer, std::uint64_t producer)
      : size_(size),
        data_(new std::byte[2 * size]()),
        consumer_(new std::uint64_t(consumer)),
        producer_(new std::uint64_t(producer)) {}

  std::size_t size() const { return size_; }
  std::uint64_t mask() const { return size_ - 1; }
  const std::byte* data() const { return data_.get(); }
  std::uint64_t consumer() const { return *consumer_; }
  std::uint64_t producer() const { return *producer_; }
  void set_producer(std::uint64_t pos) { *producer_ = pos; }
  RingbufCursor cursor() const { return RingbufCursor(consumer_.get(), producer_.get(), data(), size_); }

  // Writes at a ring position, through both mappings.
  NO_COVERAGE void put(std::uint64_t pos, std::span<const std::byte> bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const std::uint64_t at = (pos + i) & mask();
      data_[at] = data_[at + size_] = bytes[i];
    }
  }
  void put_header(std::uint64_t pos, std::uint32_t len, std::uint32_t pg_off) {
    const std::uint32_t header[2] = {len, pg_off};
    put(pos, std::as_bytes(std::span(header)));
  }
  // The first word of the header at an 8-aligned position.
  std::uint32_t len_at(std::uint64_t pos) const {
    std::uint32_t len;
    std::memcpy(&len, data() + (pos & mask()), sizeof len);
    return len;
  }
  // The ring's bytes from a position on, read through the first mapping only.
  NO_COVERAGE void copy_out(std::uint64_t pos, std::span<std::byte> out) const {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = data_[(pos + i) & mask()];
  }

 private:
  std::size_t size_;
  std::unique_ptr<std::byte[]> data_;
  std::unique_ptr<std::uint64_t> consumer_;
  std::unique_ptr<std::uint64_t> producer_;
};

// What the cursor must find looking from a position up to a producer position.
struct Expect {
  enum Kind { record, busy, caught_up, corrupt };
  Kind kind = caught_up;
  std::uint64_t pos = 0;        // where the cursor then stands: past discarded records
  std::uint32_t len = 0;        // record: its payload bytes
  const char* reason = nullptr; // corrupt: a piece of the text
  unsigned discards = 0;
};

NO_COVERAGE std::size_t first_difference(std::span<const std::byte> a,
                                         std::span<const std::byte> b) {
  if (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0) return a.size();
  std::size_t i = 0;
  while (a[i] == b[i]) ++i;
  return i;
}

// Drives the cursor and a model of it side by side. The two modes differ in
// where the truth comes from: what the fake kernel wrote, or the ring's bytes.
class Check {
 public:
  Check(std::size_t size, std::uint64_t consumer, std::uint64_t producer, RingbufCheckStats& stats)
      : area_(size, consumer, producer), stats_(stats), pos_(consumer), next_(consumer) {}
  virtual ~Check() = default;

  const std::string& failure() const { return failure_; }
  bool failed() const { return !failure_.empty(); }

  void start() { cursor_.emplace(area_.cursor()); }

  void peek() {
    const Expect e = expect(pos_, area_.producer());
    const std::uint64_t consumer = area_.consumer();
    const auto got = cursor_->peek();
    const bool again = e.kind == Expect::record && peeked_ && last_peek_ == e.pos;
    pos_ = e.pos;
    next_ = e.kind == Expect::record ? e.pos + record_bytes(e.len) : e.pos;
    peeked_ = e.kind == Expect::record;
    last_peek_ = e.pos;
    if (got.has_value() != (e.kind == Expect::record))
      return fail(format("peek at %#llx: %s a record, expected %s", ull(e.pos),
                         got ? "handed out" : "did not hand out", describe(e)));
    if (got) check_view(e, *got, "peek");
    check_reason("peek", cursor_->corrupt(), e);
    if (area_.consumer() != consumer) fail("peek moved the published consumer position");
    if (again) ++stats_.repeated_peeks;
    count(e);
  }

  void advance() {
    cursor_->advance();
    if (next_ == pos_) ++stats_.advances_without_record;
    pos_ = next_;
    peeked_ = false;
  }

  void commit() {
    const std::uint64_t before = area_.consumer();
    cursor_->commit();
    check_published("commit", before);
  }

  // budget: bit 7 none, else 0..127; stop: bits 0-6 stop after that many
  // records (0 never), bit 7 the kernel writes from inside the visitor.
  void drain(std::uint8_t budget_choice, std::uint8_t stop_choice) {
    const std::uint64_t budget = budget_choice & 0x80 ? kNoBudget : budget_choice & 0x7f;
    const unsigned stop_after = stop_choice & 0x7f;
    const std::uint64_t start = pos_;
    const std::uint64_t end = area_.producer();  // a drain reads up to where the producer was
    const std::uint64_t before = area_.consumer();

    std::vector<Expect> want;
    std::uint64_t pos = pos_;
    bool stopped = false;
    Expect last;  // what ended the drain, if not its budget or the visitor
    last.kind = Expect::record;
    while (want.size() < budget) {
      const Expect e = expect(pos, end);
      count(e);
      pos = e.pos;
      if (e.kind != Expect::record) {
        last = e;
        break;
      }
      want.push_back(e);
      pos += record_bytes(e.len);
      if (stop_after != 0 && want.size() == stop_after) {
        stopped = true;
        break;
      }
    }
    if (last.kind == Expect::corrupt) pos = end;  // skips what cannot be parsed

    struct Visitor {
      Check& check;
      const std::vector<Expect>& want;
      unsigned stop_after;
      bool write_inside;
      std::size_t n = 0;
      Action on_sample(const RawSample& s) {
        if (n >= want.size())
          check.fail(format("drain handed out record %zu, expected %zu", n + 1, want.size()));
        else
          check.check_view(want[n], s.data, "drain");
        if (s.time_ns != 0) check.fail("drain: a ring buffer record with a time stamp");
        ++n;
        if (n == 1 && write_inside) check.write_during_drain();
        return stop_after != 0 && n == stop_after ? Action::stop : Action::next;
      }
    } visitor{*this, want, stop_after, (stop_choice & 0x80) != 0};
    const DrainResult r = cursor_->drain(visitor, budget);
    // Without a budget the drain looks at nothing: advance() still goes past
    // what the last peek() returned.
    if (budget != 0) {
      pos_ = next_ = pos;
      peeked_ = false;
    }
    if (failed()) return;
    // The reason first: a wrong one explains the counts that follow from it.
    check_reason("drain", r.corrupt, last);
    if (failed()) return;
    if (r.records != want.size() || visitor.n != want.size())
      return fail(format("drain from %#llx to %#llx (budget %llu, stop after %u): %llu records "
                         "(visitor saw %zu), expected %zu",
                         ull(start), ull(end), ull(budget), stop_after, ull(r.records), visitor.n,
                         want.size()));
    if (r.stopped != stopped)
      return fail(format("drain: stopped = %d, expected %d", r.stopped, stopped));
    if (r.bytes != pos - start)
      return fail(format("drain: %llu bytes consumed, expected %llu", ull(r.bytes),
                         ull(pos - start)));
    if (r.lost != 0) return fail("drain: lost records from a ring buffer");
    check_published("drain", before);
    if (budget == 0) ++stats_.zero_budget_drains;
    else if (budget != kNoBudget && want.size() == budget) ++stats_.budget_ends;
    if (stopped) ++stats_.visitor_stops;
  }

  // A new cursor on the same ring, as a reader opened anew: it starts from the
  // published consumer position, whatever the old one advanced past.
  void reopen() {
    if (pos_ != area_.consumer()) ++stats_.reopens_dropping_advance;
    cursor_.emplace(area_.cursor());
    pos_ = next_ = area_.consumer();
    peeked_ = false;
  }

  std::uint64_t readable() const { return cursor_->readable(); }

 protected:
  void fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  // The truth about the ring from a position up to a producer position.
  virtual Expect expect(std::uint64_t pos, std::uint64_t producer) = 0;
  // Compares the bytes handed out with what belongs at that record.
  virtual void check_payload(const Expect& e, std::span<const std::byte> got) = 0;
  virtual void write_during_drain() {}
  // After the published consumer position moved.
  virtual void published() {}

  Area area_;
  RingbufCheckStats& stats_;

 private:
  static const char* describe(const Expect& e) {
    switch (e.kind) {
      case Expect::record: return "a record";
      case Expect::busy: return "none (BUSY)";
      case Expect::caught_up: return "none (caught up)";
      case Expect::corrupt: return e.reason;
    }
    return "?";
  }

  void count(const Expect& e) {
    stats_.discards_skipped += e.discards;
    if (e.kind == Expect::busy) ++stats_.busy_waits;
  }

  // A view: inside the area, in place at the record's offset, of the
  // record's length, with the record's bytes.
  void check_view(const Expect& e, std::span<const std::byte> got, const char* what) {
    const std::byte* area = area_.data();
    const std::size_t size = area_.size();
    if (got.data() < area || got.data() > area + 2 * size ||
        got.size() > std::size_t(area + 2 * size - got.data()))
      return fail(format("%s: a view of %zu bytes outside the mapped area", what, got.size()));
    const std::uint64_t offset = e.pos & area_.mask();
    if (got.data() != area + offset + kHeader)
      return fail(format("%s: record at %#llx handed out at offset %lld of the area, not in "
                         "place at %llu",
                         what, ull(e.pos), static_cast<long long>(got.data() - area),
                         ull(offset + kHeader)));
    if (got.size() != e.len)
      return fail(format("%s: record at %#llx: %zu bytes, its header says %u", what,
                         ull(e.pos), got.size(), e.len));
    check_payload(e, got);
    ++stats_.records;
    if (e.len == 0) ++stats_.empty_records;
    if (offset + kHeader < size && offset + kHeader + e.len > size) ++stats_.payloads_across_end;
    if (offset + kHeader == size && e.len > 0) ++stats_.payloads_after_end;
    if (offset + record_bytes(e.len) == size) ++stats_.records_ending_at_end;
  }

  void check_reason(const char* what, const char* got, const Expect& e) {
    const char* want = e.kind == Expect::corrupt ? e.reason : nullptr;
    if ((got == nullptr) != (want == nullptr) || (got && !std::strstr(got, want)))
      return fail(format("%s at %#llx: corrupt = \"%s\", expected \"%s\"", what, ull(e.pos),
                         got ? got : "none", want ? want : "none"));
    if (got) stats_.corrupt_reasons.insert(got);
  }

  // The published consumer position is where the model stands, and (on a
  // ring no kernel would call corrupt) it moved forward, by whole records,
  // never past the producer.
  void check_published(const char* what, std::uint64_t before) {
    const std::uint64_t now = area_.consumer();
    if (now != pos_)
      return fail(format("%s: consumer position %#llx, expected %#llx", what, ull(now),
                         ull(pos_)));
    const std::uint64_t producer = area_.producer();
    const bool sane = before % 8 == 0 && producer % 8 == 0 && producer - before <= area_.size();
    if (sane && (now % 8 != 0 || now - before > producer - before))
      return fail(format("%s: consumer position moved from %#llx to %#llx, producer at %#llx",
                         what, ull(before), ull(now), ull(producer)));
    if (sane && now < before) ++stats_.crossed_2_64;
    published();
  }

  std::optional<RingbufCursor> cursor_;
  std::string failure_;
  std::uint64_t pos_;   // where the cursor's next peek looks
  std::uint64_t next_;  // where advance() takes it
  bool peeked_ = false;
  std::uint64_t last_peek_ = 0;
};

// ---- Content mode ----------------------------------------------------------

class ContentCheck final : public Check {
 public:
  ContentCheck(std::size_t size, std::uint64_t start, RingbufCheckStats& stats)
      : Check(size, start, start, stats) {
    // What a ring holds before anything is written: not zero, which would
    // read as empty records.
    std::vector<std::byte> stale(size);
    fill_bytes(stale, size);
    area_.put(0, stale);
  }

  bool full() const { return reserved_ >= kMaxReserved; }

  // kernel/bpf/ringbuf.c __bpf_ringbuf_reserve: no more than size - 1 bytes
  // between the consumer and the new producer position; the header goes in
  // BUSY, the producer position after it.
  bool reserve(std::uint32_t len) {
    len &= static_cast<std::uint32_t>(area_.mask());
    const std::uint64_t pos = area_.producer();
    const std::uint64_t bytes = record_bytes(len);
    if (pos + bytes - area_.consumer() > area_.mask()) {
      ++stats_.reservations_refused;
      return false;
    }
    Written w{pos, len, Written::busy, std::vector<std::byte>(len)};
    fill_bytes(w.payload, ++records_);
    // The payload space still holds whatever was there: the kernel writes it
    // while the record is BUSY. Make it differ from what will be written.
    std::vector<std::byte> unwritten(len);
    fill_bytes(unwritten, ~records_);
    area_.put(pos + kHeader, unwritten);
    area_.put_header(pos, len | kBusy, pg_off(pos));
    area_.set_producer(pos + bytes);
    reserved_ += bytes;
    if (pos + bytes < pos) ++stats_.crossed_2_64;
    if (area_.producer() - area_.consumer() == area_.size() - 8) ++stats_.rings_filled;
    written_.push_back(std::move(w));
    return true;
  }

  // bpf_ringbuf_commit: the payload, then BUSY cleared (DISCARD set).
  void submit(std::uint8_t k) { finish(k, false); }
  void discard(std::uint8_t k) { finish(k, true); }

  void output(std::uint32_t len) {
    if (reserve(len)) finish_at(written_.size() - 1, false);
  }

  void submit_all() {
    for (std::size_t i = 0; i < written_.size(); ++i)
      if (written_[i].state == Written::busy) finish_at(i, false);
  }

  // Everything the kernel wrote is consumed.
  void check_empty() {
    if (failed()) return;
    if (area_.consumer() != area_.producer() || readable() != 0)
      fail(format("ring not empty after the final drain: consumer %#llx, producer %#llx",
                  ull(area_.consumer()), ull(area_.producer())));
    else if (!written_.empty())
      fail(format("%zu records not consumed after the final drain", written_.size()));
  }

 private:
  struct Written {
    enum State { busy, submitted, discarded };
    std::uint64_t pos;
    std::uint32_t len;
    State state;
    std::vector<std::byte> payload;
  };

  // The kernel stores the record's page offset from the ring buffer's start
  // in the header's second word; the cursor has no use for it.
  static std::uint32_t pg_off(std::uint64_t pos) {
    return static_cast<std::uint32_t>(pos >> 12) + 1;
  }

  void finish(std::uint8_t k, bool discarded) {
    std::size_t busy = 0;
    for (const Written& w : written_) busy += w.state == Written::busy;
    if (busy == 0) return;
    std::size_t nth = k % busy;
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i].state != Written::busy) continue;
      if (nth-- == 0) {
        if (i != first_busy()) ++stats_.out_of_order_submits;
        return finish_at(i, discarded);
      }
    }
  }

  std::size_t first_busy() const {
    std::size_t i = 0;
    while (i < written_.size() && written_[i].state != Written::busy) ++i;
    return i;
  }

  void finish_at(std::size_t i, bool discarded) {
    Written& w = written_[i];
    if (discarded) {
      w.state = Written::discarded;
      area_.put_header(w.pos, w.len | kDiscard, pg_off(w.pos));
    } else {
      w.state = Written::submitted;
      area_.put(w.pos + kHeader, w.payload);
      area_.put_header(w.pos, w.len, pg_off(w.pos));
    }
  }

  // The record the kernel reserved at a position, or nullptr.
  const Written* at(std::uint64_t pos) const {
    if (written_.empty()) return nullptr;
    const std::uint64_t base = written_.front().pos;
    const auto it = std::lower_bound(
        written_.begin(), written_.end(), pos - base,
        [base](const Written& w, std::uint64_t off) { return w.pos - base < off; });
    return it != written_.end() && it->pos == pos ? &*it : nullptr;
  }

  // Records are handed out in reservation order: a BUSY one holds back the
  // rest, a discarded one is stepped over.
  Expect expect(std::uint64_t pos, std::uint64_t producer) override {
    Expect e;
    e.pos = pos;
    while (e.pos != producer) {
      const Written* w = at(e.pos);
      if (!w) {
        fail(format("model: no record reserved at %#llx", ull(e.pos)));
        e.kind = Expect::caught_up;
        return e;
      }
      if (w->state == Written::busy) {
        e.kind = Expect::busy;
        return e;
      }
      if (w->state == Written::discarded) {
        e.pos += record_bytes(w->len);
        ++e.discards;
        continue;
      }
      e.kind = Expect::record;
      e.len = w->len;
      return e;
    }
    e.kind = Expect::caught_up;
    return e;
  }

  void check_payload(const Expect& e, std::span<const std::byte> got) override {
    const Written* w = at(e.pos);
    if (!w) return fail(format("record at %#llx handed out where none was reserved", ull(e.pos)));
    const std::size_t i = first_difference(w->payload, got);
    if (i != got.size())
      fail(format("record at %#llx (%u bytes, %llu before the ring's end): byte %zu is %#x, "
                  "written %#x",
                  ull(e.pos), w->len, ull(area_.size() - (e.pos & area_.mask())), i,
                  unsigned(got[i]), unsigned(w->payload[i])));
  }

  // The kernel goes on writing while the reader drains.
  void write_during_drain() override {
    const std::size_t before = written_.size();
    output(8);
    if (written_.size() != before) ++stats_.writes_during_drain;
  }

  // The space of records before the consumer position is the kernel's again.
  void published() override {
    while (!written_.empty() && written_.front().pos != area_.consumer()) written_.pop_front();
  }

  std::deque<Written> written_;  // from the published consumer position on
  std::uint64_t records_ = 0;
  std::uint64_t reserved_ = 0;
};

std::string check_content(Input in, RingbufCheckStats& stats) {
  std::uint8_t mode, ring;
  std::uint64_t start;
  if (!in.read(mode) || !in.read(ring) || !in.read(start)) return {};
  ++stats.content_inputs;
  ContentCheck c(std::size_t(16) << (ring % 13), start & ~std::uint64_t{7}, stats);
  c.start();
  for (std::uint8_t op; !c.failed() && !c.full() && in.read(op);) {
    std::uint16_t len;
    std::uint8_t a, b;
    switch (op % 9) {
      case 0:
        if (in.read(len)) c.reserve(len);
        break;
      case 1:
        if (in.read(a)) c.submit(a);
        break;
      case 2:
        if (in.read(a)) c.discard(a);
        break;
      case 3:
        if (in.read(len)) c.output(len);
        break;
      case 4: c.peek(); break;
      case 5: c.advance(); break;
      case 6: c.commit(); break;
      case 7:
        if (in.read(a) && in.read(b)) c.drain(a, b);
        break;
      case 8: c.reopen(); break;
    }
  }
  if (!c.failed()) {
    c.submit_all();
    c.drain(0x80, 0);
    c.check_empty();
  }
  return c.failed() ? "content input: " + c.failure() : std::string();
}

// ---- Raw mode --------------------------------------------------------------

class RawCheck final : public Check {
 public:
  RawCheck(std::size_t size, std::uint64_t consumer, std::uint64_t producer,
           std::span<const std::uint8_t> bytes, RingbufCheckStats& stats)
      : Check(size, consumer, producer, stats) {
    area_.put(0, std::as_bytes(bytes.first(std::min(bytes.size(), size))));
  }

  // After a final drain: caught up, or held back by a BUSY record.
  void check_final() {
    if (failed()) return;
    const std::uint64_t consumer = area_.consumer();
    if (consumer != area_.producer() && expect(consumer, area_.producer()).kind != Expect::busy)
      fail(format("final drain ended at %#llx, producer at %#llx", ull(consumer),
                  ull(area_.producer())));
  }

 private:
  // The format as the kernel writes it: from the position, 8-byte headers
  // {len | BUSY | DISCARD, pg_off}, each record padded to 8 bytes, no more
  // than the ring's size between the position and the producer.
  Expect expect(std::uint64_t pos, std::uint64_t producer) override {
    Expect e;
    e.pos = pos;
    while (e.pos != producer) {
      e.kind = Expect::corrupt;
      if (producer - e.pos > area_.size()) {
        e.reason = kTooFar;
        return e;
      }
      if (e.pos % 8 != 0) {
        e.reason = kMisaligned;
        return e;
      }
      const std::uint32_t len = area_.len_at(e.pos);
      if (len & kBusy) {
        e.kind = Expect::busy;
        return e;
      }
      if (record_bytes(len) > producer - e.pos) {
        e.reason = kPastProducer;
        return e;
      }
      if (len & kDiscard) {
        e.pos += record_bytes(len);
        ++e.discards;
        continue;
      }
      e.kind = Expect::record;
      e.len = len;
      return e;
    }
    e.kind = Expect::caught_up;
    return e;
  }

  // The bytes after the header, read through the first mapping (with the
  // ring's end wrapped by hand) are the ones handed out.
  void check_payload(const Expect& e, std::span<const std::byte> got) override {
    std::vector<std::byte> want(got.size());
    area_.copy_out(e.pos + kHeader, want);
    const std::size_t i = first_difference(want, got);
    if (i != got.size())
      fail(format("record at %#llx: byte %zu is %#x, the ring holds %#x", ull(e.pos), i,
                  unsigned(got[i]), unsigned(want[i])));
  }
};

std::string check_raw(Input in, RingbufCheckStats& stats) {
  std::uint8_t mode, ring, n;
  std::uint64_t start;
  std::int32_t delta;
  if (!in.read(mode) || !in.read(ring) || !in.read(start) || !in.read(delta) || !in.read(n))
    return {};
  struct Op {
    std::uint8_t op, a, b;
  };
  std::vector<Op> ops(n);
  for (Op& op : ops)
    if (!in.read(op)) return {};
  ++stats.raw_inputs;
  RawCheck c(std::size_t(16) << (ring % 13), start, start + static_cast<std::int64_t>(delta),
             in.rest(), stats);
  c.start();
  for (std::size_t i = 0; i < ops.size() && !c.failed(); ++i) {
    switch (ops[i].op % 5) {
      case 0: c.peek(); break;
      case 1: c.advance(); break;
      case 2: c.commit(); break;
      case 3: c.drain(ops[i].a, ops[i].b & 0x7f); break;
      case 4: c.reopen(); break;
    }
  }
  if (!c.failed()) {
    c.drain(0x80, 0);
    c.check_final();
  }
  return c.failed() ? "raw input: " + c.failure() : std::string();
}

}  // namespace

std::string check_ringbuf_input(std::span<const std::uint8_t> input, RingbufCheckStats* stats) {
  RingbufCheckStats ignored;
  RingbufCheckStats& s = stats ? *stats : ignored;
  if (input.empty()) return {};
  return input[0] % 2 == 0 ? check_content(Input(input), s) : check_raw(Input(input), s);
}

}  // namespace perfbuf::testing
