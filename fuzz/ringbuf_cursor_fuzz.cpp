// libFuzzer target for the BPF ring buffer cursor. An input either describes
// what a fake kernel reserves, submits and discards while the cursor peeks,
// advances, commits and drains, and everything the cursor hands out is
// compared with it, or is raw ring bytes and positions, and the cursor must
// stay inside the area and report what no kernel writes. The checks live in
// tests/ringbuf_check.cpp (layout in ringbuf_check.h), shared with the corpus
// replay test of the plain test suite.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ringbuf_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = perfbuf::testing::check_ringbuf_input({data, size});
  if (!failure.empty()) {
    std::fprintf(stderr, "ring buffer cursor check failed: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
