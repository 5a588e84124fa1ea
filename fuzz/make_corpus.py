#!/usr/bin/env python3
"""Writes the seed corpus for ring_parser_fuzz, which the corpus replay test
(tests/ring_corpus_test.cpp) also runs. Input layout: tests/ring_check.h.

Content seeds describe what the kernel writes; the checks compare everything
the parser hands out with it. They cover records in place, records that wrap
the ring's end (payload on both sides, payload wholly after it, a record
ending exactly at the end), time stamps, lost records (explicit drops and a
full ring), other record types, drains that stop early, positions across 2^64,
and a scratch buffer smaller than a wrapped record (rejected, then the ring
works again). Raw seeds are ring bytes, mostly corrupt: one per reason the
parser rejects a ring."""
import os
import shutil
import struct
import sys

SAMPLE, LOST = 9, 2

# ---- Content mode -----------------------------------------------------------


def content(ops, ring=0, scratch=0, time=False, stop_after=0, start=0):
    """ring: the data area is 64 << ring bytes; scratch: 0 means the ring's size."""
    options = int(time) | stop_after << 1
    return struct.pack("<BBHBQ", 0, ring, scratch, options, start) + b"".join(ops)


def s(payload, seed=0):
    """A sample with `payload` bytes (taken modulo the ring size)."""
    return struct.pack("<BHB", 0, payload, seed)


def drop(n):
    """The kernel fails n outputs."""
    return struct.pack("<BH", 2, n - 1)


def other(choice, words):
    """A record of another type (THROTTLE, UNTHROTTLE, LOST_SAMPLES, SWITCH, unknown)."""
    return struct.pack("<BBB", 3, choice, words)


DRAIN = bytes([4])


def content_seeds():
    return {
        "empty": content([]),
        "one": content([s(8)]),
        "many_timed": content([s(i * 7 % 40, i) for i in range(20)], ring=4, time=True),
        # 256-byte ring, 16 bytes before the end: header, size and 4 payload
        # bytes before it, 96 after; then wraps at other offsets as positions move on.
        "wrapped": content([s(100, 1), DRAIN] +
                           [op for i in range(12) for op in (s(40 + 9 * i, i), s(10 + i), DRAIN)],
                           ring=2, start=256 - 16),
        # Only the header before the end: the whole payload is the second copy.
        "wrapped_after_header": content([s(60, 3), DRAIN, s(200, 4)], ring=2, start=256 - 8),
        # With time stamps: header and time before the end, size and payload after.
        "wrapped_after_time": content([s(30, 5), s(31, 6)], ring=1, time=True, start=128 - 16),
        # A 24-byte record that ends exactly at the ring's end is not copied.
        "exact_end": content([s(12, 7), s(12, 8)], start=64 - 24),
        # Scratch of 64 bytes in a 256-byte ring: a wrapped sample of 112 bytes
        # is rejected with what follows it in that drain; later records arrive.
        # A wrapped record of exactly 64 bytes still fits the scratch buffer.
        "scratch_small": content([s(12, 1), s(100, 2), s(20, 3), DRAIN, s(30, 4), DRAIN,
                                  s(52, 5), s(52, 6), s(40, 7), DRAIN, s(80, 8), s(8, 9)],
                                 ring=2, scratch=64, start=256 - 40),
        # Another record type that wraps and is larger than the scratch buffer.
        "scratch_small_other": content([other(0, 20), s(8, 1), DRAIN, s(8, 2)],
                                       ring=2, scratch=32, start=256 - 16),
        # Stop after 2 samples, then the rejected record in a later drain.
        "scratch_small_stop": content([s(8, 1), s(8, 2), s(8, 3), s(100, 4), s(8, 5), DRAIN,
                                       s(8, 6)], ring=2, scratch=48, stop_after=2,
                                      start=256 - 88),
        "lost": content([s(8, 1), drop(5), s(8, 2), drop(1), other(2, 1), s(8, 3), DRAIN,
                         drop(65536), s(16, 4)], ring=2),
        # 128-byte ring of 32-byte records: three fit (the kernel keeps a byte
        # free), the next two are dropped and reported in front of the next
        # record; so is a record larger than the ring.
        "ring_full": content([s(20, i) for i in range(5)] + [DRAIN, s(20, 5), s(127, 6), DRAIN,
                             s(20, 7)], ring=1),
        "stop_after": content([s(8, 1), s(8, 2), drop(3), s(8, 3), other(1, 2), s(8, 4),
                               s(8, 5), s(8, 6), s(8, 7), DRAIN, s(8, 8), DRAIN],
                              ring=4, stop_after=2),
        "stop_after_one_timed": content([s(8 * i, i) for i in range(6)], ring=3, time=True,
                                        stop_after=1),
        # Positions cross 2^64 while a record also wraps the ring's end.
        "near_2_64": content([s(8, 1), s(8, 2), s(16, 3), DRAIN, s(60, 4), s(8, 5), DRAIN,
                              s(30, 6), s(30, 7)], ring=1, time=True, stop_after=3,
                             start=2**64 - 48),
        "other": content([other(i, i * 3 % 33) for i in range(5)] + [s(8, 1), DRAIN,
                         other(0, 32), other(4, 0), s(16, 2)], ring=3, start=512 - 16),
        # 64 KiB ring: a wrapped 60000-byte record, then the largest a u16 size allows.
        "big": content([s(60000, 1), DRAIN, s(65516, 2), DRAIN, s(65516, 3)], ring=10,
                       start=65536 - 8),
        "drop_only": content([drop(3)]),
    }


