#!/usr/bin/env python3
"""Writes the GGUF reader's fixtures and the oracle the C test checks them against.

    python3 tests/reference/make_gguf_fixtures.py

Needs the `gguf` package (llama.cpp's own Python library, 0.19) and numpy. Writes, relative to the
repository root:

  tests/fixtures/gguf/metadata_v3.gguf  every metadata value type, extremes, nested/empty arrays,
                                         tensors F32/F16/Q8_0/Q4_K/I32, 1- to 4-dimensional
  tests/fixtures/gguf/align64_v2.gguf   general.alignment = 64, header version 2 (see below)
  tests/fixtures/gguf/tiny_moe_v3.gguf  a qwen3moe-shaped file: hyper-parameters, a tokenizer,
                                         expert tensors (what `expertrace info` is for)
  tests/fixtures/gguf/expected.json     what gguf.GGUFReader reads back from each file
  tests/fuzz/corpus/gguf/*               the fixtures plus a few hand-made seeds for the fuzzer

The files are written with gguf.GGUFWriter. Two things it cannot do are added here, each
documented where it happens:
  * empty arrays (GGUFWriter refuses them) and arrays with an explicit element type at any nesting
    depth: `FixtureWriter` packs a `Typed` list itself and leaves every other value to GGUFWriter;
  * a v2 header: GGUFWriter always writes version 3. GGUF v3 only added big-endian support and
    changed nothing in the little-endian layout (v2 already had the 64-bit counts and lengths that
    v1 lacked), so a v2 file is the v3 file with the u32 at byte 4 set to 2.

The oracle (expected.json) is produced by reading every file back with gguf.GGUFReader - an
independent parser - and the script asserts that what the reader sees equals what it meant to
write. Integers are JSON strings (u64/i64 extremes do not fit a double), floats are their IEEE bit
patterns in hex (NaN, inf and -0.0 included), strings are their UTF-8 bytes in hex (they may hold
NUL bytes); readable "value" fields are for humans only. Output is deterministic.
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType as VT, GGUFWriter, GGMLQuantizationType as QT
from gguf import quants

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "gguf"
CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "gguf"

TYPE_NAMES = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
              VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string",
              VT.ARRAY: "array", VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64"}
INT_TYPES = {VT.UINT8, VT.INT8, VT.UINT16, VT.INT16, VT.UINT32, VT.INT32, VT.UINT64, VT.INT64}


class Typed(list):
    """A metadata array with an explicit element type (may be empty, may hold Typed lists)."""

    def __init__(self, elem_type, items=()):
        super().__init__(items)
        self.elem_type = elem_type


class FixtureWriter(GGUFWriter):
    """GGUFWriter that can also pack Typed arrays, including empty ones (GGUF allows count 0)."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == VT.ARRAY and isinstance(val, Typed):
            out = bytearray()
            if add_vtype:
                out += self._pack("I", VT.ARRAY)
            out += self._pack("I", val.elem_type)
            out += self._pack("Q", len(val))
            for item in val:
                out += self._pack_val(item, val.elem_type, add_vtype=False)
            return bytes(out)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


# ---- metadata of each file -----------------------------------------------------------------------

NAN32 = struct.unpack("<f", struct.pack("<I", 0x7FC00000))[0]
UNICODE = "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F642"


