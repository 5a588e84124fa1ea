// perfbuf cat's BTF decoder alone: what decoding one record costs, and
// decoding and printing it as JSON or text, for a struct with a member of
// every kind (tests/sample_btf.h, 88 bytes, 19 members). Target: a few
// microseconds per record.
#include <benchmark/benchmark.h>

#include <bpf/btf.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "btf_decoder.h"
#include "sample_btf.h"

namespace {

using perfbuf::tools::BtfDecoder;

struct Fixture {
  Fixture() : btf(perfbuf::testing::make_sample_btf(type_id)), decoder(btf, type_id) {
    record.resize(perfbuf::testing::kSampleSize);
    std::iota(record.begin(), record.end(), std::uint8_t{1});
    record[25] = 'c';  // the char array: "cat", then a NUL
    record[26] = 'a';
    record[27] = 't';
    record[28] = 0;
  }
  ~Fixture() { btf__free(btf); }
  std::uint32_t type_id = 0;
  struct btf* btf;
  BtfDecoder decoder;
  std::vector<std::uint8_t> record;
};

// Bytes to the value model.
void BM_Decode(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) benchmark::DoNotOptimize(f.decoder.decode(f.record));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode);

// What `perfbuf cat --format json` does per record: decode, build the JSON, write it out.
void BM_DecodeToJsonLine(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    const auto d = f.decoder.decode(f.record);
    benchmark::DoNotOptimize(perfbuf::tools::to_json(d.value).dump());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeToJsonLine);

// What `perfbuf cat` (text) does per record.
void BM_DecodeToText(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    const auto d = f.decoder.decode(f.record);
    benchmark::DoNotOptimize(perfbuf::tools::to_text(d.value));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeToText);

}  // namespace

BENCHMARK_MAIN();
