#include "frame.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace perfbuf::tools {

namespace {

constexpr std::uint8_t kMagic[4] = {'P', 'B', 'F', 'R'};
constexpr std::size_t kCrcOffset = 28;

template <class T>
void put(std::uint8_t* at, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) at[i] = static_cast<std::uint8_t>(value >> (8 * i));
}
template <class T>
T get(const std::uint8_t* at) {
  std::make_unsigned_t<T> v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::make_unsigned_t<T>(at[i]) << (8 * i);
  return static_cast<T>(v);
}

// The frame's checksum, its own 4 bytes taken as zero.
std::uint32_t frame_crc(std::span<const std::uint8_t> bytes) {
  const std::uint8_t zero[4] = {};
  uLong crc = crc32(0, bytes.data(), kCrcOffset);
  crc = crc32(crc, zero, sizeof zero);
  crc = crc32(crc, bytes.data() + kCrcOffset + 4, static_cast<uInt>(bytes.size() - kCrcOffset - 4));
  return static_cast<std::uint32_t>(crc);
}

std::string at_record(std::uint32_t i, const std::string& what) {
  return "record " + std::to_string(i) + ": " + what;
}

}  // namespace

FrameResult decode_frame(std::span<const std::uint8_t> bytes) {
  FrameResult r;
  const auto fail = [&r](std::string why) {
    r.error = std::move(why);
    r.frame.records.clear();
    return r;
  };
  if (bytes.size() < kFrameFixedHeader)
    return fail("truncated: " + std::to_string(bytes.size()) + " bytes, a header needs " +
                std::to_string(kFrameFixedHeader));
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return fail("not a frame (bad magic)");
  const std::uint8_t* p = bytes.data();
  if (const auto v = get<std::uint16_t>(p + 4); v != kFrameVersion)
    return fail("version " + std::to_string(v) + " is not supported (this reader knows " +
                std::to_string(kFrameVersion) + ")");
  const std::size_t header_bytes = get<std::uint16_t>(p + 6);
  const std::size_t host_len = get<std::uint16_t>(p + 48);
  if (header_bytes != kFrameFixedHeader + host_len || host_len > kFrameMaxHost)
    return fail("bad header length " + std::to_string(header_bytes) + " for a host name of " +
                std::to_string(host_len) + " bytes");
  if (header_bytes > bytes.size())
    return fail("truncated: " + std::to_string(bytes.size()) + " bytes, the header says " +
                std::to_string(header_bytes));
  if (get<std::uint32_t>(p + kCrcOffset) != frame_crc(bytes)) return fail("checksum mismatch");
  FrameHeader& h = r.frame.header;
  h.run_id = get<std::uint64_t>(p + 8);
  h.first_seq = get<std::uint64_t>(p + 16);
  h.record_count = get<std::uint32_t>(p + 24);
  h.kernel_lost = get<std::uint64_t>(p + 32);
  h.sink_dropped = get<std::uint64_t>(p + 40);
  h.host.assign(reinterpret_cast<const char*>(p + 50), host_len);
  // The smallest record is its header: a count the size cannot hold is corrupt,
  // and is not trusted for a reservation.
  if (h.record_count > (bytes.size() - header_bytes) / kFrameRecordHeader)
    return fail("record count " + std::to_string(h.record_count) + " does not fit in " +
                std::to_string(bytes.size()) + " bytes");
  r.frame.records.reserve(h.record_count);
  std::size_t at = header_bytes;
  for (std::uint32_t i = 0; i < h.record_count; ++i) {
    if (bytes.size() - at < kFrameRecordHeader) return fail(at_record(i, "header runs past the end"));
    FrameRecord rec;
    rec.time_ns = get<std::uint64_t>(p + at);
    rec.cpu = get<std::int32_t>(p + at + 8);
    const std::size_t length = get<std::uint32_t>(p + at + 12);
    at += kFrameRecordHeader;
    if (length > bytes.size() - at)
      return fail(at_record(i, "length " + std::to_string(length) + " runs past the end"));
    rec.bytes = bytes.subspan(at, length);
    at += length;
    r.frame.records.push_back(rec);
  }
  if (at != bytes.size())
    return fail(std::to_string(bytes.size() - at) + " bytes after the last record");
  return r;
}

std::uint32_t frame_record_count(std::span<const std::uint8_t> bytes) {
  return bytes.size() < kFrameFixedHeader ? 0 : get<std::uint32_t>(bytes.data() + 24);
}

std::uint64_t frame_first_seq(std::span<const std::uint8_t> bytes) {
  return bytes.size() < kFrameFixedHeader ? 0 : get<std::uint64_t>(bytes.data() + 16);
}