def metadata_all_types():
    """(key, type, value) for every value type, extremes and corner cases."""
    return [
        ("general.name", VT.STRING, "all metadata types"),
        ("xt.u8.max", VT.UINT8, 255),
        ("xt.u8.zero", VT.UINT8, 0),
        ("xt.i8.min", VT.INT8, -128),
        ("xt.i8.max", VT.INT8, 127),
        ("xt.u16.max", VT.UINT16, 65535),
        ("xt.i16.min", VT.INT16, -32768),
        ("xt.u32.max", VT.UINT32, 4294967295),
        ("xt.i32.min", VT.INT32, -2147483648),
        ("xt.i32.minus_one", VT.INT32, -1),
        ("xt.u64.max", VT.UINT64, 18446744073709551615),
        ("xt.i64.min", VT.INT64, -9223372036854775808),
        ("xt.i64.max", VT.INT64, 9223372036854775807),
        ("xt.f32.max", VT.FLOAT32, 3.4028234663852886e38),
        ("xt.f32.tiny", VT.FLOAT32, 1.401298464324817e-45),
        ("xt.f32.neg_zero", VT.FLOAT32, -0.0),
        ("xt.f32.nan", VT.FLOAT32, NAN32),
        ("xt.f32.inf", VT.FLOAT32, math.inf),
        ("xt.f32.eps", VT.FLOAT32, 1e-6),
        ("xt.f64.max", VT.FLOAT64, 1.7976931348623157e308),
        ("xt.f64.tiny", VT.FLOAT64, 5e-324),
        ("xt.f64.neg_inf", VT.FLOAT64, -math.inf),
        ("xt.f64.nan", VT.FLOAT64, math.nan),
        ("xt.f64.pi", VT.FLOAT64, math.pi),
        ("xt.bool.true", VT.BOOL, True),
        ("xt.bool.false", VT.BOOL, False),
        ("xt.str.empty", VT.STRING, ""),
        ("xt.str.unicode", VT.STRING, UNICODE),
        ("xt.str.with_nul", VT.STRING, "a\x00b"),
        ("xt.arr.u8", VT.ARRAY, Typed(VT.UINT8, [0, 1, 255])),
        ("xt.arr.i8", VT.ARRAY, Typed(VT.INT8, [-128, 0, 127])),
        ("xt.arr.u16", VT.ARRAY, Typed(VT.UINT16, [0, 65535])),
        ("xt.arr.i16", VT.ARRAY, Typed(VT.INT16, [-32768, 32767])),
        ("xt.arr.u32", VT.ARRAY, Typed(VT.UINT32, [1, 2, 4294967295])),
        ("xt.arr.i32", VT.ARRAY, Typed(VT.INT32, [-2147483648, -1, 2147483647])),
        ("xt.arr.u64", VT.ARRAY, Typed(VT.UINT64, [0, 18446744073709551615])),
        ("xt.arr.i64", VT.ARRAY, Typed(VT.INT64, [-9223372036854775808, 9223372036854775807])),
        ("xt.arr.f32", VT.ARRAY, Typed(VT.FLOAT32, [NAN32, math.inf, -math.inf, -0.0, 1.5])),
        ("xt.arr.f64", VT.ARRAY, Typed(VT.FLOAT64, [math.nan, 5e-324, -2.5])),
        ("xt.arr.bool", VT.ARRAY, Typed(VT.BOOL, [True, False, True])),
        ("xt.arr.str", VT.ARRAY, Typed(VT.STRING, ["", "a", UNICODE, "x\x00y"])),
        ("xt.arr.empty_u32", VT.ARRAY, Typed(VT.UINT32)),
        ("xt.arr.empty_str", VT.ARRAY, Typed(VT.STRING)),
        ("xt.arr.empty_nested", VT.ARRAY, Typed(VT.ARRAY)),
        # the writer's own nested packing: element types inferred (int -> i32, str -> string)
        ("xt.arr.nested_i32", VT.ARRAY, [[1, 2], [3], [-4, 5, 6]]),
        # explicit types, three levels, with empty inner arrays
        ("xt.arr.nested3", VT.ARRAY,
         Typed(VT.ARRAY, [Typed(VT.ARRAY, [Typed(VT.STRING, ["a"]), Typed(VT.STRING, ["b", "c"])]),
                          Typed(VT.ARRAY, [Typed(VT.STRING)]),
                          Typed(VT.ARRAY)])),
        ("xt.arr.nested_u64", VT.ARRAY,
         Typed(VT.ARRAY, [Typed(VT.UINT64, [18446744073709551615]), Typed(VT.UINT64)])),
    ]


