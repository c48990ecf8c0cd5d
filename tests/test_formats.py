"""repo's file readers against the reference libraries, case by case.

For every case a file is built here, the reference is asked whether it reads the file and what it reads,
and repo's reader is asked the same (tests/formats_driver.c for safetensors, config.json, shards, JSONL and
tokenizers; tests/gguf/gguf_dump.c for GGUF). They must agree: both accept and read the same values, or
both refuse, repo with one line naming the file (and the tensor, key or FILE:LINE the case is about).
Where repo refuses on purpose what the reference takes, or takes what it refuses, the case says so
(`differ=`) and the test checks both halves of that claim, so a changed reference shows up here.

References: safetensors 0.4.2 (safe_open), tokenizers 0.15.2 (Tokenizer.from_file, BPE.from_file),
Python's json as transformers reads config.json and as one reads JSON Lines, gguf 0.17.1 (GGUFReader and
gguf.quants) plus ggml's own rules, which the gguf package does not check (written out per case).

usage: test_formats.py [--table]      (--table: a summary table of every case after the PASS/FAIL lines)
Environment: CC (gcc), PYTHON is this interpreter (tests/install_deps.sh test: .venv).
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "gguf"))
warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.disable(logging.CRITICAL)  # gguf's reader logs a warning for a repeated key

TMP = tempfile.mkdtemp(prefix="formats_")
passed = failed = 0
table = []


def report(ok, name, detail=""):
    global passed, failed
    passed += ok
    failed += not ok
    detail = " ".join(str(detail).split())[:300]
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def build():
    cc = os.environ.get("CC", "gcc")
    exe = {"driver": os.path.join(TMP, "formats_driver"), "gguf": os.path.join(TMP, "gguf_dump")}
    src = [os.path.join(ROOT, f) for f in ("io.c", "tokenizer.c", "data.c", "gguf.c", "outdir.c")]
    cmds = [[cc, "-O1", "-g", "-o", exe["driver"], os.path.join(ROOT, "tests", "formats_driver.c")] + src,
            [cc, "-O1", "-g", "-o", exe["gguf"], os.path.join(ROOT, "tests", "gguf", "gguf_dump.c"), src[0], src[3]]]
    for c in cmds:
        r = subprocess.run(c + ["-lcjson", "-lpcre2-8", "-lm"], capture_output=True, text=True)
        if r.returncode:
            report(False, "build " + os.path.basename(c[c.index("-o") + 1]), r.stderr)
            sys.exit(1)
    return exe


def run(args):
    r = subprocess.run(args, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace").strip()


def case(fmt, name, ref, ours, about=(), differ=None):
    """ref, ours: ("accept", value) or ("refuse", message). about: what a refusal must name besides the file.
    differ: (our verdict, why) when repo differs from the reference on purpose."""
    path = ours[2] if len(ours) > 2 else None
    rv, ov = ref[0], ours[0]
    want = differ[0] if differ else rv
    ok, detail = ov == want, ""
    if ov == "refuse":
        msg = ours[1]
        one = bool(msg) and "\n" not in msg
        names = all(a in msg for a in ((path,) if path else ()) + tuple(about))
        ok = ok and one and names
        detail = msg
    if differ and rv == differ[0]:
        ok, detail = False, f"listed as a difference but the reference {rv}s too"
    if ok and rv == ov == "accept" and ref[1] is not None and ours[1] != ref[1]:
        ok, detail = False, f"reads {str(ours[1])[:120]} where the reference reads {str(ref[1])[:120]}"
    if not ok and not detail:
        detail = f"reference {rv}s ({str(ref[1])[:100]}), repo {ov}s ({str(ours[1])[:150]})"
    note = differ[1] if differ else ""
    report(ok, f"{fmt}: {name}: reference {rv}s, repo {ov}s" + (f" (on purpose: {note})" if note else ""), detail)
    table.append((fmt, name, rv, ov, note))


def write(name, data):
    p = os.path.join(TMP, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return p


def f32_list(xs):  # float32 values as the C side prints them (%.9g), comparable exactly
    return [float(np.float32(x)) if math.isfinite(x) else x for x in xs]


# ----------------------------------------------------------------------------------------------------
# safetensors

def st_file(header=None, data=b"", raw=None, pad=b""):
    h = raw if raw is not None else json.dumps(header).encode()
    h += pad
    return struct.pack("<Q", len(h)) + h + data


def st_ref(path):
    from safetensors import safe_open
    try:
        out = {}
        with safe_open(path, "pt") as f:
            for k in f.keys():
                dt = f.get_slice(k).get_dtype()
                out[k] = f32_list(f.get_tensor(k).float().flatten().tolist()) if dt in ("F32", "F16", "BF16") else dt
        return ("accept", out)
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return ("refuse", f"{type(e).__name__}: {e}")


def st_ours(exe, path):
    rc, out, err = run([exe["driver"], "st", path])
    if rc:
        return ("refuse", err, path)
    got = {}
    for line in out.splitlines():
        t = json.loads(line.replace("nan", "NaN").replace("inf", "Infinity"))
        got[t["name"]] = f32_list(t["values"]) if "values" in t else t["dtype"]
    return ("accept", got, path)


def test_safetensors(exe):
    f4 = np.arange(4, dtype=np.float32).tobytes()
    a = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    cases = [  # name, bytes, what a refusal names, difference
        ("valid", st_file({"a": a}, f4), ()),
        ("header padded with spaces", st_file({"a": a}, f4, pad=b"   "), ()),
        ("header padded with tab, CR, LF", st_file({"a": a}, f4, pad=b"\t\r\n"), ()),
        ("header padded with NUL bytes", st_file({"a": a}, f4, pad=b"\0\0"), ("NUL",)),
        ("blank before the header's {", st_file(raw=b' {"a": ' + json.dumps(a).encode() + b"}", data=f4), ()),
        ("empty header {}", st_file({}), ()),
        ("header length 0", struct.pack("<Q", 0), ("header",)),
        ("header length over 100 MB", struct.pack("<Q", 100_000_001) + b"{}", ("100000000",)),
        ("header length past the end", struct.pack("<Q", 50) + b"{}", ("header length",)),
        ("file of 5 bytes", b"\0" * 5, ("too short",)),
        ("empty file", b"", ("too short",)),
        ("trailing bytes after the data", st_file({"a": a}, f4 + b"xxxx"), ("trailing",)),
        ("gap between tensors", st_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}, f4), ("tensor b",)),
        ("overlapping tensors", st_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, f4), ("tensor b",)),
        ("first tensor not at 0", st_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]}}, f4), ("tensor a",)),
        ("two tensors on the same bytes", st_file({"a": a, "b": a}, f4), ("tensor",)),
        ("data_offsets end before begin", st_file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}), ("tensor a",)),
        ("zero-size dimension", st_file({"a": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}, "b": dict(a)}, f4), ()),
        ("scalar (shape [])", st_file({"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, f4[:4]), ()),
        ("9 dimensions", st_file({"a": {"dtype": "F32", "shape": [1] * 8 + [4], "data_offsets": [0, 16]}}, f4), ()),
        ("shape and span disagree", st_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, f4), ("tensor a",)),
        ("shape size overflows 64 bits", st_file({"a": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 16]}}, f4), ("tensor a",)),
        ("dimension 2^64", st_file({"a": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 16]}}, f4), ("tensor a",)),
        ("dimension 4.0", st_file(raw=b'{"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}', data=f4), ("tensor a",)),
        ("dimension 4e0", st_file(raw=b'{"a": {"dtype": "F32", "shape": [4e0], "data_offsets": [0, 16]}}', data=f4), ("tensor a",)),
        ("negative dimension", st_file({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, f4), ("tensor a",)),
        ("data_offsets of 3 numbers", st_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16, 16]}}, f4), ("tensor a",)),
        ("data_offsets 16.0", st_file(raw=b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16.0]}}', data=f4), ("tensor a",)),
        ("unknown dtype F17", st_file({"a": dict(a, dtype="F17")}, f4), ("tensor a", "F17")),
        ("dtype in lower case", st_file({"a": dict(a, dtype="f32")}, f4), ("tensor a",)),
        ("dtype I32 (read as a buffer)", st_file({"a": dict(a, dtype="I32")}, f4), ()),
        ("dtype F8_E4M3 (read as a buffer)", st_file({"a": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}}, f4), ()),
        ("dtype F16 and BF16", st_file({"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
                                        "b": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]}},
                                       b"\x00\x3c\x01\x80" + b"\x80\x3f\x00\xc0"), ()),
        ("entry without shape", st_file({"a": {"dtype": "F32", "data_offsets": [0, 16]}}, f4), ("tensor a",)),
        ("entry not an object", st_file({"a": 5}), ("tensor a",)),
        ("unknown field in an entry", st_file({"a": dict(a, foo=[1, {"x": 2.5}])}, f4), ()),
        ("field given twice in an entry", st_file(raw=b'{"a": {"dtype": "F32", "dtype": "F16", "shape": [4], "data_offsets": [0, 16]}}', data=f4), ("tensor a", "dtype")),
        ("__metadata__ string -> string", st_file({"__metadata__": {"format": "pt"}, "a": a}, f4), ()),
        ("__metadata__ null", st_file({"__metadata__": None, "a": a}, f4), ()),
        ("__metadata__ with a number", st_file({"__metadata__": {"format": 1}, "a": a}, f4), ("__metadata__",)),
        ("__metadata__ a list", st_file({"__metadata__": ["x"], "a": a}, f4), ("__metadata__",)),
        ("__metadata__ nested", st_file({"__metadata__": {"a": {"b": "c"}}, "a": a}, f4), ("__metadata__",)),
        ("__metadata__ twice", st_file(raw=b'{"__metadata__": {"x": "1"}, "__metadata__": {"y": "2"}, "a": ' + json.dumps(a).encode() + b"}", data=f4), ("__metadata__",)),
        ("__metadata__ repeating a key", st_file(raw=b'{"__metadata__": {"x": "1", "x": "2"}, "a": ' + json.dumps(a).encode() + b"}", data=f4), ()),
        ("tensor name given twice, same entry", st_file(raw=b'{"a": ' + json.dumps(a).encode() + b', "a": ' + json.dumps(a).encode() + b"}", data=f4), ()),
        ("tensor name given twice, two spans", st_file(raw=b'{"a": ' + json.dumps(a).encode() + b', "a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}', data=f4 + f4), ("tensor a",)),
        ("name not UTF-8", st_file(raw=b'{"a\xff": ' + json.dumps(a).encode() + b"}", data=f4), ("UTF-8",)),
        ("name with \\u00e9", st_file(raw=b'{"a\\u00e9": ' + json.dumps(a).encode() + b"}", data=f4), ()),
        ("name with a lone surrogate", st_file(raw=b'{"a\\ud800": ' + json.dumps(a).encode() + b"}", data=f4), ("surrogate",)),
        ("empty name", st_file({"": a}, f4), ()),
        ("header a list", st_file(raw=b"[]"), ("JSON object",)),
        ("JSON after the header's object", st_file(raw=b'{"a": ' + json.dumps(a).encode() + b"} {}", data=f4), ("trailing",)),
    ]
    for name, data, about in cases:
        p = write(f"st/{len(table)}.safetensors", data)
        case("safetensors", name, st_ref(p), st_ours(exe, p), about)
    differ = [
        ("name with \\u0000", st_file(raw=b'{"a\\u0000b": ' + json.dumps(a).encode() + b"}", data=f4), ("NUL",),
         ("refuse", "a C string cannot hold the NUL: the name would be read cut short")),
        ("NaN value", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, struct.pack("<f", math.nan)),
         ("tensor a", "NaN"), ("refuse", "a weight that is not finite is refused when read, naming the tensor")),
        ("infinite F16 value", st_file({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, b"\x00\x3c\x00\x7c"),
         ("tensor a", "element 1 is infinite"), ("refuse", "as NaN")),
    ]
    for name, data, about, d in differ:
        p = write(f"st/{len(table)}.safetensors", data)
        case("safetensors", name, st_ref(p), st_ours(exe, p), about, differ=d)


# ----------------------------------------------------------------------------------------------------
# sharded models: transformers loads every shard the index names and keeps, for a tensor found in two,
# the copy of the shard that comes last by file name, whatever the weight_map says

def test_shards(exe):
    import torch
    from safetensors.torch import save_file
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    from transformers import GPT2Config, GPT2LMHeadModel
    d = os.path.join(TMP, "shards")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=8, n_embd=8, n_layer=1, n_head=2)).save_pretrained(
        d, max_shard_size="2KB", safe_serialization=True)
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    name = "transformer.ln_f.weight"
    files = sorted(set(index["weight_map"].values()))
    rc, out, err = run([exe["driver"], "index", d])
    ours = {json.loads(x)["name"]: json.loads(x)["values"] for x in out.splitlines()} if rc == 0 else {}
    model = GPT2LMHeadModel.from_pretrained(d)
    want = f32_list(model.state_dict()[name].flatten().tolist())
    report(rc == 0 and f32_list(ours.get(name, [])) == want and len(files) > 2,
           f"shards: {len(files)} shards read as transformers reads them ({name})", err)
    # a second copy of the tensor, with other values, in the first shard; the index keeps pointing at its home
    home, first = index["weight_map"][name], files[0]
    from safetensors.torch import load_file
    sd = load_file(os.path.join(d, first))
    sd[name] = torch.full((8,), 7.0)
    save_file(sd, os.path.join(d, first), metadata={"format": "pt"})
    got = GPT2LMHeadModel.from_pretrained(d).state_dict()[name][0].item()
    rc, out, err = run([exe["driver"], "index", d])
    ok = rc == 1 and d in err and name in err and first in err and home in err and "\n" not in err
    report(ok and got == want[0] and home == files[-1], f"shards: {name} in two shards: transformers silently keeps the copy in {home} "
           f"(the last by name, {got}), repo refuses naming both", err)
    table.append(("shards", "a tensor in two shards", "accept (last shard by name wins)", "refuse", "naming both shards and the index's choice"))
    # the index says the first shard; transformers still takes the last one's copy
    index["weight_map"][name] = first
    json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    got = GPT2LMHeadModel.from_pretrained(d).state_dict()[name][0].item()
    rc, _, err = run([exe["driver"], "index", d])
    report(rc == 1 and got == want[0] and name in err, f"shards: index pointing at the other copy: transformers ignores it "
           f"({got}), repo refuses", err)
    table.append(("shards", "weight_map names the other copy", "accept (ignores weight_map)", "refuse", "as above"))
    # a repeated key in weight_map: the last counts (Python's json)
    sd.pop(name)
    save_file(sd, os.path.join(d, first), metadata={"format": "pt"})
    text = json.dumps(index).replace(f'"{name}": "{first}"', f'"{name}": "{first}", "{name}": "{home}"')
    write("shards/model.safetensors.index.json", text)
    rc, out, err = run([exe["driver"], "index", d])
    ref = json.loads(text)["weight_map"][name] == home
    report(rc == 0 and ref, "shards: a name repeated in weight_map: the last entry counts, as in Python's json", err)
    table.append(("shards", "a name twice in weight_map", "accept (last)", "accept (last)" if rc == 0 else "refuse", ""))


# ----------------------------------------------------------------------------------------------------
# config.json as transformers reads it: json.loads of the UTF-8 text, an object

def config_ref(path, keys):
    try:
        j = json.loads(open(path, encoding="utf-8").read())
        if not isinstance(j, dict):
            return ("refuse", "not an object")
        return ("accept", {k.split(":")[-1]: j[k.split(":")[-1]] for k in keys})
    except Exception as e:  # noqa: BLE001
        return ("refuse", f"{type(e).__name__}: {e}")


def config_ours(exe, path, keys):
    rc, out, err = run([exe["driver"], "config", path] + keys)
    return ("accept", json.loads(out), path) if rc == 0 else ("refuse", err, path)


def test_config(exe):
    K = ["int:n_layer"]
    cases = [
        ("valid", '{"n_layer": 2}', K, ()),
        ("a key given twice: the last counts", '{"n_layer": 2, "n_layer": 4}', K, ()),
        ("two objects", '{"n_layer": 2} {"n_layer": 3}', K, ("trailing",)),
        ("text after the object", '{"n_layer": 2} x', K, ("trailing",)),
        ("NUL byte after the object", '{"n_layer": 2}\0', K, ("NUL",)),
        ("NUL byte between tokens", '{"n_layer":\0 2}', K, ("NUL",)),
        ("UTF-8 byte order mark", "\ufeff" + '{"n_layer": 2}', K, ("byte 0",)),
        ("blanks around", ' \r\n\t{"n_layer": 2}\n\n', K, ()),
        ("single quotes", "{'n_layer': 2}", K, ()),
        ("trailing comma", '{"n_layer": 2,}', K, ()),
        ("comment", '{"n_layer": 2} // two', K, ()),
        ("leading zero", '{"n_layer": 02}', K, ("leading zero",)),
        ("control character in a string", '{"n_layer": 2, "a": "x\ty"}', K, ("control",)),
        ("invalid UTF-8 in a string", b'{"n_layer": 2, "a": "\xff"}', K, ("UTF-8",)),
        ("not an object", "[1, 2]", K, ("object",)),
        ("empty file", "", K, ()),
        ("escaped string value", '{"model_type": "gpt\\u0032", "n_layer": 2}', K + ["model_type"], ()),
    ]
    for name, text, keys, about in cases:
        p = write(f"config/{len(table)}.json", text)
        case("config.json", name, config_ref(p, keys), config_ours(exe, p, keys), about)
    differ = [
        ("n_layer 4294967298", '{"n_layer": 4294967298}', K, ("n_layer",), ("refuse", "repo sizes are int32: 2^32+2 would wrap to 2")),
        ("vocab_size 4294967553", '{"vocab_size": 4294967553}', ["int:vocab_size"], ("vocab_size",), ("refuse", "as above: it read as 257")),
        ("n_layer 2.5", '{"n_layer": 2.5}', K, ("n_layer",), ("refuse", "not a whole number")),
        ("NaN", '{"n_layer": 2, "eps": NaN}', K, ("byte",), ("refuse", "NaN is not JSON (RFC 8259); Python's json takes it")),
        ("1e999", '{"n_layer": 2, "eps": 1e999}', K + ["num:eps"], ("eps", "finite"), ("refuse", "a number must be finite; Python reads inf")),
        ("lone surrogate escape", '{"n_layer": 2, "a": "\\ud800"}', K, ("surrogate",), ("refuse", "not a character; serde_json refuses it too")),
        ("\\u0000 in a string", '{"n_layer": 2, "a": "x\\u0000y"}', K, ("NUL",), ("refuse", "a C string would end at the NUL")),
        ("nested 200 deep", '{"n_layer": 2, "a": ' + "[" * 200 + "]" * 200 + "}", K, ("128",), ("refuse", "serde_json's depth limit, 128")),
    ]
    for name, text, keys, about, d in differ:
        p = write(f"config/{len(table)}.json", text)
        case("config.json", name, config_ref(p, keys), config_ours(exe, p, keys), about, differ=d)


# ----------------------------------------------------------------------------------------------------
# JSON Lines pair files: Python's json on each non-blank line; ids lines need whole numbers in range

VOCAB = 1000


def jsonl_ref(path):
    pairs = []
    try:
        for n, line in enumerate(open(path, "rb").read().split(b"\n"), 1):
            if not line.strip(b" \t\r"):
                continue
            j = json.loads(line.decode("utf-8"))
            if not isinstance(j, dict):
                return ("refuse", f"line {n}: not an object")
            seq = [j[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")]
            if not all(s and all(type(i) is int and 0 <= i < VOCAB for i in s) for s in seq):
                return ("refuse", f"line {n}: bad ids")
            pairs.append(seq)
        return ("accept", pairs) if pairs else ("refuse", "no pairs")
    except Exception as e:  # noqa: BLE001
        return ("refuse", f"{type(e).__name__}: {e}")


def jsonl_ours(exe, path):
    rc, out, err = run([exe["driver"], "pairs", path, str(VOCAB)])
    return ("accept", [json.loads(x) for x in out.splitlines()], path) if rc == 0 else ("refuse", err, path)


def test_jsonl(exe):
    P = '{"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5]}'
    Q = '{"prompt_ids": [7], "chosen_ids": [8, 9], "rejected_ids": [10]}'
    cases = [
        ("two lines", P + "\n" + Q + "\n", ()),
        ("blank and whitespace lines, CRLF, no final newline", "\n" + P + "\r\n  \t\n" + Q, ()),
        ("two objects on one line", P + " " + Q + "\n", (":1:", "trailing")),
        ("two objects on line 2", P + "\n" + Q + Q + "\n", (":2:",)),
        ("text after the object", P + " x\n", (":1:",)),
        ("NUL byte after the object", P + "\0\n" + Q + "\n", (":1:", "NUL")),
        ("NUL byte inside line 2", P + "\n" + Q[:10] + "\0" + Q[10:] + "\n", (":2:", "NUL")),
        ("NUL byte inside a string", P + "\n" + Q[:-1] + ', "note": "a\0b"}\n', (":2:", "NUL")),
        ("a key given twice: the last counts", '{"prompt_ids": [1], "prompt_ids": [6], "chosen_ids": [3], "rejected_ids": [4]}\n', ()),
        ("escaped key", '{"prompt\\u005fids": [1], "chosen_ids": [3], "rejected_ids": [4]}\n', ()),
        ("other members, nested", P[:-1] + ', "meta": {"a": [1, {"b": "c\\"d"}], "s": 0.5}}\n', ()),
        ("members out of order", '{"rejected_ids": [4], "chosen_ids": [3], "prompt_ids": [1]}\n', ()),
        ("id out of the vocabulary", '{"prompt_ids": [1000], "chosen_ids": [3], "rejected_ids": [4]}\n', (":1:", "prompt_ids")),
        ("id 1e300", '{"prompt_ids": [1e300], "chosen_ids": [3], "rejected_ids": [4]}\n', (":1:", "prompt_ids")),
        ("negative id", '{"prompt_ids": [-1], "chosen_ids": [3], "rejected_ids": [4]}\n', (":1:", "prompt_ids")),
        ("empty list", '{"prompt_ids": [], "chosen_ids": [3], "rejected_ids": [4]}\n', (":1:", "prompt_ids")),
        ("a list, not an object", "[1, 2, 3]\n", (":1:",)),
        ("byte order mark", "\ufeff" + P + "\n", (":1:",)),
        ("invalid UTF-8 on line 2", P.encode() + b"\n" + Q[:-1].encode() + b', "n": "\xc3("}\n', (":2:", "UTF-8")),
        ("only blank lines", "\n \n", ("no preference pairs",)),
    ]
    for name, text, about in cases:
        p = write(f"jsonl/{len(table)}.jsonl", text)
        case("JSONL", name, jsonl_ref(p), jsonl_ours(exe, p), about)
    differ = [
        ("id 3.0", '{"prompt_ids": [3.0], "chosen_ids": [3], "rejected_ids": [4]}\n', (),
         ("accept", "a whole number is taken as an id, though Python reads a float")),
    ]
    for name, text, about, d in differ:
        p = write(f"jsonl/{len(table)}.jsonl", text)
        case("JSONL", name, jsonl_ref(p), jsonl_ours(exe, p), about, differ=d)
    # a pipe: --data /dev/stdin, streamed
    p = write("jsonl/pipe_src.jsonl", P + "\n" + Q + "\n")
    r = subprocess.run(f"cat '{p}' | '{exe['driver']}' pairs /dev/stdin {VOCAB}", shell=True, capture_output=True, text=True)
    report(r.returncode == 0 and [json.loads(x) for x in r.stdout.splitlines()] == jsonl_ref(p)[1],
           "JSONL: read from a pipe (/dev/stdin)", r.stderr)
    # a directory
    rc, _, err = run([exe["driver"], "pairs", TMP, str(VOCAB)])
    report(rc == 1 and err == f"repo: error: {TMP}: is a directory, not a file", "JSONL: a directory as the data file", err)


# ----------------------------------------------------------------------------------------------------
# tokenizer.json (tokenizers 0.15.2) and vocab.json + merges.txt (tokenizers' BPE.from_file)

TEXTS = ["abc ab", "ab abc cab", "a  b\tc\n", "<s>abc</s>"]


def byte_level():
    cps, n = [], 0
    for b in range(256):
        keep = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        cps.append(b if keep else 256 + n)
        n += not keep
    return [chr(c) for c in cps]


BL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
VOC = {c: i for i, c in enumerate(byte_level())}
VOC.update({"ab": 256, "abc": 257, "\u0120a": 258})
MERGES = ["a b", "ab c", "\u0120 a"]
ADDED = {"id": 259, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}


def tok_json(**over):
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
             "fuse_unk": False, "byte_fallback": False, "vocab": dict(VOC), "merges": list(MERGES)}
    root = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [dict(ADDED)], "normalizer": None,
            "pre_tokenizer": dict(BL), "post_processor": None, "decoder": dict(BL), "model": model}
    for k, v in over.items():
        target, key = (model, k[6:]) if k.startswith("model_") else (root, k)
        if v is DEL:
            del target[key]
        else:
            target[key] = v
    return json.dumps(root)


DEL = object()


def tok_ref(path):
    from tokenizers import Tokenizer
    try:
        t = Tokenizer.from_file(path)
        return ("accept", [t.encode(s).ids for s in TEXTS])
    except Exception as e:  # noqa: BLE001
        return ("refuse", f"{type(e).__name__}: {e}")


def tok_ours(exe, path):
    rc, out, err = run([exe["driver"], "tok", path] + TEXTS)
    return ("accept", [json.loads(x) for x in out.splitlines()], path) if rc == 0 else ("refuse", err, path)


def test_tokenizer_json(exe):
    base = tok_json()
    cases = [
        ("valid", base, ()),
        ("merges one string", tok_json(model_merges="a b"), ("merges",)),
        ("merges mixing strings and pairs", tok_json(model_merges=["a b", ["ab", "c"]]), ("merge 1",)),
        ("merges missing", tok_json(model_merges=DEL), ("merges",)),
        ("merges null", tok_json(model_merges=None), ("merges",)),
        ("merge of three parts", tok_json(model_merges=["a b c"]), ("merge 0",)),
        ("merge with two spaces", tok_json(model_merges=["a  b"]), ("merge 0",)),
        ("merge of an unknown token", tok_json(model_merges=["a zz"]), ("zz",)),
        ("merge whose result is unknown", tok_json(model_merges=["b c"]), ("bc",)),
        ("a merge given twice", tok_json(model_merges=["a b", "ab c", "a b"]), ()),
        ("vocab key given twice", base.replace('"ab": 256', '"ab": 300, "ab": 256'), ()),
        ("vocab id negative", tok_json(model_vocab=dict(VOC, x=-1)), ("x",)),
        ("vocab id 1.5", tok_json(model_vocab=dict(VOC, x=1.5)), ("x",)),
        ("vocab id 2^32", tok_json(model_vocab=dict(VOC, x=2**32)), ("x",)),
        ("vocab id with a gap", tok_json(model_vocab=dict(VOC, x=5000)), ()),
        ("vocab a list", tok_json(model_vocab=[]), ("vocab",)),
        ("field of model given twice", base.replace('"dropout": null', '"dropout": null, "dropout": null'), ()),
        ("root field given twice", base.replace('"padding": null', '"padding": null, "padding": null'), ()),
        ("unknown root field", tok_json(extra=1), ("extra",)),
        ("unknown model field", tok_json(model_extra=1), ()),
        ("added token missing a flag", tok_json(added_tokens=[{k: v for k, v in ADDED.items() if k != "lstrip"}]), ("added_tokens[0]",)),
        ("added token id negative", tok_json(added_tokens=[dict(ADDED, id=-1)]), ("added_tokens[0]",)),
        ("added token field twice", base.replace('"lstrip": false', '"lstrip": false, "lstrip": true', 1), ("lstrip",)),
        ("added token with an unknown field", tok_json(added_tokens=[dict(ADDED, extra=1)]), ()),
        ("pre-tokenizer field twice", base.replace('"use_regex": true}, "post', '"use_regex": true, "use_regex": false}, "post'), ("use_regex",)),
        ("text after the JSON", base + " x", ("trailing",)),
        ("blanks after the JSON", base + " \n", ()),
        ("NUL after the JSON", base + "\0", ("NUL",)),
        ("not UTF-8", base.replace('"abc"', '"ab\\u00e9"').encode().replace(b"\\u00e9", b"\xff"), ("UTF-8",)),
        ("model without type", tok_json(model_type=DEL), ()),
        ("unk_token not in the vocabulary", tok_json(model_unk_token="zz"), ()),
    ]
    for name, text, about in cases:
        p = write(f"tok/{len(table)}/tokenizer.json", text)
        case("tokenizer.json", name, tok_ref(p), tok_ours(exe, p), about)
    # merges as pairs: tokenizers 0.20 on writes them; 0.15 refuses. repo reads them, and encodes as 0.15
    # does the same merges written as strings
    p = write(f"tok/{len(table)}/tokenizer.json", tok_json(model_merges=[m.split(" ") for m in MERGES]))
    ref15 = tok_ref(p)
    ours = tok_ours(exe, p)
    same = tok_ref(write("tok/strings/tokenizer.json", base))
    case("tokenizer.json", "merges as [left, right] pairs", ref15, ours, (),
         differ=("accept", "tokenizers 0.20 on writes this form; ids equal 0.15's for the same merges as strings"))
    report(ours[0] == "accept" and ours[1] == same[1], "tokenizer.json: pair merges encode as the string form does", str(ours[1]))
    differ = [
        ("a vocab id used twice", tok_json(model_vocab=dict(VOC, x=3)), ("id 3",),
         ("refuse", "tokenizers decodes such an id to either token, by hash order")),
        ("vocab id 2^24", tok_json(model_vocab=dict(VOC, x=2**24)), ("x",),
         ("refuse", "ids are taken below 2^24, so no stray id makes repo allocate gigabytes")),
    ]
    for name, text, about, d in differ:
        p = write(f"tok/{len(table)}/tokenizer.json", text)
        case("tokenizer.json", name, tok_ref(p), tok_ours(exe, p), about, differ=d)


def vm_ref(d):
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import BPE
    try:
        t = Tokenizer(BPE.from_file(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        return ("accept", [t.encode(s).ids for s in TEXTS[:3]])
    except Exception as e:  # noqa: BLE001
        return ("refuse", f"{type(e).__name__}: {e}")


def test_vocab_merges(exe):
    vocab = json.dumps(VOC)
    cases = [
        ("with #version", "#version: 0.2\na b\nab c\n", ()),
        ("without #version", "a b\nab c\n", ()),
        ("no final newline", "#version: 0.2\na b\nab c", ()),
        ("CRLF", "#version: 0.2\r\na b\r\nab c\r\n", ()),
        ("#version line later", "a b\n#version: 0.2\nab c\n", ()),
        ("blank line inside", "#version: 0.2\na b\n\nab c\n", ("merges.txt:3",)),
        ("blank line at the end", "#version: 0.2\na b\nab c\n\n", ("merges.txt:4",)),
        ("three parts", "#version: 0.2\na b c\n", ("merges.txt:2",)),
        ("unknown token", "#version: 0.2\na x\n", ("x",)),
        ("not UTF-8", b"a b\n\xff\xfe\n", ("UTF-8",)),
    ]
    for name, text, about in cases:
        d = os.path.join(TMP, "vm", str(len(table)))
        write(f"vm/{len(table)}/vocab.json", vocab)
        write(f"vm/{len(table)}/merges.txt", text)
        rc, out, err = run([exe["driver"], "tok", os.path.join(d, "vocab.json")] + TEXTS[:3])
        ours = ("accept", [json.loads(x) for x in out.splitlines()], d) if rc == 0 else ("refuse", err, d)
        case("vocab.json+merges.txt", name, vm_ref(d), ours, about)


# ----------------------------------------------------------------------------------------------------
# GGUF: the gguf package (it checks little) and ggml's rules, which it does not check, both

def gguf_ref(path):
    from gguf import GGUFReader
    import gguf.quants
    try:
        r = GGUFReader(path)
        meta = {}
        for k, f in r.fields.items():
            if k.startswith("GGUF."):
                continue
            meta[k] = f.contents()  # decodes strings: refuses what is not UTF-8
        for t in r.tensors:
            gguf.quants.dequantize(t.data, t.tensor_type)
        return ("accept", sorted(k for k in meta))
    except Exception as e:  # noqa: BLE001
        return ("refuse", f"{type(e).__name__}: {e}")


def gguf_ours(exe, path):
    rc, out, err = run([exe["gguf"], "meta", path])
    if rc == 0:
        keys = sorted(json.loads(x)["key"] for x in out.splitlines())
        rc, _, err = run([exe["gguf"], "f32", path])
        if rc == 0:
            return ("accept", keys, path)
    return ("refuse", err, path)


def test_gguf(exe):
    import gguf
    from test_gguf import walk, build_corrupt_base
    base = os.path.join(TMP, "gguf_base.gguf")
    build_corrupt_base(base)
    good = open(base, "rb").read()
    kvs, tensors, _ = walk(good)

    def patch(off, fmt, val, buf=None):
        b = bytearray(buf or good)
        struct.pack_into(fmt, b, off, val)
        return bytes(b)

    def s(x):
        return struct.pack("<Q", len(x)) + x
    tok, al, arch = kvs["tokenizer.ggml.tokens"], kvs["general.alignment"], kvs["general.architecture"]
    ta, tb, tc = tensors["ta"], tensors["tb"], tensors["tc"]
    dup_key = bytearray(good)
    dup_key[kvs["k.b"]["len_off"] + 10] = ord("a")
    dup_name = bytearray(good)
    dup_name[tb["name_off"] + 9] = ord("a")
    bad_name = bytearray(good)
    bad_name[tb["name_off"] + 8] = 0xFF
    bad_key = bytearray(good)
    bad_key[kvs["k.a"]["len_off"] + 8] = 0xFF
    bad_value = bytearray(good)
    bad_value[arch["val_off"] + 8] = 0xFF
    nested = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + s(b"n") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQi", 5, 1, 7)
    five = os.path.join(TMP, "five.gguf")
    w = gguf.GGUFWriter(five, "llama")
    w.add_tensor("t5", np.ones((1, 1, 1, 2, 3), dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    long = os.path.join(TMP, "long.gguf")
    w = gguf.GGUFWriter(long, "llama")
    w.add_tensor("t" * 64, np.ones(4, dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    be = os.path.join(TMP, "be.gguf")
    w = gguf.GGUFWriter(be, "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("k.a", 1)
    w.add_tensor("t", np.arange(4, dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    ggml = "ggml refuses it"  # the reason when only ggml refuses
    cases = [  # name, bytes, what a refusal names, (our verdict, why) when the gguf package alone would differ
        ("valid (alignment 64, Q4_0, F32, Q6_K)", good, (), None),
        ("version 2", patch(4, "<I", 2), (), None),
        ("version 1", patch(4, "<I", 1), ("version 1",), None),
        ("version 4", patch(4, "<I", 4), ("version 4",), None),
        ("tensor count 2^63", patch(8, "<Q", 2**63), ("tensor count",), None),
        ("metadata count 2^40", patch(16, "<Q", 2**40), ("metadata count",), None),
        ("one key more than there is", patch(16, "<Q", len(kvs) + 1), (), None),
        ("key length 2^64-1", patch(24, "<Q", 2**64 - 1), ("key #0",), None),
        ("string length 2^63", patch(arch["val_off"], "<Q", 2**63), ("general.architecture",), None),
        ("unknown value type 99", patch(kvs["k.a"]["type_off"], "<I", 99), ("k.a", "99"), None),
        ("string array count 2^61", patch(tok["count_off"], "<Q", 2**61), ("tokenizer.ggml.tokens",), None),
        ("array of unknown type", patch(tok["elem_off"], "<I", 13), ("tokenizer.ggml.tokens",), None),
        ("general.alignment int32", patch(al["type_off"], "<I", 5), ("general.alignment",), None),
        ("unknown tensor type 4", patch(tb["type_off"], "<I", 4), ("tb",), None),
        ("tensor offset past the end", patch(tb["offset_off"], "<Q", 2**40), ("tb", "past end"), None),
        ("row not a multiple of the block", patch(ta["ne_off"], "<Q", 33), ("ta", "block"), None),
        ("dimensions overflow", patch(tb["ne_off"], "<Q", 2**62), ("tb",), None),
        ("a tensor name given twice", bytes(dup_name), ("ta", "duplicate"), None),
        ("tensor name not UTF-8", bytes(bad_name), ("tensor #1", "UTF-8"), None),
        ("key not UTF-8", bytes(bad_key), ("key #2", "UTF-8"), None),
        ("string value not UTF-8", bytes(bad_value), (), ("accept", "values are bytes to repo (a tokenizer's tokens are checked when used)")),
        ("bytes after the data", good + b"xyz", (), None),
        ("empty file", b"", ("empty",), None),
        ("big-endian", open(be, "rb").read(), ("big-endian",), ("refuse", ggml + " on little-endian machines")),
        ("general.alignment 48", patch(al["val_off"], "<I", 48), ("general.alignment",), ("refuse", ggml + ": not a power of 2")),
        ("general.alignment 0", patch(al["val_off"], "<I", 0), ("general.alignment",), ("refuse", ggml + " (gguf's reader divides by it)")),
        ("a key given twice", bytes(dup_key), ("k.a", "duplicate"), ("refuse", ggml + "; gguf warns and keeps both")),
        ("nested arrays", nested, ("'n'",), ("refuse", ggml)),
        ("tensor offset not aligned", patch(tb["offset_off"], "<Q", tb["offset"] + 1), ("tb", "alignment"), ("refuse", ggml)),
        ("tensor data overlapping another's", patch(tb["offset_off"], "<Q", ta["offset"]), ("tb", "offset"), ("refuse", ggml + ": tensors follow one another")),
        ("5 dimensions", open(five, "rb").read(), ("t5", "dimensions"), ("refuse", ggml + ": at most 4")),
        ("tensor name of 64 bytes", open(long, "rb").read(), ("64",), ("refuse", ggml + ": names under 64 bytes")),
    ]
    for name, data, about, d in cases:
        p = write(f"gguf/{len(table)}.gguf", data)
        ref = gguf_ref(p)
        case("GGUF", name, ref, gguf_ours(exe, p), about, differ=d if d and d[0] != ref[0] else None)
    # non-finite weights and the llama hyper-parameters: the gguf package reads these files; repo refuses
    # them as the task wants, naming the tensor or key
    def llama_file(name, **over):
        p = os.path.join(TMP, f"gguf/{name}.gguf")
        w = gguf.GGUFWriter(p, "llama")
        kv = dict(block_count=1, embedding_length=8, feed_forward_length=16, head_count=2, context_length=16,
                  rope_freq_base=10000.0, layer_norm_rms_eps=1e-5)
        kv.update(over.pop("kv", {}))
        for k, v in kv.items():
            getattr(w, "add_" + k)(v)
        w.add_token_list(["a", "b", "c"])
        emb = np.ones((3, 8), dtype=np.float32)
        if over.get("nan"):
            emb[1, 2] = np.nan
        w.add_tensor("token_embd.weight", emb)
        w.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
        w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
        return p
    for name, p, about, cmd in [
        ("NaN in token_embd.weight", llama_file("nan", nan=True), ("token_embd.weight", "element 10 is NaN"), "f32"),
        ("rope.freq_base 0", llama_file("rope0", kv=dict(rope_freq_base=0.0)), ("llama.rope.freq_base",), "config"),
        ("rope.freq_base -1", llama_file("rope_neg", kv=dict(rope_freq_base=-1.0)), ("llama.rope.freq_base",), "config"),
        ("negative rms epsilon", llama_file("eps", kv=dict(layer_norm_rms_eps=-1e-5)), ("layer_norm_rms_epsilon",), "config"),
        ("block_count 10^9", llama_file("blocks", kv=dict(block_count=10**9)), ("llama.block_count",), "config"),
        ("embedding_length 2^31-1", llama_file("wide", kv=dict(embedding_length=2**31 - 1, head_count=1)), ("llama.embedding_length",), "config"),
        ("context_length 2^32-1", llama_file("ctx", kv=dict(context_length=2**32 - 1)), ("llama.context_length",), "config"),
    ]:
        rc, _, err = run([exe["gguf"], cmd, p])
        case("GGUF", name, gguf_ref(p), ("refuse", err, p) if rc else ("accept", None, p), about,
             differ=("refuse", "refused when read, naming the " + ("tensor" if cmd == "f32" else "key")))
    p = llama_file("ok")
    rc, out, err = run([exe["gguf"], "config", p])
    report(rc == 0 and json.loads(out)["n_embd"] == 8, "GGUF: the llama file these cases change reads (control)", err)


def main():
    exe = build()
    test_safetensors(exe)
    test_shards(exe)
    test_config(exe)
    test_jsonl(exe)
    test_tokenizer_json(exe)
    test_vocab_merges(exe)
    test_gguf(exe)
    if "--table" in sys.argv:
        print("\n| format | case | reference | repo | note |\n|---|---|---|---|---|")
        for row in table:
            print("| " + " | ".join(row) + " |")
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return failed != 0


if __name__ == "__main__":
    sys.exit(main())