# ---- Raw mode ---------------------------------------------------------------


def sample(payload, time=None):
    fixed = 8 + (8 if time is not None else 0) + 4
    size = (fixed + len(payload) + 7) & ~7
    body = (struct.pack("<Q", time) if time is not None else b"")
    body += struct.pack("<I", size - fixed) + payload
    body += b"\0" * (size - 8 - len(body))
    return struct.pack("<IHH", SAMPLE, 0, size) + body


def lost(n):
    return struct.pack("<IHHQQ", LOST, 0, 24, 7, n)


def header(type_, size):
    return struct.pack("<IHH", type_, 0, size)


def raw(records, ring_size, tail=0, time=False, stop_after=0, scratch=0, delta=None):
    """Places records from position `tail` in a ring of ring_size bytes; the
    head is after them unless delta says otherwise."""
    data = bytearray(ring_size)
    pos = tail
    for rec in records:
        for b in rec:
            data[pos % ring_size] = b
            pos += 1
    if delta is None:
        delta = pos - tail
    options = int(time) | stop_after << 1
    return struct.pack("<BQIBH", 1, tail, delta, options, scratch) + bytes(data)


def raw_seeds():
    u64 = lambda v: struct.pack("<Q", v)
    return {
        "raw_empty": raw([], 64),
        "raw_many": raw([sample(u64(i) * 2) for i in range(20)], 1024),
        "raw_wrapped": raw([sample(bytes(range(36)))], 64, tail=48),
        "raw_lost": raw([sample(u64(1)), lost(5), sample(u64(2))], 256),
        "raw_time": raw([sample(u64(i), time=1000 + i) for i in range(4)], 256, time=True),
        "raw_near_2_64": raw([sample(u64(i)) for i in range(3)], 128, tail=2**64 - 64),
        "raw_stop_after_two": raw([sample(u64(i)) for i in range(5)], 256, stop_after=2),
        "raw_other": raw([header(5, 24) + b"\1" * 16, sample(u64(3))], 128),
        # Corrupt: one per reason the parser gives.
        "corrupt_head_too_far": raw([sample(u64(1))], 64, delta=4096),
        "corrupt_misaligned": raw([sample(u64(1))], 64, delta=12),
        "corrupt_size_zero": raw([header(SAMPLE, 0) + b"\0" * 8], 64),
        "corrupt_size_not_8": raw([header(SAMPLE, 12) + b"\0" * 8], 64),
        "corrupt_past_head": raw([header(SAMPLE, 64) + b"\0" * 8], 64),
        "corrupt_scratch_too_small": raw([sample(bytes(range(36)))], 64, tail=48, scratch=16),
        "corrupt_raw_too_big": raw([struct.pack("<IHHII", SAMPLE, 0, 16, 1000, 0)], 64),
        "corrupt_no_room_for_size": raw([header(SAMPLE, 8)], 64),
        "corrupt_no_room_for_time": raw([header(SAMPLE, 8)], 64, time=True),
        "corrupt_no_room_for_size_after_time": raw([header(SAMPLE, 16) + u64(5)], 64,
                                                   time=True),
        "corrupt_lost_too_short": raw([header(LOST, 16) + u64(7)], 64),
        "corrupt_after_good": raw([sample(u64(1)), header(SAMPLE, 0) + b"\0" * 8], 64),
    }


def main(out):
    # Regenerated from scratch, so a renamed or dropped seed does not linger.
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, data in {**content_seeds(), **raw_seeds()}.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "ring_parser"))
