// The BTF decoder on the BTF of tests/bpf/cat_records.bpf.c, compiled with
// the build: no kernel needed.
#include "btf_decoder.h"

#include <gtest/gtest.h>

#include <bpf/btf.h>

#include <cstddef>
#include <memory>

#include "cat_record_values.h"

namespace perfbuf::tools {
namespace {

using testing::bytes_of;
using testing::known_cat_json;
using testing::known_cat_record;

// The JSON a reader of the output gets (keys compare regardless of order).
nlohmann::json plain(const Json& j) { return nlohmann::json::parse(j.dump()); }

struct BtfFree {
  void operator()(struct btf* b) const { btf__free(b); }
};

class BtfDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    btf_.reset(btf__parse(PERFBUF_CAT_BPF_OBJ, nullptr));
    ASSERT_TRUE(btf_) << "cannot read the BTF of " << PERFBUF_CAT_BPF_OBJ;
  }
  BtfDecoder decoder(const char* type) {
    const auto id = BtfDecoder::find_type(btf_.get(), type);
    if (!id) throw std::runtime_error(std::string("no type ") + type);
    return BtfDecoder(btf_.get(), *id);
  }
  std::unique_ptr<struct btf, BtfFree> btf_;
};

TEST_F(BtfDecoderTest, EveryKindOfFieldDecodesToItsValue) {
  const BtfDecoder d = decoder("cat_record");
  EXPECT_EQ(d.type_size(), sizeof(cat_record));
  const Decoded out = d.decode(bytes_of(known_cat_record(42)));
  EXPECT_FALSE(out.short_record);
  EXPECT_TRUE(out.trailing.empty());
  EXPECT_FALSE(out.value.partial);
  // Through a JSON string and back: what a reader of the output gets.
  const nlohmann::json got = nlohmann::json::parse(to_json(out.value).dump());
  EXPECT_EQ(got, known_cat_json(42)) << got.dump(1);
  // The order of the fields is the struct's.
  EXPECT_EQ(out.value.fields.front().name, "u8");
  EXPECT_EQ(out.value.fields.back().name, "seq");
}

TEST_F(BtfDecoderTest, TextShowsEveryKindEscapingStrings) {
  const std::string text = to_text(decoder("cat_record").decode(bytes_of(known_cat_record(7))).value);
  for (const char* part :
       {"{u8=200, s8=-100, u16=60000, s16=-30000, u32=4000000000, s32=-2000000000, ",
        "u64=18000000000000000000, s64=-9000000000000000000, flag=true, ",
        R"(comm="perf\"buf\\\n\x01", color=CAT_BLUE, delta=CAT_DOWN, )",
        "origin={x=-5, y=7}, path=[{x=1, y=2}, {x=-3, y=-4}], ",
        "word={word=67305985, bytes=[1, 2, 3, 4]}, counts=[1, 2, 3], kind=5, level=-9, ",
        "big=1000000, where=0xffff888012345678, lo=4660, hi=43981, seq=7}"})
    EXPECT_NE(text.find(part), std::string::npos) << part << "\nin " << text;
}

TEST_F(BtfDecoderTest, EnumWithoutANameForItsValueIsANumber) {
  cat_record r = known_cat_record(1);
  r.color = static_cast<cat_color>(3);
  r.delta = static_cast<cat_delta>(-7);
  const nlohmann::json got = to_json(decoder("cat_record").decode(bytes_of(r)).value);
  EXPECT_EQ(got["color"], 3);
  EXPECT_EQ(got["delta"], -7);  // a signed enum stays signed
}

TEST_F(BtfDecoderTest, StringStopsAtTheFirstNulAndFullArrayHasNoNul) {
  cat_record r = known_cat_record(1);
  std::memcpy(r.comm, "ab\0cd", 6);
  EXPECT_EQ(to_json(decoder("cat_record").decode(bytes_of(r)).value)["comm"], "ab");
  std::memset(r.comm, 'x', sizeof r.comm);  // 16 chars, no NUL: all of them
  EXPECT_EQ(to_json(decoder("cat_record").decode(bytes_of(r)).value)["comm"],
            std::string(16, 'x'));
  r.comm[0] = static_cast<char>(0xff);  // not UTF-8: still valid JSON, the byte kept as U+00FF
  r.comm[1] = 0;
  const Json j = to_json(decoder("cat_record").decode(bytes_of(r)).value);
  EXPECT_EQ(j["comm"], "\xc3\xbf");
  EXPECT_NE(to_text(decoder("cat_record").decode(bytes_of(r)).value).find(R"(comm="\xff")"),
            std::string::npos);
  // Overlong and surrogate forms are not UTF-8 either (found by the fuzzer).
  std::memcpy(r.comm, "a\xc0\x80\xed\xa0\x80", 7);
  EXPECT_EQ(to_json(decoder("cat_record").decode(bytes_of(r)).value)["comm"],
            "a\xc3\x80\xc2\x80\xc3\xad\xc2\xa0\xc2\x80");
  std::memcpy(r.comm, "\xe2\x82\xac", 4);  // a valid one stays as it is
  EXPECT_EQ(to_json(decoder("cat_record").decode(bytes_of(r)).value)["comm"], "\xe2\x82\xac");
}

