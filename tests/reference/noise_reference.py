#!/usr/bin/env python3
"""Independent reference for src/noise.h: Philox4x32-10, the tracer's Gaussian noise and the
seeded streams (u32, below, uniform, shuffle), written from the definitions in noise.h and the
Random123 paper (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), not from
our C. Pure Python integers and floats; numpy only to round double -> float32.

    python3 tests/reference/noise_reference.py > tests/fixtures/trace/noise_reference.json

tests/test_noise.c checks the C implementation against that file bit for bit. stats_reference.py
imports Stream from here.
"""
import json
import math
import sys

import numpy as np

MASK32 = 0xFFFFFFFF
PHILOX_MULT = (0xD2511F53, 0xCD9E8D57)
PHILOX_WEYL = (0x9E3779B9, 0xBB67AE85)


def philox4x32_10(counter, key):
    """Ten Philox rounds over a 4-word counter with a 2-word key (Random123 philox4x32)."""
    x = list(counter)
    k = list(key)
    for rnd in range(10):
        if rnd > 0:  # the key schedule: a Weyl sequence, bumped between rounds
            k = [(k[0] + PHILOX_WEYL[0]) & MASK32, (k[1] + PHILOX_WEYL[1]) & MASK32]
        prod_a = PHILOX_MULT[0] * x[0]
        prod_b = PHILOX_MULT[1] * x[2]
        x = [
            (prod_b >> 32) ^ x[1] ^ k[0],
            prod_b & MASK32,
            (prod_a >> 32) ^ x[3] ^ k[1],
            prod_a & MASK32,
        ]
    return x


def unit_open(word):
    """(word + 1/2) / 2^32: a double strictly between 0 and 1."""
    return (word + 0.5) * 2.0**-32


def noise_normals(seed, case_id, draw, position, n_embd, sigma):
    """The n_embd float32 noise values for one token position, as numpy float32."""
    values = []
    for group in range((n_embd + 3) // 4):
        w = philox4x32_10((draw, position, group, 0), (seed, case_id))
        for a, b in ((0, 1), (2, 3)):
            radius = math.sqrt(-2.0 * math.log(unit_open(w[a])))
            angle = math.tau * unit_open(w[b])
            values.append(radius * math.cos(angle))
            values.append(radius * math.sin(angle))
    return np.array([sigma * v for v in values[:n_embd]], dtype=np.float64).astype(np.float32)


class Stream:
    """The seeded word stream: key (seed, stream), counter (block lo, block hi, 0, 1)."""

    def __init__(self, seed, stream):
        self.key = (seed & MASK32, stream & MASK32)
        self.block = 0
        self.pending = []

    def u32(self):
        if not self.pending:
            ctr = (self.block & MASK32, self.block >> 32, 0, 1)
            self.pending = philox4x32_10(ctr, self.key)
            self.block += 1
        return self.pending.pop(0)

    def below(self, n):
        """Lemire (2019), "Fast random integer generation in an interval", with rejection."""
        if n == 0:
            return 0
        product = self.u32() * n
        if (product & MASK32) < n:
            floor_rej = (2**32) % n
            while (product & MASK32) < floor_rej:
                product = self.u32() * n
        return product >> 32

    def uniform(self):
        hi = self.u32() >> 5
        lo = self.u32() >> 6
        return (hi * 2**26 + lo) / 2.0**53

    def shuffle(self, items):
        items = list(items)
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items


def f32_hex(a):
    """float32 values as one string of 8-digit hex bit patterns (compact and exact)."""
    return "".join("%08x" % int(v) for v in np.asarray(a, dtype=np.float32).view(np.uint32))


def main():
    kat = [
        {"ctr": [0, 0, 0, 0], "key": [0, 0]},
        {"ctr": [MASK32] * 4, "key": [MASK32, MASK32]},
        {"ctr": [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], "key": [0xA4093822, 0x299F31D0]},
        {"ctr": [7, 1 << 31, 12345, 1], "key": [2024, 21919]},
    ]
    for k in kat:
        k["out"] = philox4x32_10(k["ctr"], k["key"])

    noise = []
    for seed, case_id, draw, position, n_embd, sigma in [
        (0, 0, 0, 0, 8, 1.0),
        (0, 1, 0, 0, 7, 1.0),
        (0, 1, 0, 1, 1, 1.0),
        (1234, 21919, 3, 17, 10, 0.0437),
        (0xFFFFFFFF, 0x7FFFFFFF, 9, 0x80000005, 6, 3.0 * 0.0123456),
        (0, 3799, 0, 5, 2048, 0.05),
        (42, 5, 1, 2, 1030, 1e-3),
        (7, 7, 0, 0, 5, 0.0),
    ]:
        v = noise_normals(seed, case_id, draw, position, n_embd, sigma)
        noise.append({"seed": seed, "case_id": case_id, "draw": draw, "position": position,
                      "n_embd": n_embd, "sigma": sigma, "bits_hex": f32_hex(v)})

    streams = []
    for seed, stream in [(0, 0), (1, 7), (0xDEADBEEF, 0xFFFFFFFF)]:
        s = Stream(seed, stream)
        u32 = [s.u32() for _ in range(11)]  # crosses two block boundaries mid-way
        s = Stream(seed, stream)
        below = []
        for n in [1, 2, 3, 10, 1000, 0x80000001, 0xFFFFFFFF, 0]:
            below.append({"n": n, "values": [s.below(n) for _ in range(6)]})
        s = Stream(seed, stream)
        uniform = [s.uniform() for _ in range(5)]
        s = Stream(seed, stream)
        shuffle = s.shuffle(range(50))
        after = s.u32()  # the word after the shuffle: pins how many words it consumed
        streams.append({"seed": seed, "stream": stream, "u32": u32, "below": below,
                        "uniform": uniform, "shuffle": shuffle, "u32_after_shuffle": after})

    json.dump({"_about": "tests/reference/noise_reference.py: Philox4x32-10, noise and streams "
                         "per src/noise.h; noise values as float32 bit patterns in hex, "
                         "8 digits each",
               "philox": kat, "noise": noise, "streams": streams},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