def q4_k_rows(rng, rows):
    """Raw Q4_K blocks (the gguf package has no Q4_K quantizer): f16 d and dmin, 12 bytes of 6-bit
    scales/mins, 128 bytes of nibbles. Checked to dequantize to finite values."""
    blocks = []
    for _ in range(rows):
        d = np.array([rng.uniform(0.001, 0.01), rng.uniform(0.0, 0.01)], dtype=np.float16)
        blocks.append(d.tobytes() + rng.integers(0, 256, 12 + 128, dtype=np.uint8).tobytes())
    raw = np.frombuffer(b"".join(blocks), dtype=np.uint8).reshape(rows, 144).copy()
    assert np.all(np.isfinite(quants.dequantize(raw, QT.Q4_K)))
    return raw


def write_metadata_v3(path, rng):
    w = FixtureWriter(path, "xtest")
    for key, vtype, val in metadata_all_types():
        w.add_key_value(key, val, vtype)
    w.add_tensor("f32.matrix", rng.standard_normal((3, 4)).astype(np.float32))      # ne {4, 3}
    w.add_tensor("f16.vector", rng.standard_normal(8).astype(np.float16))           # ne {8}
    w.add_tensor("q8_0.rows", quants.quantize(rng.standard_normal((2, 64)).astype(np.float32),
                                               QT.Q8_0), raw_dtype=QT.Q8_0)           # ne {64, 2}
    w.add_tensor("q4_K.blocks", q4_k_rows(rng, 2), raw_dtype=QT.Q4_K)                # ne {256, 2}
    w.add_tensor("i32.cube", np.arange(24, dtype=np.int32).reshape(2, 3, 4))          # ne {4, 3, 2}
    w.add_tensor("f32.four_dims", rng.standard_normal((1, 2, 1, 3)).astype(np.float32))
    finish(w)


def write_align64_v2(path, rng):
    w = FixtureWriter(path, "xtest")
    w.add_custom_alignment(64)
    w.add_string("general.name", "alignment 64, version 2")
    w.add_uint32("xtest.block_count", 3)
    w.add_tensor("odd.f32", rng.standard_normal(5).astype(np.float32))              # 20 bytes
    w.add_tensor("one.q8_0", quants.quantize(rng.standard_normal((1, 32)).astype(np.float32),
                                              QT.Q8_0), raw_dtype=QT.Q8_0)
    w.add_tensor("square.f16", rng.standard_normal((3, 3)).astype(np.float16))
    w.add_tensor("q4_K.row", q4_k_rows(rng, 1), raw_dtype=QT.Q4_K)
    finish(w)
    # v2 and v3 share the little-endian layout (see the module comment): patch the version.
    data = bytearray(path.read_bytes())
    assert data[:4] == b"GGUF" and struct.unpack_from("<I", data, 4)[0] == 3
    struct.pack_into("<I", data, 4, 2)
    path.write_bytes(bytes(data))


