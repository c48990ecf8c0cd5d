"""Tests for gguf.c, driven through tests/gguf/gguf_dump.

Reference: the `gguf` Python package (llama.cpp's own writer, reader and numpy
dequantizers). Each check prints one PASS/FAIL line; test_gguf.sh counts them.

usage: test_gguf.py --bin DUMP --asan-bin DUMP_ASAN --tmp DIR [--real FILE] [--valgrind]
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT
import gguf.quants

failures = 0


def report(ok, name, detail=""):
    global failures
    if not ok:
        failures += 1
    detail = " | ".join(str(detail).split("\n"))[:400].strip(" |")
    print(f"{'PASS' if ok else 'FAIL'} {name}{(' (' + detail + ')') if detail else ''}", flush=True)
    return ok


def run(binary, *args):
    p = subprocess.run([binary, *map(str, args)], capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def meta_of(binary, path):
    rc, out, err = run(binary, "meta", path)
    if rc != 0:
        raise RuntimeError(f"gguf_dump meta failed: {err.strip()}")
    return {d["key"]: d for d in map(json.loads, out.decode().splitlines())}


def tensors_of(binary, path):
    rc, out, err = run(binary, "tensors", path)
    if rc != 0:
        raise RuntimeError(f"gguf_dump tensors failed: {err.strip()}")
    return [json.loads(line) for line in out.decode().splitlines()]


def same_f32(got, ref):
    """(ok, detail): bit-exact, or within 1e-6 of the tensor's largest magnitude
    (a compiler that fuses a*b+c into FMA changes the last bit)."""
    got = np.asarray(got, dtype=np.float32).ravel()
    ref = np.asarray(ref, dtype=np.float32).ravel()
    if got.shape != ref.shape:
        return False, f"{got.size} values, expected {ref.size}"
    if np.array_equal(got.view(np.uint32), ref.view(np.uint32)):
        return True, "bit-exact"
    gn, rn = np.isnan(got), np.isnan(ref)
    if not np.array_equal(gn, rn):
        return False, "NaN positions differ"
    g, r = got[~gn].astype(np.float64), ref[~rn].astype(np.float64)
    if not np.array_equal(np.isinf(g), np.isinf(r)) or not np.array_equal(g[np.isinf(g)], r[np.isinf(r)]):
        return False, "inf values differ"
    fin = np.isfinite(r)
    scale = max(np.abs(r[fin]).max(initial=0.0), 1e-30)
    err = np.abs(g[fin] - r[fin]).max(initial=0.0)
    bad = int((g != r).sum())
    return err <= 1e-6 * scale, f"{bad} values differ, max abs err {err:.3g} vs scale {scale:.3g}"


# ----------------------------------------------------------------------------
# synthetic file: every metadata type and every tensor type we convert

# key -> (writer method or value type, value)
SCALARS = {
    "test.u8": (VT.UINT8, 200),
    "test.i8": (VT.INT8, -100),
    "test.u16": (VT.UINT16, 60000),
    "test.i16": (VT.INT16, -30000),
    "test.u32": (VT.UINT32, 4000000000),
    "test.i32": (VT.INT32, -2000000000),
    "test.f32": (VT.FLOAT32, 3.14159265),
    "test.u64": (VT.UINT64, 2**63 + 5),
    "test.i64": (VT.INT64, -(2**62) - 7),
    "test.f64": (VT.FLOAT64, math.pi),
    "test.bool_t": (VT.BOOL, True),
    "test.bool_f": (VT.BOOL, False),
    "test.str": (VT.STRING, 'h\u00e9llo "quoted" \\ tab\t nl\n \u4e16\u754c \U0001f600'),
    "test.str_empty": (VT.STRING, ""),
}
ARRAYS = {
    "test.arr_u8": (VT.UINT8, [0, 1, 255]),
    "test.arr_i8": (VT.INT8, [-128, 0, 127]),
    "test.arr_u16": (VT.UINT16, [0, 65535]),
    "test.arr_i16": (VT.INT16, [-32768, 32767]),
    "test.arr_u32": (VT.UINT32, [0, 4294967295]),
    "test.arr_i32": (VT.INT32, [-2147483648, 2147483647, 5]),
    "test.arr_f32": (VT.FLOAT32, [0.1, -2.5, 1e-30]),
    "test.arr_u64": (VT.UINT64, [2**64 - 1, 0]),
    "test.arr_i64": (VT.INT64, [-(2**63), 2**63 - 1]),
    "test.arr_f64": (VT.FLOAT64, [0.1, -1e300]),
    "test.arr_bool": (VT.BOOL, [True, False, True]),
    "test.arr_str": (VT.STRING, ["", "a", "\u00fcber \"x\"", "\n"]),
}
N_HEAD, N_KV, HEAD_DIM, N_EMBD = 4, 2, 8, 32
TOKENS = ["<unk>", "<s>", "</s>", "\u0120the", "a", "b", "ab", "\u0120\u0120"]


def f16_bytes(x):
    return np.asarray(x, dtype=np.float16).reshape(-1).view(np.uint8)


def random_blocks(qtype, n_blocks, rng):
    """Random but valid raw blocks: random quant bits, finite scales. The
    scale fields' byte positions are ggml's block layouts."""
    blck, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    f16_fields = {
        QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0],
        QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
        QT.IQ4_NL: [0],
    }
    for off in f16_fields.get(qtype, []):
        raw[:, off:off + 2] = f16_bytes(rng.normal(0, 0.05, size=n_blocks)).reshape(n_blocks, 2)
        raw[0, off:off + 2] = f16_bytes(np.float16(6e-8))  # a subnormal scale in block 0
    if qtype == QT.Q8_K:
        raw[:, 0:4] = rng.normal(0, 0.01, size=n_blocks).astype(np.float32).view(np.uint8).reshape(n_blocks, 4)
    return raw


def ref_dequant(raw, qtype):
    if qtype == QT.Q8_K:  # the gguf package can't dequantize Q8_K: d * qs
        d = raw[:, 0:4].copy().view(np.float32)
        qs = raw[:, 4:260].view(np.int8).astype(np.float32)
        return d * qs
    return gguf.quants.dequantize(raw, qtype)


def hf_to_gguf_permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, verbatim in numpy."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


NONFINITE = ("t.f16.inf", "t.f32.nan", "t.f32.ninf", "t.q8_0.nan")


def build_synthetic(path, rng):
    """Returns {tensor name: (ggml type name, HF shape, reference float32)}."""
    w = gguf.GGUFWriter(path, "llama")
    for key, (vt, val) in SCALARS.items():
        w.add_key_value(key, val, vt)
    for key, (vt, val) in ARRAYS.items():
        w.add_key_value(key, val, VT.ARRAY, sub_type=vt)
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(64)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_KV)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(500000.0)
    w.add_token_list(TOKENS)
    w.add_token_merges(["a b", "\u0120 \u0120"])
    w.add_token_types([2, 3, 3, 1, 1, 1, 1, 1])

    expect = {}

    def add_raw(name, qtype, raw, rows_shape):
        blck, size = gguf.GGML_QUANT_SIZES[qtype]
        per_row = raw.size // size // int(np.prod(rows_shape))
        data = raw.reshape(*rows_shape, per_row * size)
        w.add_tensor(name, data, raw_dtype=qtype)
        ref = ref_dequant(raw, qtype).reshape(*rows_shape, per_row * blck)
        expect[name] = (qtype.name, list(ref.shape), ref)

    # float types straight from numpy arrays
    x = rng.normal(0, 1, size=(3, 40)).astype(np.float32)
    w.add_tensor("t.f32", x)
    expect["t.f32"] = ("F32", [3, 40], x)
    h = np.concatenate([rng.normal(0, 1, 62), [6e-8, -6e-8, 3e-5, 65504, -65504, 0.0, -0.0]])
    h = h.astype(np.float16).reshape(3, 23)
    w.add_tensor("t.f16", h)
    expect["t.f16"] = ("F16", [3, 23], h.astype(np.float32))
    # non-finite values: the conversion refuses the tensor, naming it (see NONFINITE below)
    for name, bad in [("t.f16.inf", np.float16(np.inf)), ("t.f32.nan", np.float32(np.nan)), ("t.f32.ninf", np.float32(-np.inf))]:
        v = np.ones((2, 8), dtype=bad.dtype)
        v[1, 3] = bad
        w.add_tensor(name, v)
        expect[name] = ("F16" if v.dtype == np.float16 else "F32", [2, 8], v.astype(np.float32))
    # a Q8_0 block whose scale is an f16 NaN: every value of the block is NaN
    qn = bytearray(random_blocks(QT.Q8_0, 2, rng).tobytes())
    qn[34:36] = np.float16(np.nan).tobytes()
    add_raw("t.q8_0.nan", QT.Q8_0, np.frombuffer(bytes(qn), dtype=np.uint8), ())
    d = rng.normal(0, 1, size=(2, 2, 5))
    w.add_tensor("t.f64.3d", d)
    expect["t.f64.3d"] = ("F64", [2, 2, 5], d.astype(np.float32))
    for dt, nm in [(np.int8, "I8"), (np.int16, "I16"), (np.int32, "I32")]:
        info = np.iinfo(dt)
        v = rng.integers(info.min, info.max, size=(4, 7), dtype=dt, endpoint=True)
        w.add_tensor(f"t.{nm.lower()}", v)
        expect[f"t.{nm.lower()}"] = (nm, [4, 7], v.astype(np.float32))
    # BF16 and the legacy quants from real floats via the package's quantizers
    for qtype in [QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0]:
        x = rng.normal(0, 0.1, size=(4, 64)).astype(np.float32)
        q = gguf.quants.quantize(x, qtype)
        w.add_tensor(f"t.{qtype.name.lower()}.quantized", q, raw_dtype=qtype)
        expect[f"t.{qtype.name.lower()}.quantized"] = (qtype.name, [4, 64], gguf.quants.dequantize(q, qtype))
    # random raw blocks for every block type (covers all bit patterns)
    for qtype in [QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0]:
        add_raw(f"t.{qtype.name.lower()}.random", qtype, random_blocks(qtype, 12, rng), (3,))
    for qtype in [QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.Q8_K]:
        add_raw(f"t.{qtype.name.lower()}.random", qtype, random_blocks(qtype, 6, rng), (3,))
    add_raw("t.q6_k.3d", QT.Q6_K, random_blocks(QT.Q6_K, 6, rng), (2, 3))
    add_raw("t.q4_k.1d", QT.Q4_K, random_blocks(QT.Q4_K, 2, rng), ())
    # a type we parse but can't convert
    add_raw("t.iq4_nl", QT.IQ4_NL, random_blocks(QT.IQ4_NL, 2, rng), (2,))

    # llama attention weights: HF layout -> converter's permutation -> file
    hf = {
        "q": rng.normal(0, 1, size=(N_HEAD * HEAD_DIM, N_EMBD)).astype(np.float32),
        "k": rng.normal(0, 1, size=(N_KV * HEAD_DIM, N_EMBD)).astype(np.float32),
        "v": rng.normal(0, 1, size=(N_KV * HEAD_DIM, N_EMBD)).astype(np.float32),
    }
    w.add_tensor("blk.0.attn_q.weight", hf_to_gguf_permute(hf["q"], N_HEAD))
    w.add_tensor("blk.0.attn_k.weight", hf_to_gguf_permute(hf["k"], N_KV))
    w.add_tensor("blk.0.attn_v.weight", hf["v"])
    # a quantized K too: HF layout = un-permuted package dequantization
    k1 = rng.normal(0, 1, size=hf["k"].shape).astype(np.float32)
    kq = gguf.quants.quantize(hf_to_gguf_permute(k1, N_KV), QT.Q8_0)
    w.add_tensor("blk.1.attn_k.weight", kq, raw_dtype=QT.Q8_0)
    deq = gguf.quants.dequantize(kq, QT.Q8_0)
    hd = deq.shape[0] // N_KV
    hf["k_q8"] = deq.reshape(N_KV, hd // 2, 2, N_EMBD).swapaxes(1, 2).reshape(deq.shape)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expect, hf


def test_synthetic(b, tmp, rng):
    path = os.path.join(tmp, "synthetic.gguf")
    expect, hf = build_synthetic(path, rng)

    # metadata: every scalar and array type comes back as written
    meta = meta_of(b, path)
    for table, is_array in ((SCALARS, False), (ARRAYS, True)):
        for key, (vt, val) in table.items():
            d = meta.get(key)
            if d is None:
                report(False, f"meta {key}", "missing")
                continue
            got, vn = d["value"], vt.name.lower()
            if vt == VT.FLOAT32:
                ok = np.array_equal(np.float32(got), np.float32(val))
            else:
                ok = got == val
            if is_array:
                report(ok and d["type"] == "array" and d["elem"] == vn, f"meta {key} (array of {vn})", f"got {got!r}")
            else:
                report(ok and d["type"] == vn, f"meta {key} ({vn})", f"got {got!r} as {d['type']}")
    report(meta.get("general.architecture", {}).get("value") == "llama", "meta general.architecture")
    report(meta["tokenizer.ggml.tokens"]["value"] == TOKENS, "meta tokenizer.ggml.tokens")

    # typed getters, including range checks across integer widths
    cases = [
        ("u32", "test.u8", "200"), ("i32", "test.i8", "-100"), ("u32", "test.i8", "missing"),
        ("u32", "test.u32", "4000000000"), ("i32", "test.u32", "missing"), ("i64", "test.u32", "4000000000"),
        ("u64", "test.u64", str(2**63 + 5)), ("i64", "test.u64", "missing"), ("i64", "test.i64", str(-(2**62) - 7)),
        ("u32", "test.u64", "missing"), ("f32", "test.f32", "3.14159274"), ("f64", "test.f64", repr(math.pi)),
        ("f32", "test.f64", "3.14159274"), ("f32", "test.u32", "missing"), ("bool", "test.bool_t", "true"),
        ("bool", "test.bool_f", "false"), ("bool", "test.u8", "missing"), ("str", "test.u8", "missing"),
        ("str", "test.str_empty", ""), ("str", "nope.nope", "missing"), ("u32", "llama.block_count", "1"),
        ("strs", "tokenizer.ggml.merges", "a b\n\u0120 \u0120"),
        ("ints", "tokenizer.ggml.token_type", "2\n3\n3\n1\n1\n1\n1\n1"),
        ("ints", "test.arr_u64", "-1\n0"), ("ints", "test.arr_f32", "missing"), ("strs", "test.arr_i32", "missing"),
    ]
    for kind, key, want in cases:
        rc, out, err = run(b, "get", path, kind, key)
        got = out.decode().rstrip("\n")
        same = got == want
        if kind in ("f32", "f64") and want != "missing" and got != "missing":
            same = float(got) == float(want)  # printed with %.9g / %.17g
        report(rc == 0 and same, f"getter {kind}({key}) = {want!r}", f"got {got!r} rc={rc} {err.strip()}")

    # config
    rc, out, err = run(b, "config", path)
    cfg = json.loads(out) if rc == 0 else {}
    want = {"n_layer": 1, "n_embd": N_EMBD, "n_ff": 64, "n_head": N_HEAD, "n_head_kv": N_KV, "n_ctx": 128,
            "vocab_size": len(TOKENS), "rope_theta": 500000.0, "tied_embeddings": True}
    report(all(cfg.get(k) == v for k, v in want.items()) and np.float32(cfg.get("rms_norm_eps")) == np.float32(1e-6),
           "llama config from metadata", f"got {cfg} {err.strip()}")

    # tensor infos: type and shape in both orders
    infos = {t["name"]: t for t in tensors_of(b, path)}
    for name, (tname, shape, ref) in expect.items():
        t = infos.get(name)
        ok = t is not None and t["type"] == tname and t["shape"] == shape and t["ne"] == shape[::-1]
        report(ok, f"tensor info {name} {tname} {shape}", f"got {t}")

    # dequantization against the gguf package
    for name, (tname, shape, ref) in expect.items():
        rc, out, err = run(b, "f32", path, name)
        if name == "t.iq4_nl":
            report(rc == 1 and "t.iq4_nl" in err and path in err and "IQ4_NL" in err,
                   "unsupported type IQ4_NL gives an error naming the tensor", err.strip())
            continue
        if name in NONFINITE:
            first = int(np.flatnonzero(~np.isfinite(ref))[0])
            what = "NaN" if np.isnan(ref.ravel()[first]) else "infinite"
            report(rc == 1 and err.strip() == f"{path}: tensor '{name}': element {first} is {what}",
                   f"{name}: non-finite values refused, naming file, tensor and element {first}", err.strip())
            continue
        if rc != 0:
            report(False, f"dequant {name} ({tname})", err.strip())
            continue
        ok, detail = same_f32(np.frombuffer(out, dtype=np.float32), ref)
        report(ok, f"dequant {name} ({tname}) == gguf.quants", detail)
    return path, hf


def test_unpermute(b, path, hf):
    tests = [("blk.0.attn_q.weight", hf["q"], "model.layers.0.self_attn.q_proj.weight"),
             ("blk.0.attn_k.weight", hf["k"], "model.layers.0.self_attn.k_proj.weight"),
             ("blk.0.attn_v.weight", hf["v"], "model.layers.0.self_attn.v_proj.weight"),
             ("blk.1.attn_k.weight", hf["k_q8"], "model.layers.1.self_attn.k_proj.weight")]
    for name, want, hf_name in tests:
        rc, out, err = run(b, "hf", path, name)
        if rc != 0:
            report(False, f"unpermute {name}", err.strip())
            continue
        got = np.frombuffer(out, dtype=np.float32).reshape(want.shape)
        report(np.array_equal(got, want) and err.strip() == hf_name,
               f"unpermute {name} -> {hf_name} equals the original HF weights",
               f"max diff {np.abs(got - want).max():.3g}, name {err.strip()}")
    # the stored (GGUF) layout really differs from HF, so the check above can fail
    rc, out, err = run(b, "f32", path, "blk.0.attn_q.weight")
    raw = np.frombuffer(out, dtype=np.float32).reshape(hf["q"].shape)
    report(rc == 0 and not np.array_equal(raw, hf["q"]), "stored attn_q differs from HF layout (control)")

    names = {
        "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight", "blk.12.attn_norm.weight": "model.layers.12.input_layernorm.weight",
        "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
        "blk.3.ffn_gate.weight": "model.layers.3.mlp.gate_proj.weight",
        "blk.3.ffn_up.weight": "model.layers.3.mlp.up_proj.weight",
        "blk.3.ffn_down.weight": "model.layers.3.mlp.down_proj.weight",
        "blk.3.ffn_norm.weight": "model.layers.3.post_attention_layernorm.weight",
        "blk.7.attn_q.bias": "model.layers.7.self_attn.q_proj.bias",
        "blk.x.attn_q.weight": None, "blk.1.attn_qq.weight": None, "rope_freqs.weight": None,
        "blk..attn_q.weight": None, "blk.1.attn_q": None,
    }
    infos = {t["name"]: t for t in tensors_of(b, path)}
    report(infos["blk.0.attn_q.weight"]["hf"] == "model.layers.0.self_attn.q_proj.weight", "hf name via tensor listing")
    # gguf_hf_name through a throwaway file whose tensors carry those names
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "names.gguf")
        w = gguf.GGUFWriter(p, "llama")
        for n in names:
            w.add_tensor(n, np.zeros(4, dtype=np.float32))
        w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
        got = {t["name"]: t["hf"] for t in tensors_of(b, p)}
    for n, want in names.items():
        report(got.get(n) == want, f"gguf_hf_name({n}) = {want}", f"got {got.get(n)}")


# ----------------------------------------------------------------------------
# corruption

def walk(buf):
    """Byte offsets of every field of a (valid) GGUF file, for targeted damage."""
    u32 = lambda p: struct.unpack_from("<I", buf, p)[0]
    u64 = lambda p: struct.unpack_from("<Q", buf, p)[0]
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    n_t, n_kv = u64(8), u64(16)
    pos, kvs, tensors = 24, {}, {}
    for _ in range(n_kv):
        k = {"len_off": pos}
        n = u64(pos); key = buf[pos + 8:pos + 8 + n].decode(); pos += 8 + n
        k["type_off"] = pos; t = u32(pos); pos += 4
        k["val_off"] = pos
        if t == 8:
            pos += 8 + u64(pos)
        elif t == 9:
            et, cnt = u32(pos), u64(pos + 4)
            k["elem_off"], k["count_off"] = pos, pos + 4
            pos += 12
            k["first_elem_off"] = pos
            for _ in range(cnt):
                pos += 8 + u64(pos) if et == 8 else sizes[et]
        else:
            pos += sizes[t]
        kvs[key] = k
    for _ in range(n_t):
        ti = {"name_off": pos}
        n = u64(pos); name = buf[pos + 8:pos + 8 + n].decode(); pos += 8 + n
        ti["ndims_off"] = pos; nd = u32(pos); pos += 4
        ti["ne_off"] = pos; ti["ne"] = [u64(pos + 8 * i) for i in range(nd)]; pos += 8 * nd
        ti["type_off"] = pos; pos += 4
        ti["offset_off"] = pos; ti["offset"] = u64(pos); pos += 8
        tensors[name] = ti
    return kvs, tensors, pos


def build_corrupt_base(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_uint32("k.a", 1)
    w.add_uint32("k.b", 2)
    w.add_token_list(["x", "yy", "zzz"])
    w.add_token_types([1, 2, 3])
    rng = np.random.default_rng(1)
    w.add_tensor("ta", gguf.quants.quantize(rng.normal(size=(2, 64)).astype(np.float32), QT.Q4_0), raw_dtype=QT.Q4_0)
    w.add_tensor("tb", rng.normal(size=(3, 5)).astype(np.float32))
    w.add_tensor("tc", random_blocks(QT.Q6_K, 1, rng), raw_dtype=QT.Q6_K)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def test_corruption(asan, tmp):
    base = os.path.join(tmp, "corrupt_base.gguf")
    build_corrupt_base(base)
    good = open(base, "rb").read()
    kvs, tensors, header_end = walk(good)
    rc, _, err = run(asan, "f32", base)
    report(rc == 0 and not err, "corruption base file reads cleanly under ASan/UBSan (control)", err.strip())

    def expect_error(label, data, must_contain=(), cmd="meta"):
        p = os.path.join(tmp, "bad_" + "".join(c if c.isalnum() else "_" for c in label) + ".gguf")
        with open(p, "wb") as f:
            f.write(data)
        rc, _, err = run(asan, cmd, p)
        lines = err.strip().splitlines()
        sanitizer = "Sanitizer" in err or "runtime error" in err
        ok = (rc == 1 and len(lines) == 1 and lines[0].startswith(p + ": ") and not sanitizer
              and all(s in lines[0] for s in must_contain))
        report(ok, f"corrupt: {label}", f"rc={rc} {err.strip()[:300]}")
        if ok:
            os.remove(p)

    def patch(off, fmt, val):
        b = bytearray(good)
        struct.pack_into(fmt, b, off, val)
        return bytes(b)

    # data section: aligned to 64 after the header; tc is the last tensor
    data_off = (header_end + 63) // 64 * 64
    tc_end = data_off + tensors["tc"]["offset"] + 210
    # truncations: every byte of the fixed header, then spread over the rest
    cuts = sorted(set(range(0, 25)) | set(range(25, header_end, 7)) |
                  {header_end - 1, header_end, data_off, data_off + 1, tc_end - 1})
    failed_cuts = []
    for n in cuts:
        p = os.path.join(tmp, "trunc.gguf")
        with open(p, "wb") as f:
            f.write(good[:n])
        rc, _, err = run(asan, "meta", p)
        lines = err.strip().splitlines()
        if not (rc == 1 and len(lines) == 1 and lines[0].startswith(p + ": ")
                and "Sanitizer" not in err and "runtime error" not in err):
            failed_cuts.append((n, rc, err.strip()[:200]))
    report(not failed_cuts, f"corrupt: truncated at {len(cuts)} points (0..{tc_end - 1} of {len(good)} bytes)",
           f"bad: {failed_cuts[:3]}")
    expect_error("truncated inside last tensor names it", good[:tc_end - 1], ["'tc'", "past end"])

    expect_error("bad magic", b"GGUX" + good[4:], ["magic"])
    expect_error("version 1", patch(4, "<I", 1), ["version 1"])
    expect_error("version 4", patch(4, "<I", 4), ["version 4"])
    expect_error("big-endian version", patch(4, ">I", 3), ["version"])
    expect_error("huge tensor count", patch(8, "<Q", 2**63), ["tensor count"])
    expect_error("huge kv count", patch(16, "<Q", 2**40), ["metadata count"])
    expect_error("kv count one too many", patch(16, "<Q", len(kvs) + 1), [])
    expect_error("huge key length", patch(24, "<Q", 2**64 - 1), ["key #0"])
    arch = kvs["general.architecture"]
    expect_error("huge string value length", patch(arch["val_off"], "<Q", 2**63), ["'general.architecture'"])
    expect_error("unknown value type", patch(kvs["k.a"]["type_off"], "<I", 99), ["'k.a'", "type 99"])
    tok = kvs["tokenizer.ggml.tokens"]
    expect_error("huge string array count", patch(tok["count_off"], "<Q", 2**61), ["'tokenizer.ggml.tokens'"])
    expect_error("huge string in array", patch(tok["first_elem_off"], "<Q", 2**50), ["'tokenizer.ggml.tokens'"])
    expect_error("array of arrays", patch(tok["elem_off"], "<I", 9), ["'tokenizer.ggml.tokens'"])
    expect_error("array of unknown type", patch(tok["elem_off"], "<I", 13), ["'tokenizer.ggml.tokens'"])
    tt = kvs["tokenizer.ggml.token_type"]
    expect_error("huge int array count", patch(tt["count_off"], "<Q", 2**62), ["'tokenizer.ggml.token_type'"])
    al = kvs["general.alignment"]
    expect_error("alignment not a power of two", patch(al["val_off"], "<I", 48), ["general.alignment"])
    expect_error("alignment zero", patch(al["val_off"], "<I", 0), ["general.alignment"])
    expect_error("alignment wrong type", patch(al["type_off"], "<I", 5), ["general.alignment"])
    b = bytearray(good); b[kvs["k.b"]["len_off"] + 8 + 2] = ord("a")
    expect_error("duplicate key", bytes(b), ["duplicate", "'k.a'"])
    ta, tb, tc = tensors["ta"], tensors["tb"], tensors["tc"]
    expect_error("huge tensor name length", patch(ta["name_off"], "<Q", 2**64 - 2), ["tensor #0"])
    expect_error("unknown tensor type 4", patch(tb["type_off"], "<I", 4), ["'tb'", "unknown tensor type"])
    expect_error("unknown tensor type 1000", patch(tb["type_off"], "<I", 1000), ["'tb'", "unknown tensor type"])
    expect_error("5 dims", patch(tb["ndims_off"], "<I", 5), ["'tb'", "dimensions"])
    expect_error("huge ndims", patch(tb["ndims_off"], "<I", 2**31), ["'tb'"])
    b = bytearray(good)
    struct.pack_into("<QQ", b, tb["ne_off"], 2**62, 2**62)
    expect_error("dims overflow", bytes(b), ["'tb'", "overflow"])
    expect_error("dim above INT64_MAX", patch(tb["ne_off"], "<Q", 2**63 + 1), ["'tb'"])
    expect_error("row not a multiple of block", patch(ta["ne_off"], "<Q", 33), ["'ta'", "block size"])
    expect_error("tensor offset past end", patch(tb["offset_off"], "<Q", 2**40), ["'tb'", "past end"])
    expect_error("tensor offset 2^64-64", patch(tb["offset_off"], "<Q", 2**64 - 64), ["'tb'", "past end"])
    expect_error("tensor offset unaligned", patch(tb["offset_off"], "<Q", tb["offset"] + 1), ["'tb'", "alignment"])
    data_size = len(good) - data_off
    expect_error("tensor data straddles end", patch(tc["offset_off"], "<Q", (data_size - 210 + 64) // 64 * 64),
                 ["'tc'", "past end"])
    expect_error("tensor too big for file", patch(tc["ne_off"] + 8, "<Q", 1000), ["'tc'", "past end"])
    b = bytearray(good); b[tensors["tb"]["name_off"] + 9] = ord("a")
    expect_error("duplicate tensor name", bytes(b), ["duplicate", "'ta'"])
    expect_error("empty file", b"", ["empty"])
    expect_error("random bytes", np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes(), ["magic"])
    # not files
    for label, p in [("missing file", os.path.join(tmp, "does-not-exist.gguf")), ("directory", tmp)]:
        rc, _, err = run(asan, "meta", p)
        report(rc == 1 and err.strip().startswith(p + ": ") and len(err.strip().splitlines()) == 1,
               f"corrupt: {label}", err.strip())

    # positive controls: metadata-only file without a data section, and empty
    # arrays/strings (which GGUFWriter refuses to write), hand-built.
    def s(x):
        return struct.pack("<Q", len(x)) + x
    raw = b"GGUF" + struct.pack("<IQQ", 3, 0, 3)
    raw += s(b"e.arr_str") + struct.pack("<IIQ", 9, 8, 0)
    raw += s(b"e.arr_i32") + struct.pack("<IIQ", 9, 5, 0)
    raw += s(b"e.str") + struct.pack("<I", 8) + s(b"")
    p = os.path.join(tmp, "meta_only.gguf")
    open(p, "wb").write(raw)
    rc, out, err = run(asan, "meta", p)
    lines = [json.loads(x) for x in out.decode().splitlines()] if rc == 0 else []
    report(rc == 0 and [x["value"] for x in lines] == [[], [], ""],
           "metadata-only file with empty arrays and no data section opens (control)", err.strip())
    expect_error("metadata-only file truncated", raw[:-1], ["'e.str'"])
    return base


def test_valgrind(b, synthetic, tmp):
    if not shutil.which("valgrind"):
        print("SKIP valgrind (not installed)")
        return
    vg = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=all"]
    for args, want_rc in [(["f32", synthetic, "t.q4_k.random", "t.q6_k.3d", "t.f16", "blk.0.attn_q.weight"], 0),
                          (["hf", synthetic, "blk.0.attn_k.weight"], 0), (["meta", synthetic], 0),
                          (["f32", synthetic, "t.iq4_nl"], 1)]:
        p = subprocess.run(vg + [b, *args], capture_output=True)
        err = p.stderr.decode("utf-8", "replace")
        report(p.returncode == want_rc and "==" not in err, f"valgrind gguf_dump {args[0]} {' '.join(args[2:])}".strip(),
               f"rc={p.returncode} {err[-500:]}")
    bad = os.path.join(tmp, "vg_trunc.gguf")
    data = open(synthetic, "rb").read()
    for n in [30, len(data) // 3]:
        open(bad, "wb").write(data[:n])
        p = subprocess.run(vg + [b, "meta", bad], capture_output=True)
        err = p.stderr.decode("utf-8", "replace")
        report(p.returncode == 1 and "==" not in err, f"valgrind clean on file truncated at {n} bytes",
               f"rc={p.returncode} {err[-500:]}")


# ----------------------------------------------------------------------------
# real model: SmolLM2-135M-Instruct Q4_1 (llama, tied embeddings)

def test_real(b, path):
    r = gguf.GGUFReader(path)
    meta = meta_of(b, path)
    # every key and value matches the package's reader
    bad = []
    for name, field in r.fields.items():
        if name.startswith("GGUF."):  # the reader's pseudo-fields for the header
            continue
        d = meta.get(name)
        want = field.contents()
        if d is None:
            bad.append((name, "missing"))
        elif field.types[0] == VT.FLOAT32 or (field.types[0] == VT.ARRAY and field.types[-1] == VT.FLOAT32):
            if not np.array_equal(np.float32(d["value"]), np.float32(want)):
                bad.append((name, d["value"]))
        elif d["value"] != want:
            bad.append((name, str(d["value"])[:80]))
    n_user = len([k for k in r.fields if not k.startswith("GGUF.")])
    report(not bad and len(meta) == n_user, f"real: all {n_user} metadata keys equal the gguf package's", f"{bad[:3]}")
    report(len(meta["tokenizer.ggml.tokens"]["value"]) == 49152 and len(meta["tokenizer.ggml.merges"]["value"]) > 40000,
           "real: tokens and merges arrays", f"{len(meta['tokenizer.ggml.tokens']['value'])} tokens")

    rc, out, err = run(b, "config", path)
    cfg = json.loads(out) if rc == 0 else {}
    want = {"n_layer": 30, "n_embd": 576, "n_head": 9, "n_head_kv": 3, "vocab_size": 49152, "n_ff": 1536,
            "n_ctx": 8192, "rope_theta": 100000.0, "tied_embeddings": True}
    report(all(cfg.get(k) == v for k, v in want.items()) and abs(cfg.get("rms_norm_eps", 0) - 1e-5) < 1e-9,
           "real: llama hyper-parameters (30 layers, 576 wide, 9/3 heads, vocab 49152, ffn 1536)", f"{cfg} {err.strip()}")

    infos = tensors_of(b, path)
    ok = len(infos) == len(r.tensors) and all(
        t["name"] == rt.name and t["type"] == rt.tensor_type.name and t["ne"] == [int(x) for x in rt.shape]
        and t["n_elements"] == rt.n_elements and t["nbytes"] == rt.n_bytes for t, rt in zip(infos, r.tensors))
    report(ok, f"real: {len(infos)} tensor infos (name, type, ne, size) equal the gguf package's")
    report(all(t["hf"] for t in infos) and len({t["hf"] for t in infos}) == len(infos),
           "real: every tensor has a distinct HF name")

    # every tensor, streamed from one gguf_dump run, against gguf.quants.dequantize
    p = subprocess.Popen([b, "f32", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bad, exact, types = [], 0, set()
    for rt in r.tensors:
        buf = p.stdout.read(rt.n_elements * 4)
        got = np.frombuffer(buf, dtype=np.float32)
        ref = gguf.quants.dequantize(rt.data, rt.tensor_type)
        ok, detail = same_f32(got, ref)
        exact += detail == "bit-exact"
        types.add(rt.tensor_type.name)
        if not ok:
            bad.append((rt.name, detail))
    rest = p.stdout.read()
    p.wait()
    err = p.stderr.read().decode()
    report(not bad and p.returncode == 0 and not rest,
           f"real: all {len(r.tensors)} tensors ({'/'.join(sorted(types))}) dequantize like gguf.quants "
           f"({exact} bit-exact)", f"{bad[:3]} rc={p.returncode} {err.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--asan-bin", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--real")
    ap.add_argument("--valgrind", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(1234)
    synthetic, hf = test_synthetic(a.bin, a.tmp, rng)
    test_unpermute(a.bin, synthetic, hf)
    test_corruption(a.asan_bin, a.tmp)
    if a.valgrind:
        test_valgrind(a.bin, synthetic, a.tmp)
    if a.real:
        test_real(a.bin, a.real)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
