// Replays the backward ring fuzz corpus (fuzz/corpus/backward_ring, written by
// fuzz/make_corpus.py) through the fuzz target's checks, and checks that the
// corpus still reaches every case it is meant to.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backward_check.h"

namespace perfbuf {
namespace {

using testing::BackwardCheckStats;
using testing::check_backward_input;

namespace fs = std::filesystem;

std::vector<std::string> corpus_files() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(PERFBUF_BACKWARD_CORPUS, ec))
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::uint8_t> read_seed(const std::string& name) {
  std::ifstream in(fs::path(PERFBUF_BACKWARD_CORPUS) / name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class BackwardCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(BackwardCorpus, WalkHandsOutWhatTheSeedDescribes) {
  const std::vector<std::uint8_t> seed = read_seed(GetParam());
  ASSERT_FALSE(seed.empty()) << GetParam();
  EXPECT_EQ(check_backward_input(seed), "") << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Seeds, BackwardCorpus, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(BackwardCorpusCoverage, SeedsReachEveryCase) {
  BackwardCheckStats s;
  const std::vector<std::string> files = corpus_files();
  ASSERT_FALSE(files.empty()) << "no seeds in " << PERFBUF_BACKWARD_CORPUS;
  for (const std::string& name : files) check_backward_input(read_seed(name), &s);
  EXPECT_GT(s.content_inputs, 0u);
  EXPECT_GT(s.raw_inputs, 0u);
  EXPECT_GT(s.snapshots, 0u);
  EXPECT_GT(s.records, 0u);
  EXPECT_GT(s.timed_records, 0u);
  EXPECT_GT(s.records_across_end, 0u);
  EXPECT_GT(s.lost_records, 0u);
  EXPECT_GT(s.partial_dropped, 0u);
  EXPECT_GT(s.unwritten_reached, 0u);
  EXPECT_GT(s.exactly_full, 0u);
  EXPECT_GT(s.untrusted_tail, 0u);
  EXPECT_GT(s.crossed_2_64, 0u);
  for (const char* reason :
       {"record size smaller than its header", "record size not a multiple of 8",
        "sample fields larger than the record", "lost record too short"})
    EXPECT_TRUE(s.corrupt_reasons.count(reason)) << "no seed gives: " << reason;
}

}  // namespace
}  // namespace perfbuf
