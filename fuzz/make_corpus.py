#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, which the corpus replay tests
also run: fuzz/corpus/ring_parser for ring_parser_fuzz (tests/ring_corpus_test.cpp,
input layout in tests/ring_check.h) and fuzz/corpus/ringbuf_cursor for
ringbuf_cursor_fuzz (tests/ringbuf_corpus_test.cpp, tests/ringbuf_check.h).

    fuzz/make_corpus.py [CORPUS_DIR]   # default: fuzz/corpus

Perf ring parser:

Content seeds describe what the kernel writes; the checks compare everything
the parser hands out with it. They cover records in place, records that wrap
the ring's end (payload on both sides, payload wholly after it, a record
ending exactly at the end), time stamps, lost records (explicit drops and a
full ring), other record types, drains that stop early, positions across 2^64,
and a scratch buffer smaller than a wrapped record (rejected, then the ring
works again). Raw seeds are ring bytes, mostly corrupt: one per reason the
parser rejects a ring.

BPF ring buffer cursor: content seeds have a fake kernel reserve, submit and
discard records while the cursor peeks, advances, commits and drains; they
cover empty rings, one and many records, odd and zero lengths, BUSY records
holding back later ones (submitted out of order too), discarded ones
skipped, records across the ring's end (read through the second mapping), a
full ring, budgets (0 included), early stops, a record written during a
drain, a new cursor that forgets uncommitted advances, and positions across
2^64. Raw seeds are ring bytes and positions, mostly corrupt: one per reason
the cursor rejects a ring, and a ring exactly full, which no kernel writes but
the cursor accepts."""
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


# ---- BPF ring buffer cursor: content mode -------------------------------------

BUSY, DISCARD = 1 << 31, 1 << 30


def rb_content(ops, ring=2, start=0):
    """ring: the data area is 16 << ring bytes (2: 64 B, 8: 4 KiB, 12: 64 KiB)."""
    return struct.pack("<BBQ", 0, ring, start) + b"".join(ops)


def reserve(n):
    """A BUSY record of n payload bytes."""
    return struct.pack("<BH", 0, n)


def submit(k=0):
    """Submits the k-th record still BUSY."""
    return struct.pack("<BB", 1, k)


def discard(k=0):
    return struct.pack("<BB", 2, k)


def output(n):
    """Reserve, write and submit a record of n payload bytes."""
    return struct.pack("<BH", 3, n)


PEEK, ADVANCE, COMMIT, REOPEN = b"\4", b"\5", b"\6", b"\8"


def rb_drain(budget=None, stop=0, write=False):
    """budget: at most that many records (0-127; None: no budget); stop: the
    visitor stops after that many; write: the kernel outputs a record from
    inside the first visitor call."""
    return struct.pack("<BBB", 7, 0x80 if budget is None else budget,
                       stop | (0x80 if write else 0))


def ringbuf_content_seeds():
    return {
        "rb_empty": rb_content([PEEK, ADVANCE, COMMIT, rb_drain()]),
        "rb_one": rb_content([output(8), rb_drain()]),
        "rb_many": rb_content([output(i * 5 % 40) for i in range(20)] + [rb_drain()], ring=6),
        # Zero to nine payload bytes: exact lengths, padded records.
        "rb_odd_lengths": rb_content([output(n) for n in range(10)] + [rb_drain()], ring=4),
        # A BUSY record holds back the submitted one after it until submitted.
        "rb_busy": rb_content([reserve(8), output(8), rb_drain(), PEEK, submit(), rb_drain(),
                               output(4), reserve(16), PEEK, ADVANCE, PEEK, COMMIT, submit(),
                               PEEK, ADVANCE, COMMIT]),
        # Submitted in another order than reserved (programs on other CPUs).
        "rb_busy_out_of_order": rb_content([reserve(8), reserve(12), reserve(16), submit(1),
                                            PEEK, submit(1), rb_drain(), submit(0),
                                            rb_drain()], ring=4),
        # Discarded records are stepped over, also several in a row, also
        # as the last ones (then the consumer moves past them).
        "rb_discard": rb_content([output(8), reserve(8), discard(), output(16), rb_drain(),
                                  reserve(4), reserve(20), reserve(0), discard(1), discard(),
                                  discard(), output(3), reserve(8), discard(), PEEK, ADVANCE,
                                  PEEK, COMMIT, reserve(8), reserve(8), submit(1), discard(),
                                  rb_drain()], ring=4),
        # 64-byte ring, 16 bytes before the end: the payload runs past the
        # end (read in place through the second mapping); then other offsets.
        "rb_wrapped": rb_content([output(20), rb_drain()] +
                                 [op for i in range(10) for op in (output(4 + 3 * i), output(i),
                                                                    rb_drain())],
                                 start=64 - 16),
        # Only the header before the end: the payload is wholly past it.
        "rb_payload_after_end": rb_content([output(16), rb_drain(), output(40), PEEK, ADVANCE,
                                            COMMIT], start=64 - 8),
        # A 24-byte record that ends exactly at the ring's end, then one at offset 0.
        "rb_ending_at_end": rb_content([output(16), output(8), rb_drain()], start=64 - 24),
        # The kernel keeps 8 bytes free: 56 of 64 bytes fill the ring, the
        # next reservation fails; space comes back only with a commit.
        "rb_full": rb_content([output(48), output(0), rb_drain(), output(0) * 7, output(0),
                               PEEK, ADVANCE, output(0), COMMIT, output(0), rb_drain(),
                               output(60), rb_drain()]),
        "rb_peek_steps": rb_content([output(8), output(9), output(10), PEEK, PEEK, ADVANCE,
                                     ADVANCE, PEEK, ADVANCE, COMMIT, ADVANCE, PEEK, ADVANCE,
                                     PEEK, ADVANCE, COMMIT], ring=4),
        # Advanced past two records without committing: a new cursor starts
        # from the published position and hands them out again.
        "rb_reopen": rb_content([output(8), output(8), output(8), PEEK, ADVANCE, PEEK,
                                 ADVANCE, REOPEN, rb_drain(), REOPEN, rb_drain()], ring=4),
        # A drain without budget looks at nothing: advance() still goes past
        # the record the last peek() returned.
        "rb_peek_zero_budget": rb_content([output(8), output(8), PEEK, rb_drain(0), ADVANCE,
                                           COMMIT, PEEK, rb_drain(0), rb_drain()], ring=4),
        # Budgets: some, none at all, with a stop inside, none left.
        "rb_budget": rb_content([output(8)] * 10 + [rb_drain(4), rb_drain(0), rb_drain(3, 2),
                                                     rb_drain(1), rb_drain(), rb_drain(0)],
                                ring=6),
        "rb_stop": rb_content([output(i) for i in range(6)] + [rb_drain(stop=1),
                                                              rb_drain(stop=3),
                                                              rb_drain(stop=5)], ring=4),
        # Records the kernel writes during a drain wait for the next drain.
        "rb_write_during_drain": rb_content([output(8), output(8), rb_drain(write=True),
                                             rb_drain(write=True), rb_drain()], ring=4),
        # Positions cross 2^64 while records also cross the ring's end.
        "rb_near_2_64": rb_content([output(8), output(20), rb_drain(), output(24), PEEK,
                                    ADVANCE, COMMIT, output(30), output(1), rb_drain()],
                                   start=2**64 - 48),
        # 64 KiB: a record across the end, then the largest that fits.
        "rb_big": rb_content([output(60000), rb_drain(), output(65520), rb_drain(),
                              output(65520)], ring=12, start=65536 - 8),
    }


# ---- BPF ring buffer cursor: raw mode -----------------------------------------


def rb_record(length, flags=0, payload=None):
    """A header {len | flags, pg_off} and the payload, padded to 8 bytes."""
    if payload is None:
        payload = bytes((i * 37 + length) & 0xff for i in range(length))
    body = struct.pack("<II", length | flags, 1) + payload
    return body + b"\0" * (-len(body) % 8)


P, A, C, R = (0, 0, 0), (1, 0, 0), (2, 0, 0), (4, 0, 0)


def D(budget=None, stop=0):
    return (3, 0x80 if budget is None else budget, stop)


def rb_raw(records, size=64, start=0, delta=None, ops=()):
    """Places records from position `start` in a ring of `size` bytes; the
    producer is after them unless delta says otherwise."""
    ring = 0
    while 16 << ring != size:
        ring += 1
    data = bytearray(size)
    pos = start
    for rec in records:
        for b in rec:
            data[pos % size] = b
            pos += 1
    if delta is None:
        delta = pos - start
    return (struct.pack("<BBQiB", 1, ring, start, delta, len(ops)) +
            b"".join(struct.pack("<BBB", *op) for op in ops) + bytes(data))


def ringbuf_raw_seeds():
    return {
        "raw_rb_records": rb_raw([rb_record(8), rb_record(5, DISCARD), rb_record(20),
                                  rb_record(0), rb_record(3)], size=128, start=128 - 24,
                                 ops=[P, P, A, C, D(1), D(0), P, A, R, D()]),
        "raw_rb_busy": rb_raw([rb_record(8), rb_record(8, BUSY), rb_record(8)],
                              ops=[D(), P, A, C]),
        # producer - consumer == size: no kernel fills a ring completely, but
        # the cursor reads it.
        "raw_rb_exactly_full": rb_raw([rb_record(8), rb_record(40)], start=24,
                                      ops=[D(stop=1), P, A, C]),
        "raw_rb_near_2_64": rb_raw([rb_record(12), rb_record(4, DISCARD), rb_record(9)],
                                   start=2**64 - 16),
        # Corrupt: one per reason the cursor gives, each then used again.
        "corrupt_rb_too_far": rb_raw([rb_record(8)], delta=64 + 8, ops=[P, A, D(), P]),
        "corrupt_rb_behind": rb_raw([rb_record(8)], start=64, delta=-16, ops=[D()]),
        "corrupt_rb_misaligned": rb_raw([rb_record(8)], start=4, delta=16, ops=[P, C, D()]),
        "corrupt_rb_past_producer": rb_raw([rb_record(100 % 2**30)[:16]], delta=16),
        "corrupt_rb_discard_past_producer": rb_raw([rb_record(8), rb_record(40, DISCARD)],
                                                   delta=32, ops=[P, A, P, C, D()]),
        "corrupt_rb_huge_len": rb_raw([struct.pack("<II", 0x3fffffff, 0)], delta=8),
        # Aligned consumer, producer 12 bytes on: an empty record, then 4 bytes.
        "corrupt_rb_misaligned_producer": rb_raw([rb_record(0), b"\0" * 8], delta=12,
                                                 ops=[P, A, P, D()]),
        "corrupt_rb_after_good": rb_raw([rb_record(8), struct.pack("<II", 200, 0)], delta=24,
                                        ops=[P, A, P, C, D(), P]),
        # After a drain skipped a corrupt ring, advance() stays at the producer
        # and a drain without budget reports nothing.
        "corrupt_rb_then_advance": rb_raw([rb_record(8), struct.pack("<II", 100, 0)], delta=32,
                                          ops=[D(), A, C, D(0), P]),
        # A peek that found corruption, then a drain without budget.
        "corrupt_rb_peek_then_zero_budget": rb_raw([rb_record(8)], delta=64 + 16,
                                                   ops=[P, D(0), A, C, D(0)]),
    }


# ---- Backward (flight recorder) ring ---------------------------------------
# Layout in tests/backward_check.h.


def bw_content(ops, ring=0, time=False, start=0):
    """ring: the data area is 64 << ring bytes."""
    return struct.pack("<BBBQ", 0, ring, int(time), start) + b"".join(ops)


def bw_sample(payload, seed=0):
    return struct.pack("<BHB", 0, payload, seed)


def bw_lost(n):
    return struct.pack("<BB", 1, n - 1)


def bw_snap(in_flight=0):
    return struct.pack("<BH", 2, in_flight)


def bw_raw(records, ring_size, head=0, limit=None, time=False):
    """records: bytes laid from offset 0 of a ring of ring_size bytes."""
    data = b"".join(records).ljust(ring_size, b"\0")[:ring_size]
    limit = ring_size if limit is None else limit
    return struct.pack("<BQIB", 1, head, limit, int(time)) + data


def backward_seeds():
    return {
        "bw_empty": bw_content([]),
        "bw_one": bw_content([bw_sample(16)]),
        # Never wrapped: the walk ends at bytes never written.
        "bw_few_timed": bw_content([bw_sample(i * 5, i) for i in range(5)], ring=2, time=True),
        # Wrapped many times: the oldest whole records dropped, a partly
        # overwritten one at the end; snapshots between writes.
        "bw_wrapped": bw_content([op for i in range(40) for op in
                                  (bw_sample(8 + i * 3 % 50, i), bw_snap() if i % 7 == 0 else b"")],
                                 ring=1, time=True),
        # 32-byte records fill a 64-byte ring exactly.
        "bw_exactly_full": bw_content([bw_sample(16, i) for i in range(5)] + [bw_snap()]),
        # A record across the end of the area, head starting just above it.
        "bw_across_end": bw_content([bw_sample(40, 1), bw_sample(12, 2), bw_snap()], ring=1,
                                    start=16),
        # Positions below 0 from a start near 0; and one far below 2^64.
        "bw_crosses_zero": bw_content([bw_sample(8, i) for i in range(6)], start=8),
        "bw_high_start": bw_content([bw_sample(20, i) for i in range(30)], ring=2,
                                    start=2**63 + 64),
        # Lost records among samples (outputs while a ring was paused).
        "bw_lost": bw_content([bw_sample(8, 1), bw_lost(3), bw_sample(8, 2), bw_lost(1), bw_snap()],
                              ring=1),
        # Bytes written during the copy: the oldest records no longer trusted.
        "bw_in_flight": bw_content([bw_sample(16, i) for i in range(12)] + [bw_snap(40), bw_snap(8)],
                                   ring=1),
        # Raw: one per reason the walk stops on corrupt bytes, and good records before them.
        "bw_raw_good": bw_raw([sample(b"\x01" * 16), sample(b"\x02" * 20)], 64),
        "bw_raw_small_size": bw_raw([sample(b"\x03" * 8), header(SAMPLE, 4)], 64),
        "bw_raw_misaligned_size": bw_raw([header(SAMPLE, 12) + b"\0" * 8], 64),
        "bw_raw_too_large": bw_raw([header(SAMPLE, 0xfff8)], 64),
        "bw_raw_raw_size_too_large": bw_raw([header(SAMPLE, 16) + struct.pack("<I", 100) + b"\0" * 4],
                                            64),
        # A record of another type (THROTTLE) is walked over, not handed out.
        "bw_raw_other_type": bw_raw([header(5, 24) + b"\0" * 16, sample(b"\x05" * 8)], 64),
        "bw_raw_lost_too_short": bw_raw([header(LOST, 16) + b"\0" * 8], 64),
        "bw_raw_timed_short": bw_raw([header(SAMPLE, 16) + b"\0" * 8], 64, time=True),
        "bw_raw_head_offset": bw_raw([sample(b"\x04" * 8)] * 3, 64, head=2**64 - 24,
                                     limit=40),
    }


def write_corpus(out, seeds):
    # Regenerated from scratch, so a renamed or dropped seed does not linger.
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def main(root):
    write_corpus(os.path.join(root, "ring_parser"), {**content_seeds(), **raw_seeds()})
    write_corpus(os.path.join(root, "ringbuf_cursor"),
                 {**ringbuf_content_seeds(), **ringbuf_raw_seeds()})
    write_corpus(os.path.join(root, "backward_ring"), backward_seeds())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus"))