FramePacker::FramePacker(std::string_view host, std::uint64_t run_id)
    : host_(host.substr(0, kFrameMaxHost)), run_id_(run_id) {}

void FramePacker::start(std::uint64_t first_seq, std::uint64_t kernel_lost,
                        std::uint64_t sink_dropped) {
  const std::size_t header_bytes = kFrameFixedHeader + host_.size();
  buffer_.assign(header_bytes, 0);  // count, crc and the reserved bytes stay 0 until finish()
  std::uint8_t* p = buffer_.data();
  std::memcpy(p, kMagic, sizeof kMagic);
  put<std::uint16_t>(p + 4, kFrameVersion);
  put<std::uint16_t>(p + 6, static_cast<std::uint16_t>(header_bytes));
  put<std::uint64_t>(p + 8, run_id_);
  put<std::uint64_t>(p + 16, first_seq);
  put<std::uint64_t>(p + 32, kernel_lost);
  put<std::uint64_t>(p + 40, sink_dropped);
  put<std::uint16_t>(p + 48, static_cast<std::uint16_t>(host_.size()));
  if (!host_.empty()) std::memcpy(p + 50, host_.data(), host_.size());
  count_ = 0;
  started_ = true;
}

void FramePacker::add(std::uint64_t time_ns, std::int32_t cpu,
                      std::span<const std::uint8_t> bytes) {
  const std::size_t at = buffer_.size();
  buffer_.resize(at + kFrameRecordHeader + bytes.size());
  std::uint8_t* p = buffer_.data() + at;
  put<std::uint64_t>(p, time_ns);
  put<std::int32_t>(p + 8, cpu);
  put<std::uint32_t>(p + 12, static_cast<std::uint32_t>(bytes.size()));
  if (!bytes.empty()) std::memcpy(p + kFrameRecordHeader, bytes.data(), bytes.size());
  ++count_;
}

void FramePacker::finish() {
  put<std::uint32_t>(buffer_.data() + 24, count_);
  put<std::uint32_t>(buffer_.data() + kCrcOffset, frame_crc(buffer_));
  started_ = false;
}

std::vector<std::uint8_t> FramePacker::take(std::vector<std::uint8_t> spare) {
  std::vector<std::uint8_t> out = std::move(buffer_);
  buffer_ = std::move(spare);
  buffer_.clear();
  started_ = false;
  count_ = 0;
  return out;
}

std::optional<SequenceJump> SequenceCheck::add(const FrameHeader& h) {
  Sender& sender = senders_[{h.host, h.run_id}];
  const std::uint64_t expected = sender.next;
  const std::uint64_t end = h.first_seq + h.record_count;
  sender.next = std::max(expected, end);
  if (h.first_seq > expected) {
    sender.holes.emplace(expected, h.first_seq);
    missing_ += h.first_seq - expected;
    return SequenceJump{SequenceJump::gap, expected, h.first_seq, h.first_seq - expected};
  }
  // Records below `expected`: those in a hole fill it (late), the others
  // were seen already (overlap).
  const std::uint64_t lo = h.first_seq, hi = std::min(end, expected);
  if (lo >= hi) return std::nullopt;
  std::uint64_t filled = 0;
  auto it = sender.holes.upper_bound(lo);
  if (it != sender.holes.begin()) --it;
  while (it != sender.holes.end() && it->first < hi) {
    const auto [from, to] = *it;
    if (to <= lo) {
      ++it;
      continue;
    }
    const std::uint64_t a = std::max(from, lo), b = std::min(to, hi);
    filled += b - a;
    it = sender.holes.erase(it);
    if (from < a) sender.holes.emplace(from, a);
    if (b < to) sender.holes.emplace(b, to);  // b == hi: the loop ends
  }
  missing_ -= filled;
  late_ += filled;
  const std::uint64_t again = hi - lo - filled;
  repeated_ += again;
  if (again > 0) return SequenceJump{SequenceJump::overlap, expected, h.first_seq, again};
  return SequenceJump{SequenceJump::late, expected, h.first_seq, filled};
}

std::vector<SequenceHole> SequenceCheck::holes() const {
  std::vector<SequenceHole> out;
  for (const auto& [id, sender] : senders_)
    for (const auto& [from, to] : sender.holes) out.push_back({id.first, id.second, from, to});
  return out;
}

std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       const std::vector<FrameRecord>& records) {
  FramePacker packer(header.host, header.run_id);
  packer.start(header.first_seq, header.kernel_lost, header.sink_dropped);
  for (const FrameRecord& r : records) packer.add(r.time_ns, r.cpu, r.bytes);
  packer.finish();
  return packer.take();
}

}  // namespace perfbuf::tools
