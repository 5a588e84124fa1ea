// libFuzzer target for the ring parser. An input either describes records
// that a fake kernel writes, and everything the parser hands out is compared
// with them, or is raw ring bytes, and the parser must stay inside the ring and
// recover. The checks live in tests/ring_check.cpp (layout in ring_check.h),
// shared with the corpus replay test of the plain test suite.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ring_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = perfbuf::testing::check_ring_input({data, size});
  if (!failure.empty()) {
    std::fprintf(stderr, "ring parser check failed: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
