// Replays the fuzz corpus of the ring buffer cursor (fuzz/corpus/ringbuf_cursor,
// written by fuzz/make_corpus.py) through the fuzz target's checks, so the
// plain test suite catches whatever the corpus encodes; and checks that the
// corpus still reaches every case it is meant to.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ringbuf_check.h"

namespace perfbuf {
namespace {

using testing::check_ringbuf_input;
using testing::RingbufCheckStats;

namespace fs = std::filesystem;

std::vector<std::string> corpus_files() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(PERFBUF_RINGBUF_CORPUS, ec))
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::uint8_t> read_seed(const std::string& name) {
  std::ifstream in(fs::path(PERFBUF_RINGBUF_CORPUS) / name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class RingbufCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(RingbufCorpus, CursorHandsOutWhatTheSeedDescribes) {
  const std::vector<std::uint8_t> seed = read_seed(GetParam());
  ASSERT_FALSE(seed.empty()) << GetParam();
  EXPECT_EQ(check_ringbuf_input(seed), "") << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RingbufCorpus, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;  // seed names are identifiers
                         });

TEST(RingbufCorpusCoverage, SeedsReachEveryCase) {
  RingbufCheckStats s;
  const std::vector<std::string> files = corpus_files();
  ASSERT_FALSE(files.empty()) << "no seeds in " << PERFBUF_RINGBUF_CORPUS;
  for (const std::string& name : files) check_ringbuf_input(read_seed(name), &s);

  EXPECT_GT(s.content_inputs, 0u);
  EXPECT_GT(s.raw_inputs, 0u);
  EXPECT_GT(s.records, 0u);
  EXPECT_GT(s.empty_records, 0u);
  EXPECT_GT(s.payloads_across_end, 0u);
  EXPECT_GT(s.payloads_after_end, 0u);
  EXPECT_GT(s.records_ending_at_end, 0u);
  EXPECT_GT(s.busy_waits, 0u);
  EXPECT_GT(s.discards_skipped, 0u);
  EXPECT_GT(s.out_of_order_submits, 0u);
  EXPECT_GT(s.reservations_refused, 0u);
  EXPECT_GT(s.rings_filled, 0u);
  EXPECT_GT(s.repeated_peeks, 0u);
  EXPECT_GT(s.advances_without_record, 0u);
  EXPECT_GT(s.budget_ends, 0u);
  EXPECT_GT(s.zero_budget_drains, 0u);
  EXPECT_GT(s.visitor_stops, 0u);
  EXPECT_GT(s.writes_during_drain, 0u);
  EXPECT_GT(s.reopens_dropping_advance, 0u);
  EXPECT_GT(s.crossed_2_64, 0u);
  // Every reason RingbufCursor gives for rejecting a ring.
  for (const char* reason :
       {"producer is more than the ring size ahead of consumer",
        "consumer position is not 8-byte aligned", "record runs past the producer position"})
    EXPECT_TRUE(s.corrupt_reasons.count(reason)) << "no seed gives: " << reason;
}

}  // namespace
}  // namespace perfbuf
