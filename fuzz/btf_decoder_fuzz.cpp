// libFuzzer target: arbitrary bytes as a record of a fixed type (a struct
// with every kind of member, tests/sample_btf.h), decoded and printed as JSON
// and text. Nothing may crash or read outside the record; the decoder's
// account of the record's size must hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "btf_decoder.h"
#include "sample_btf.h"

namespace {

struct Sample {
  Sample() : btf(perfbuf::testing::make_sample_btf(type_id)), decoder(btf, type_id) {}
  std::uint32_t type_id = 0;
  struct btf* btf;
  perfbuf::tools::BtfDecoder decoder;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Sample sample;  // built once, kept for the whole run
  const perfbuf::tools::Decoded d = sample.decoder.decode({data, size});
  if (d.record_size != size || d.type_size != perfbuf::testing::kSampleSize) std::abort();
  if (d.short_record != (size < d.type_size)) std::abort();
  if (d.trailing.size() != (size > d.type_size ? size - d.type_size : 0)) std::abort();
  if (!d.short_record && d.value.partial) std::abort();  // a whole record decodes whole
  const std::string json = perfbuf::tools::to_json(d.value).dump(
      -1, ' ', false, perfbuf::tools::Json::error_handler_t::strict);  // throws on bad UTF-8
  const std::string text = perfbuf::tools::to_text(d.value);
  if (json.empty() || text.empty()) std::abort();
  return 0;
}
