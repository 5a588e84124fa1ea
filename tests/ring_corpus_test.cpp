// Replays the fuzz corpus (fuzz/corpus/ring_parser, written by
// fuzz/make_corpus.py) through the fuzz target's checks, so the plain test
// suite catches whatever the corpus encodes; and checks that the corpus still
// reaches every case it is meant to.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ring_check.h"

namespace perfbuf {
namespace {

using testing::check_ring_input;
using testing::RingCheckStats;

namespace fs = std::filesystem;

std::vector<std::string> corpus_files() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(PERFBUF_RING_CORPUS, ec))
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::uint8_t> read_seed(const std::string& name) {
  std::ifstream in(fs::path(PERFBUF_RING_CORPUS) / name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class RingCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(RingCorpus, ParserHandsOutWhatTheSeedDescribes) {
  const std::vector<std::uint8_t> seed = read_seed(GetParam());
  ASSERT_FALSE(seed.empty()) << GetParam();
  EXPECT_EQ(check_ring_input(seed), "") << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RingCorpus, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;  // seed names are identifiers
                         });

TEST(RingCorpusCoverage, SeedsReachEveryCase) {
  RingCheckStats s;
  const std::vector<std::string> files = corpus_files();
  ASSERT_FALSE(files.empty()) << "no seeds in " << PERFBUF_RING_CORPUS;
  for (const std::string& name : files) check_ring_input(read_seed(name), &s);

  EXPECT_GT(s.content_inputs, 0u);
  EXPECT_GT(s.raw_inputs, 0u);
  EXPECT_GT(s.samples_in_place, 0u);
  EXPECT_GT(s.samples_wrapped, 0u);
  EXPECT_GT(s.payloads_across_end, 0u);
  EXPECT_GT(s.records_ending_at_end, 0u);
  EXPECT_GT(s.timed_samples, 0u);
  EXPECT_GT(s.lost_records, 0u);
  EXPECT_GT(s.kernel_drops, 0u);
  EXPECT_GT(s.other_records, 0u);
  EXPECT_GT(s.stops, 0u);
  EXPECT_GT(s.scratch_rejects, 0u);
  EXPECT_GT(s.delivered_after_reject, 0u);
  EXPECT_GT(s.crossed_2_64, 0u);
  // Every reason RingParser::drain gives for rejecting a ring.
  for (const char* reason :
       {"head is more than the ring size ahead of tail", "head or tail is not 8-byte aligned",
        "record size smaller than its header", "record size not a multiple of 8",
        "record runs past the head", "wrapped record larger than the scratch buffer",
        "sample fields larger than the record", "lost record too short"})
    EXPECT_TRUE(s.corrupt_reasons.count(reason)) << "no seed gives: " << reason;
}

}  // namespace
}  // namespace perfbuf