TEST_F(BtfDecoderTest, ShortRecordDecodesWhatIsThereAndSaysSo) {
  const std::vector<std::uint8_t> all = bytes_of(known_cat_record(3));
  const BtfDecoder d = decoder("cat_record");
  // Cut inside u64: the fields before it, not u64 itself.
  const std::size_t cut = offsetof(cat_record, u64) + 3;
  Decoded out = d.decode(std::span(all).first(cut));
  EXPECT_TRUE(out.short_record);
  EXPECT_EQ(out.record_size, cut);
  EXPECT_TRUE(out.value.partial);
  nlohmann::json j = to_json(out.value);
  EXPECT_EQ(j["s32"], -2000000000);
  EXPECT_FALSE(j.contains("u64")) << j;
  EXPECT_NE(to_text(out.value).find("s32=-2000000000, ...}"), std::string::npos) << to_text(out.value);
  // Cut inside comm: the part that is there, flagged in text.
  out = d.decode(std::span(all).first(offsetof(cat_record, comm) + 4));
  j = to_json(out.value);
  EXPECT_EQ(j["comm"], "perf");
  EXPECT_NE(to_text(out.value).find(R"(comm="perf"..., ...})"), std::string::npos) << to_text(out.value);
  // Cut inside the array of structs: the first element, and what there is of the second.
  out = d.decode(std::span(all).first(offsetof(cat_record, path) + 6));
  j = plain(to_json(out.value));
  EXPECT_EQ(j["path"], (nlohmann::json{{{"x", 1}, {"y", 2}}, {{"x", -3}}})) << j;
  // Nothing at all.
  out = d.decode({});
  EXPECT_TRUE(out.short_record);
  EXPECT_TRUE(out.value.fields.empty());
}

TEST_F(BtfDecoderTest, TrailingBytesAreKept) {
  std::vector<std::uint8_t> bytes = bytes_of(known_cat_record(4));
  bytes.insert(bytes.end(), {0xaa, 0xbb, 0xcc});
  const Decoded out = decoder("cat_record").decode(bytes);
  EXPECT_FALSE(out.short_record);
  EXPECT_EQ(to_hex(out.trailing), "aabbcc");
  EXPECT_EQ(plain(to_json(out.value)), known_cat_json(4));
}

TEST_F(BtfDecoderTest, UnionsAndTypedefsAreTypesToo) {
  const std::uint8_t word[] = {1, 2, 3, 4};
  EXPECT_EQ(plain(to_json(decoder("cat_word").decode(word).value)),
            (nlohmann::json{{"word", 0x04030201}, {"bytes", {1, 2, 3, 4}}}));
  const std::uint64_t seq = 0x0102030405060708;
  const auto* p = reinterpret_cast<const std::uint8_t*>(&seq);
  EXPECT_EQ(to_json(decoder("cat_seq_t").decode(std::span(p, 8)).value), seq);
  EXPECT_FALSE(BtfDecoder::find_type(btf_.get(), "no_such_type"));
  EXPECT_FALSE(BtfDecoder::find_type(btf_.get(), "cat_color"));  // an enum: not a record type
}

// Every bitfield at its extremes, and its neighbours untouched.
TEST_F(BtfDecoderTest, BitfieldsAtTheirLimits) {
  cat_record r = known_cat_record(5);
  r.kind = 7;
  r.level = -16;
  r.big = (1u << 20) - 1;
  nlohmann::json j = to_json(decoder("cat_record").decode(bytes_of(r)).value);
  EXPECT_EQ(j["kind"], 7);
  EXPECT_EQ(j["level"], -16);
  EXPECT_EQ(j["big"], (1u << 20) - 1);
  r.kind = 0;
  r.level = 15;
  r.big = 0;
  j = to_json(decoder("cat_record").decode(bytes_of(r)).value);
  EXPECT_EQ(j["kind"], 0);
  EXPECT_EQ(j["level"], 15);
  EXPECT_EQ(j["big"], 0);
}

}  // namespace
}  // namespace perfbuf::tools
