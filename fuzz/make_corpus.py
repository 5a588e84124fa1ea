#!/usr/bin/env python3
"""Writes the seed corpus for ring_parser_fuzz: rings laid out as the kernel
lays them out (samples, wrapped samples, lost records, timestamps, positions
near 2^64) plus a few corrupt ones. Input layout: see ring_parser_fuzz.cpp."""
import os
import struct
import sys

SAMPLE, LOST = 9, 2


def sample(payload, time=None):
    fixed = 8 + (8 if time is not None else 0) + 4
    size = (fixed + len(payload) + 7) & ~7
    body = (struct.pack("<Q", time) if time is not None else b"")
    body += struct.pack("<I", size - fixed) + payload
    body += b"\0" * (size - 8 - len(body))
    return struct.pack("<IHH", SAMPLE, 0, size) + body


def lost(n):
    return struct.pack("<IHHQQ", LOST, 0, 24, 7, n)


def ring(records, ring_size, tail=0, flags=0):
    """Places records from position `tail` in a ring of ring_size bytes."""
    data = bytearray(ring_size)
    pos = tail
    for rec in records:
        for b in rec:
            data[pos % ring_size] = b
            pos += 1
    return struct.pack("<QIB", tail, pos - tail, flags) + bytes(data)


def main(out):
    os.makedirs(out, exist_ok=True)
    u64 = lambda v: struct.pack("<Q", v)
    seeds = {
        "empty": ring([], 64),
        "one": ring([sample(u64(1))], 64),
        "many": ring([sample(u64(i) * 2) for i in range(20)], 1024),
        "wrapped": ring([sample(bytes(range(36)))], 64, tail=48),
        "lost": ring([sample(u64(1)), lost(5), sample(u64(2))], 256),
        "time": ring([sample(u64(i), time=1000 + i) for i in range(4)], 256, flags=1),
        "near_2_64": ring([sample(u64(i)) for i in range(3)], 128, tail=2**64 - 64),
        "stop_after_two": ring([sample(u64(i)) for i in range(5)], 256, flags=2 << 1),
        "size_zero": ring([struct.pack("<IHH", SAMPLE, 0, 0) + b"\0" * 8], 64),
        "raw_too_big": ring([struct.pack("<IHHII", SAMPLE, 0, 16, 1000, 0)], 64),
        "big_record": ring([sample(b"\x01" * 4000)], 8192, tail=8000),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "ring_parser"))