def write_tiny_moe(path, rng):
    n_embd, n_ff_exp, n_expert, n_vocab = 32, 32, 2, 24
    w = FixtureWriter(path, "qwen3moe")
    w.add_string("general.name", "Tiny MoE fixture")
    w.add_string("general.type", "model")
    w.add_uint32("general.file_type", 7)
    w.add_uint32("general.quantization_version", 2)
    w.add_uint32("qwen3moe.block_count", 1)
    w.add_uint32("qwen3moe.context_length", 256)
    w.add_uint32("qwen3moe.embedding_length", n_embd)
    w.add_uint32("qwen3moe.feed_forward_length", 64)
    w.add_uint32("qwen3moe.expert_feed_forward_length", n_ff_exp)
    w.add_uint32("qwen3moe.expert_count", n_expert)
    w.add_uint32("qwen3moe.expert_used_count", 1)
    w.add_uint32("qwen3moe.attention.head_count", 2)
    w.add_uint32("qwen3moe.attention.head_count_kv", 1)
    w.add_uint32("qwen3moe.attention.key_length", 16)
    w.add_float32("qwen3moe.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32("qwen3moe.rope.freq_base", 1000000.0)
    w.add_key_value("qwen3moe.swa_layers", Typed(VT.BOOL, [False]), VT.ARRAY)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + \
             [chr(c) for c in range(ord("a"), ord("a") + n_vocab - 6)] + ["\u0120the", "th", "he"]
    assert len(tokens) == n_vocab
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "qwen2")
    w.add_key_value("tokenizer.ggml.tokens", Typed(VT.STRING, tokens), VT.ARRAY)
    w.add_key_value("tokenizer.ggml.token_type", Typed(VT.INT32, [3, 3, 3] + [1] * (n_vocab - 3)),
                    VT.ARRAY)
    w.add_key_value("tokenizer.ggml.merges", Typed(VT.STRING, ["t h", "h e", "\u0120 t"]), VT.ARRAY)
    w.add_uint32("tokenizer.ggml.bos_token_id", 0)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_bool("tokenizer.ggml.add_bos_token", False)
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}")

    def q8(shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return quants.quantize(x, QT.Q8_0)

    w.add_tensor("token_embd.weight", q8((n_vocab, n_embd)), raw_dtype=QT.Q8_0)      # {32, 24}
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))            # {32}
    w.add_tensor("blk.0.ffn_gate_inp.weight",
                 rng.standard_normal((n_expert, n_embd)).astype(np.float32))         # {32, 2}
    w.add_tensor("blk.0.ffn_up_exps.weight", q8((n_expert, n_ff_exp, n_embd)),
                 raw_dtype=QT.Q8_0)                                                   # {32, 32, 2}
    w.add_tensor("blk.0.ffn_down_exps.weight", q8((n_expert, n_embd, n_ff_exp)),
                 raw_dtype=QT.Q8_0)                                                   # {32, 32, 2}
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- the oracle: read back with gguf.GGUFReader ------------------------------------------------

def consume(parts, k, vtype):
    """Decodes one value from a ReaderField's parts starting at parts[k]; returns (value, k)."""
    vtype = VT(int(vtype))
    if vtype == VT.STRING:
        return ("string", bytes(parts[k + 1])), k + 2
    if vtype == VT.ARRAY:
        et = VT(int(parts[k][0]))
        n = int(parts[k + 1][0])
        k += 2
        items = []
        for _ in range(n):
            v, k = consume(parts, k, et)
            items.append(v)
        return ("array", et, items), k
    return (vtype, parts[k][0]), k + 1


def encode(v):
    """A decoded value as the sidecar's JSON."""
    if v[0] == "string":
        return {"type": "string", "hex": v[1].hex(), "value": v[1].decode("utf-8", "replace")}
    if v[0] == "array":
        return {"type": "array", "elem": TYPE_NAMES[v[1]], "count": len(v[2]),
                "items": [encode(x) for x in v[2]]}
    vtype, x = v
    if vtype in INT_TYPES:
        return {"type": TYPE_NAMES[vtype], "value": str(int(x))}
    if vtype == VT.BOOL:
        return {"type": "bool", "value": bool(x)}
    if vtype == VT.FLOAT32:
        bits = struct.unpack("<I", struct.pack("<f", float(x)))[0] if not np.isnan(x) \
            else int(np.float32(x).view(np.uint32))
        return {"type": "f32", "bits": "%08x" % bits, "value": repr(float(x))}
    if vtype == VT.FLOAT64:
        bits = int(np.float64(x).view(np.uint64))
        return {"type": "f64", "bits": "%016x" % bits, "value": repr(float(x))}
    raise ValueError(vtype)


