// libFuzzer target for the backward (flight recorder) ring parser. An input
// either describes records a fake kernel writes backward into an overwritable
// ring, and every snapshot is compared with a model, or is raw ring bytes,
// and the walk must stay inside the copy. The checks live in
// tests/backward_check.cpp (layout in backward_check.h), shared with the
// corpus replay test of the plain test suite.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backward_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = perfbuf::testing::check_backward_input({data, size});
  if (!failure.empty()) {
    std::fprintf(stderr, "backward ring check failed: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
