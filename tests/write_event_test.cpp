// The tracer's check of each record: a wrong or missing cookie is an error, never a count.
#include <gtest/gtest.h>

#include <cstring>

#include "write_tracer.h"

namespace perfbuf {
namespace {

Sample sample_of(const void* bytes, std::size_t size) {
  return Sample{0, 0, std::span(static_cast<const std::byte*>(bytes), size)};
}

TEST(WriteEventCheck, AcceptsTheRightCookieWithKernelPadding) {
  unsigned char buf[sizeof(write_event) + 4] = {};  // + 4 of padding, as the kernel pads it
  const write_event e{42, 43, PERFBUF_WRITE_COOKIE, 7};
  std::memcpy(buf, &e, sizeof e);
  const auto got = tools::checked_write_event(sample_of(buf, sizeof buf));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->tgid, 42u);
  EXPECT_EQ(got->tid, 43u);
}

TEST(WriteEventCheck, RejectsAWrongCookie) {
  const write_event e{42, 43, PERFBUF_WRITE_COOKIE + 1, 7};
  EXPECT_FALSE(tools::checked_write_event(sample_of(&e, sizeof e)).has_value());
}

TEST(WriteEventCheck, RejectsAShortRecord) {
  const write_event e{42, 43, PERFBUF_WRITE_COOKIE};
  EXPECT_FALSE(tools::checked_write_event(sample_of(&e, sizeof e - 1)).has_value());
}

}  // namespace
}  // namespace perfbuf