def intended(vtype, val):
    """What the script meant to write, in the sidecar's encoding (to check the writer)."""
    if vtype == VT.ARRAY:
        if isinstance(val, Typed):
            et = val.elem_type
        else:
            et = {list: VT.ARRAY, Typed: VT.ARRAY, int: VT.INT32, str: VT.STRING,
                  float: VT.FLOAT32, bool: VT.BOOL}[type(val[0])]
        return {"type": "array", "elem": TYPE_NAMES[et], "count": len(val),
                "items": [intended(et, x) for x in val]}
    if vtype == VT.STRING:
        return encode(("string", val.encode("utf-8")))
    np_type = {VT.UINT8: np.uint8, VT.INT8: np.int8, VT.UINT16: np.uint16, VT.INT16: np.int16,
               VT.UINT32: np.uint32, VT.INT32: np.int32, VT.UINT64: np.uint64,
               VT.INT64: np.int64, VT.FLOAT32: np.float32, VT.FLOAT64: np.float64,
               VT.BOOL: np.bool_}[vtype]
    return encode((vtype, np.array(val).astype(np_type)[()]))


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def oracle(path):
    r = GGUFReader(path)
    raw = path.read_bytes()
    kvs = []
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        value, k = consume(field.parts, 3, field.parts[2][0])
        assert k == len(field.parts), name
        kvs.append({"key": name, **encode(value)})
    tensors = []
    for t in r.tensors:
        parts = t.field.parts
        ne = [int(x) for x in parts[3]]
        start = int(t.data_offset)
        nbytes = int(t.n_bytes)
        tensors.append({"name": t.name, "type": int(parts[4][0]), "type_name": t.tensor_type.name,
                        "ne": ne, "n_elements": int(t.n_elements), "offset": int(parts[5][0]),
                        "nbytes": nbytes, "file_offset": start,
                        "fnv1a64": fnv1a64(raw[start:start + nbytes])})
    return {"version": int(r.fields["GGUF.version"].parts[0][0]), "alignment": int(r.alignment),
            "data_offset": int(r.data_offset), "file_size": len(raw), "kv": kvs, "tensors": tensors}


# ---- hand-made fuzz seeds ------------------------------------------------------------------

def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def seeds():
    """Small seeds that reach corners the fixtures do not."""
    out = {}
    out["header_only.gguf"] = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    # eight levels of nested arrays, the deepest allowed, ending in one u8
    v = struct.pack("<IQ", VT.UINT8, 1) + b"\x07"
    for _ in range(7):
        v = struct.pack("<IQ", VT.ARRAY, 1) + v
    out["nested8.gguf"] = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_str("deep") +
                           struct.pack("<I", VT.ARRAY) + v)
    # a tensor of an unknown ggml type (99) next to a known one
    kv = gguf_str("general.alignment") + struct.pack("<II", VT.UINT32, 32)
    ti = (gguf_str("unknown") + struct.pack("<IQIQ", 1, 16, 99, 0) +
          gguf_str("known") + struct.pack("<IQQIQ", 2, 4, 2, 0, 32))
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 1) + kv + ti
    head += b"\0" * (-len(head) % 32)
    out["unknown_type.gguf"] = head + bytes(range(64))
    # a string array and strings with odd bytes
    arr = struct.pack("<IQ", VT.STRING, 3) + gguf_str("") + gguf_str(b"\xff\xfe") + gguf_str("ok")
    out["strings.gguf"] = (b"GGUF" + struct.pack("<IQQ", 2, 0, 2) + gguf_str("s") +
                           struct.pack("<I", VT.ARRAY) + arr + gguf_str("t") +
                           struct.pack("<I", VT.STRING) + gguf_str("text"))
    return out


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    CORPUS.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240603)
    writers = [("metadata_v3.gguf", write_metadata_v3), ("align64_v2.gguf", write_align64_v2),
               ("tiny_moe_v3.gguf", write_tiny_moe)]
    expected = {}
    for name, write in writers:
        path = FIXTURES / name
        write(path, rng)
        expected[name] = oracle(path)
        (CORPUS / name).write_bytes(path.read_bytes())
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes, "
              f"{len(expected[name]['kv'])} keys, {len(expected[name]['tensors'])} tensors")

    # The writer wrote what we meant: every intended value equals the reader's view.
    got = {kv["key"]: {k: v for k, v in kv.items() if k != "key"}
           for kv in expected["metadata_v3.gguf"]["kv"]}
    for key, vtype, val in metadata_all_types():
        want = intended(vtype, val)
        assert got[key] == want, (key, got[key], want)
    assert expected["align64_v2.gguf"]["version"] == 2
    assert expected["align64_v2.gguf"]["alignment"] == 64

    for name, data in seeds().items():
        (CORPUS / name).write_bytes(data)
    (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{(FIXTURES / 'expected.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
