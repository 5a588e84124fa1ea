// A BPF object the kernel rejects: the error names the object and carries the verifier's reason.
#include <gtest/gtest.h>

#include <perfbuf/error.h>

#include <string>

#include "bpf_load.h"
#include "bpf_support.h"
#include "verifier_reject.skel.h"

namespace perfbuf {
namespace {

TEST(BpfLoad, RejectedProgramShowsTheVerifierMessage) {
  REQUIRE_BPF();
  verifier_reject* skel = verifier_reject__open();
  ASSERT_NE(skel, nullptr);
  try {
    tools::load_bpf_object("verifier_reject", [&] { return verifier_reject__load(skel); });
    ADD_FAILURE() << "the verifier accepted a NULL dereference";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("load BPF object verifier_reject"), std::string::npos) << what;
    EXPECT_NE(what.find("unchecked_lookup"), std::string::npos) << what;  // the program
    EXPECT_NE(what.find("map_value_or_null"), std::string::npos) << what;  // the verifier's reason
  }
  verifier_reject__destroy(skel);
}

}  // namespace
}  // namespace perfbuf
