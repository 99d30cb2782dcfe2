#!/usr/bin/env python3
"""Writes tests/fixtures/quant/: quantized blocks and the gguf package's dequantization of them.

The oracle is `gguf.quants.dequantize` (llama.cpp's own Python library, pip package `gguf`),
independent of our C code. The C test (tests/test_quant.c) reads these files; CI needs no Python.
Rerun after changing this script, and commit the script and the fixtures together:

    python3 tests/reference/make_quant_fixtures.py            # from the repository root
    python3 tests/reference/make_quant_fixtures.py --out DIR  # elsewhere, e.g. to diff

Deterministic: one seed per type, derived from SEED and the type number.

File format, <name>.bin per type (all little-endian):

    offset 0   char[4]  magic "XTQ1"
           4   u32      ggml type number
           8   u32      n_quantized: elements whose blocks came from gguf.quants.quantize
          12   u32      n_random:    elements from random valid blocks
          16   u32      n_special:   elements from hand-picked or exhaustive inputs
          20   u32      reserved, 0
          24   bytes    the blocks of all n = n_quantized + n_random + n_special elements, in that
                        order (n / block_size * type_size bytes)
           .   f32[n]   gguf.quants.dequantize of those blocks

Random valid blocks are random bytes with every fp16 field (scales, mins) replaced by a random
finite half of realistic magnitude, signs included: they reach bit patterns a quantizer rarely
writes (all scale codes, all high bits). "Special" blocks are the extremes: fp16 fields at
+-65504, +-0, the smallest subnormal, the normal/subnormal boundary, with the remaining bytes
set to patterns such as 0x00, 0xff, 0x55.

fp32_to_fp16.bin (numpy's float32 -> float16 rounding, the oracle for xt_fp32_to_fp16):

    offset 0   char[4]  magic "XTH1"
           4   u32      n
           8   u32[n]   float32 inputs (bit patterns)
           .   u16[n]   numpy `astype(np.float16)` of each, as bit patterns

type_sizes.txt: "<ggml type number> <NAME> <block_size> <type_size>" for every type of
gguf.constants.GGML_QUANT_SIZES, to check our traits table against.
"""

import argparse
import importlib.metadata
import os
import sys

import numpy as np
import gguf
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
import gguf.quants

SEED = 20240613

# Byte offsets of the fp16 fields in one block (ggml-common.h): scales and mins, replaced in random
# blocks by finite halves so that the oracle's output is finite.
HALF_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}

# Blocks per section for each quantized type. Sized to keep the whole directory near 1.4 MB while
# every 32-element type still gets 10k+ elements and every k-quant 48 super-blocks.
LEGACY_QUANTIZED, LEGACY_RANDOM = 160, 160
K_RANDOM = 40

# Extreme fp16 field values for the special blocks, as bit patterns.
EDGE_HALVES = [
    0x7BFF,  # 65504, largest finite
    0xFBFF,  # -65504
    0x0001,  # 2^-24, smallest subnormal
    0x8000,  # -0
    0x0000,  # +0
    0x03FF,  # largest subnormal
    0x0400,  # smallest normal
    0xBC00,  # -1
]
EDGE_FILLS = [0x00, 0xFF, 0x55, 0xAA, 0x0F, 0xF0, 0x33, 0xCC]


def ggml_name(t: T) -> str:
    """ggml's spelling of a type name (ggml.c type_traits): lower case except the K of k-quants."""
    name = t.name.lower()
    return name[:-2] + "_K" if name.endswith("_k") else name


