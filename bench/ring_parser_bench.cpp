// The ring parser alone on an in-memory ring: what parsing costs per record,
// with records in place and wrapped, beside a plain memcpy of the same bytes.
#include <benchmark/benchmark.h>

#include <perfbuf/ring.h>

#include <array>
#include <cstring>
#include <vector>

#include "fake_ring.h"

namespace {

using perfbuf::Action;
using perfbuf::DrainResult;
using perfbuf::RawSample;
using perfbuf::testing::FakeRing;

// Touches every record the way a real handler would look at its header.
struct Touch {
  std::uint64_t sum = 0;
  Action on_sample(const RawSample& s) {
    std::uint64_t v;
    std::memcpy(&v, s.data.data(), sizeof v);
    sum += v;
    return Action::next;
  }
  void on_lost(std::uint64_t) {}
};

std::array<std::byte, 65536> scratch;

// Record bytes in the ring for a payload: header, size field, payload, padding.
std::size_t record_bytes(std::size_t payload) { return (8 + 4 + payload + 7) & ~std::size_t(7); }

// A 1 MiB ring full of records, drained from the same start again and again.
void BM_ParseInPlace(benchmark::State& state) {
  const std::size_t payload = static_cast<std::size_t>(state.range(0));
  FakeRing ring(1 << 20);
  const std::vector<std::byte> bytes(payload, std::byte{1});
  std::size_t records = 0;
  while (ring.head() + record_bytes(payload) <= (1 << 20)) {
    ring.add_sample(bytes);
    ++records;
  }
  Touch touch;
  for (auto _ : state) {
    ring.control().data_tail = 0;
    const DrainResult r = ring.parser().drain(touch, scratch);
    benchmark::DoNotOptimize(r.records);
  }
  benchmark::DoNotOptimize(touch.sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * records * payload));
}

// One record that wraps the end of the ring, so every drain copies it into scratch.
void BM_ParseWrapped(benchmark::State& state) {
  const std::size_t payload = static_cast<std::size_t>(state.range(0));
  std::size_t size = 64;
  while (size < record_bytes(payload)) size *= 2;
  const std::uint64_t start = size - 8;  // only the header fits before the end
  FakeRing ring(size, start);
  ring.add_sample(std::vector<std::byte>(payload, std::byte{1}));
  Touch touch;
  for (auto _ : state) {
    ring.control().data_tail = start;
    const DrainResult r = ring.parser().drain(touch, scratch);
    benchmark::DoNotOptimize(r.records);
  }
  benchmark::DoNotOptimize(touch.sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload));
}

// The limit: copying the same payload bytes, record by record, out of a 1 MiB buffer.
void BM_Memcpy(benchmark::State& state) {
  const std::size_t payload = static_cast<std::size_t>(state.range(0));
  const std::size_t stride = record_bytes(payload);
  const std::size_t records = (1 << 20) / stride;
  std::vector<std::byte> src(1 << 20, std::byte{1});
  std::vector<std::byte> dst(payload);
  for (auto _ : state) {
    for (std::size_t i = 0; i < records; ++i) {
      std::memcpy(dst.data(), src.data() + i * stride, payload);
      benchmark::ClobberMemory();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * records * payload));
}

BENCHMARK(BM_ParseInPlace)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK(BM_ParseWrapped)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK(BM_Memcpy)->Arg(16)->Arg(256)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