def random_halves(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite fp16 bit patterns, log-uniform magnitude 2^-20..2^2 (subnormals included), random
    sign: the range real block scales take, with margin."""
    mag = np.exp2(rng.uniform(-20.0, 2.0, n)).astype(np.float16)
    sign = rng.integers(0, 2, n).astype(np.uint16) << np.uint16(15)
    bits = mag.view(np.uint16) | sign
    assert np.all(np.isfinite(bits.view(np.float16)))
    return bits


def set_halves(blocks: np.ndarray, qtype: T, halves_of_block) -> None:
    """Writes fp16 bit patterns into the HALF_FIELDS of each block (rows of a uint8 array)."""
    for k, off in enumerate(HALF_FIELDS[qtype]):
        h = halves_of_block(k).astype("<u2")
        blocks[:, off : off + 2] = h.view(np.uint8).reshape(-1, 2)


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    set_halves(blocks, qtype, lambda k: random_halves(rng, n_blocks))
    return blocks


def edge_blocks(qtype: T) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    n = len(EDGE_FILLS)
    blocks = np.array([[fill] * type_size for fill in EDGE_FILLS], dtype=np.uint8)
    # field k of block b takes EDGE_HALVES[(b + 3k) % 8]: each block pairs different extremes
    set_halves(
        blocks,
        qtype,
        lambda k: np.array([EDGE_HALVES[(b + 3 * k) % n] for b in range(n)], dtype=np.uint16),
    )
    return blocks


def realistic_weights(rng: np.random.Generator, n_blocks: int, block_size: int) -> np.ndarray:
    """Normal data whose scale varies by block over four decades, with an occasional outlier, like
    the rows of a trained weight matrix seen one block at a time."""
    x = rng.standard_normal((n_blocks, block_size)).astype(np.float32)
    x *= np.float32(10.0) ** rng.uniform(-3.0, 1.0, (n_blocks, 1)).astype(np.float32)
    outliers = rng.random((n_blocks, block_size)) < 0.01
    x[outliers] *= np.float32(8.0)
    return x


def write_fixture(path: str, qtype: T, sections) -> int:
    """sections: (n_quantized, n_random, n_special) uint8 block arrays (rows = blocks)."""
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    counts = []
    parts = []
    for blocks in sections:
        blocks = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(-1, type_size)
        counts.append(blocks.shape[0] * block_size)
        parts.append(blocks.reshape(-1))
    raw = np.concatenate(parts)
    oracle = gguf.quants.dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)
    n = sum(counts)
    assert oracle.size == n, (qtype.name, oracle.size, n)
    if qtype not in (T.F32, T.F16, T.BF16):
        # Every fp16 field was set to a finite value: a non-finite output means HALF_FIELDS is
        # wrong for this type, not that the oracle is.
        assert np.all(np.isfinite(oracle)), qtype.name
    header = np.array([qtype.value, *counts, 0], dtype="<u4")
    with open(path, "wb") as f:
        f.write(b"XTQ1")
        f.write(header.tobytes())
        f.write(raw.tobytes())
        f.write(oracle.astype("<f4").tobytes())
    return n


def float_specials() -> np.ndarray:
    bits = [
        0x00000000, 0x80000000,  # +-0
        0x7F800000, 0xFF800000,  # +-inf
        0x7FC00000, 0xFFC00000,  # quiet NaN
        0x7F800001, 0xFFBFFFFF,  # signalling NaN, payload extremes
        0x7FC12345, 0x7FA00000,  # NaN payloads
        0x7F7FFFFF, 0xFF7FFFFF,  # +-FLT_MAX
        0x00800000, 0x80800000,  # +-FLT_MIN
        0x00000001, 0x807FFFFF,  # smallest / largest subnormal
        0x3F800000, 0xBF800000,  # +-1
    ]
    return np.array(bits, dtype=np.uint32)


def fp32_to_fp16_inputs(rng: np.random.Generator) -> np.ndarray:
    """float32 bit patterns that exercise every branch of float -> half rounding."""
    out = [float_specials()]
    # values across the whole half range and beyond, both signs
    mag = np.exp2(rng.uniform(-30.0, 18.0, 6000)).astype(np.float32)
    sign = rng.integers(0, 2, 6000).astype(np.uint32) << np.uint32(31)
    out.append(mag.view(np.uint32) | sign)
    # arbitrary bit patterns, NaNs and infinities included
    out.append(rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32))
    # NaNs with random payloads and signs: numpy keeps the top 10 payload bits
    payload = rng.integers(1, 1 << 23, 64, dtype=np.uint32)
    payload[:16] &= np.uint32(0x1FFF)  # top 10 bits zero: the result must still be a NaN
    payload[:16] |= np.uint32(1)
    sign = rng.integers(0, 2, 64).astype(np.uint32) << np.uint32(31)
    out.append(np.uint32(0x7F800000) | payload | sign)
    # for sampled halves h (and the boundary ones): h itself, the exact midpoint to the next half
    # (a tie, to even), and the float32 neighbours of that midpoint
    boundary = np.array([0x0000, 0x0001, 0x0002, 0x03FE, 0x03FF, 0x0400, 0x0401, 0x3BFF, 0x3C00,
                         0x7BFE, 0x7BFF], dtype=np.uint16)
    halves = np.concatenate([boundary, rng.integers(0, 0x7BFF, 1024, dtype=np.uint16)])
    lo = halves.view(np.float16).astype(np.float64)
    hi = (halves + np.uint16(1)).view(np.float16).astype(np.float64)  # 0x7c00 is inf: fix below
    hi = np.where(halves == 0x7BFF, 65536.0, hi)  # the "next half" past 65504, for rounding
    mid = ((lo + hi) / 2).astype(np.float32)  # exact: a midpoint of halves fits in float32
    assert np.all((lo + hi) / 2 == mid.astype(np.float64))
    mid_bits = mid.view(np.uint32)
    for b in (lo.astype(np.float32).view(np.uint32), mid_bits, mid_bits - 1, mid_bits + 1):
        out.append(b)
        out.append(b | np.uint32(0x80000000))
    return np.concatenate(out).astype(np.uint32)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "quant"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}")

    def rng_for(t: T) -> np.random.Generator:
        return np.random.default_rng([SEED, t.value])

    empty = np.zeros((0,), dtype=np.uint8)
    written = {}

    # F32: the oracle is a reinterpretation; random normals plus every special class.
    rng = rng_for(T.F32)
    f32 = np.concatenate([
        rng.standard_normal(1024).astype(np.float32).view(np.uint32),
        float_specials(),
    ]).astype("<u4")
    written[T.F32] = (empty, f32[:1024].view(np.uint8), f32[1024:].view(np.uint8))

    # F16 and BF16: every one of the 65,536 bit patterns, NaN payloads included.
    every = np.arange(65536, dtype="<u2").view(np.uint8)
    written[T.F16] = (empty, empty, every)
    written[T.BF16] = (empty, empty, every)

    for t in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        rng = rng_for(t)
        block_size, _ = GGML_QUANT_SIZES[t]
        x = realistic_weights(rng, LEGACY_QUANTIZED, block_size)
        quantized = gguf.quants.quantize(x, t)
        written[t] = (quantized, random_blocks(rng, t, LEGACY_RANDOM), edge_blocks(t))

    # The gguf package cannot quantize k-quants (no quantize_blocks), so they get random and
    # special blocks only.
    for t in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        rng = rng_for(t)
        written[t] = (empty, random_blocks(rng, t, K_RANDOM), edge_blocks(t))

    total = 0
    for t, sections in written.items():
        path = os.path.join(args.out, ggml_name(t) + ".bin")
        n = write_fixture(path, t, sections)
        size = os.path.getsize(path)
        total += size
        print(f"{ggml_name(t):6s} {n:7d} elements  {size:8d} bytes")

    # float32 -> float16 rounding
    rng = np.random.default_rng([SEED, 1000])
    inputs = fp32_to_fp16_inputs(rng).astype("<u4")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is what we test
        halves = inputs.view(np.float32).astype(np.float16).view("<u2")
    path = os.path.join(args.out, "fp32_to_fp16.bin")
    with open(path, "wb") as f:
        f.write(b"XTH1")
        f.write(np.array([inputs.size], dtype="<u4").tobytes())
        f.write(inputs.tobytes())
        f.write(halves.tobytes())
    total += os.path.getsize(path)
    print(f"fp32_to_fp16 {inputs.size} values")

    path = os.path.join(args.out, "type_sizes.txt")
    with open(path, "w") as f:
        for t in T:
            if t in GGML_QUANT_SIZES:
                bs, ts = GGML_QUANT_SIZES[t]
                f.write(f"{t.value} {t.name} {bs} {ts}\n")
    total += os.path.getsize(path)
    print(f"total {total} bytes in {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
