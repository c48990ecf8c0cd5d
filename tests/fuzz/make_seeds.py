"""Writes the small seed corpora of tests/fuzz/seeds/ (committed; rerun to regenerate).
Python's standard library only: every file is built byte by byte here."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(tensors, metadata=None, pad=0):
    """tensors: [(name, dtype, shape, raw bytes)] packed in order"""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(h)) + h + data


f32 = lambda *xs: struct.pack(f"<{len(xs)}f", *xs)
put("safetensors", "f32_f16_bf16", safetensors([("w", "F32", [2, 2], f32(1, 2, 3, 4)), ("h", "F16", [2], b"\x00\x3c\x00\xc0"),
                                                ("b", "BF16", [1], b"\x80\x3f")], {"format": "pt"}, pad=5))
put("safetensors", "empty_and_int", safetensors([("z", "F32", [0, 3], b""), ("i", "I32", [2], b"\1\0\0\0\2\0\0\0"),
                                                 ("u", "U8", [3], b"abc")]))
put("safetensors", "no_tensors", safetensors([]))

put("config", "gpt2", json.dumps({"model_type": "gpt2", "vocab_size": 257, "n_positions": 32, "n_embd": 16, "n_layer": 2,
                                   "n_head": 2, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}))
put("config", "llama", json.dumps({"model_type": "llama", "vocab_size": 300, "hidden_size": 24, "intermediate_size": 40,
                                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                                    "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                                    "tie_word_embeddings": False, "eos_token_id": [2, 3], "rope_scaling": {"type": "default"}}))

put("index", "ok", json.dumps({"metadata": {"total_size": 24}, "weight_map": {"x": "a.safetensors", "z": "b.safetensors"}}))
put("index", "y_twice", json.dumps({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}}))


def gg_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, align=32):
    """kvs: [(key, type, value)] with value packed by the caller; tensors: [(name, ggml type, ne, raw)]"""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, raw in kvs:
        out += gg_str(key) + struct.pack("<I", t) + raw
    offset, blobs = 0, b""
    for name, t, ne, raw in tensors:
        out += gg_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", t, offset)
        pad = (-len(raw)) % align
        blobs += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * ((-len(out)) % align)
    return out + blobs


def arr(elem_type, items):
    if elem_type == 8:
        return struct.pack("<IQ", 8, len(items)) + b"".join(gg_str(x) for x in items)
    fmt = {4: "I", 5: "i", 6: "f"}[elem_type]
    return struct.pack("<IQ", elem_type, len(items)) + struct.pack(f"<{len(items)}{fmt}", *items)


u32 = lambda v: struct.pack("<I", v)
tokens = ["a", "b", "ab", "\u0120", "\u0120ab", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
tok_kvs = [("tokenizer.ggml.model", 8, gg_str("gpt2")), ("tokenizer.ggml.pre", 8, gg_str("gpt-2")),
           ("tokenizer.ggml.tokens", 9, arr(8, tokens)), ("tokenizer.ggml.merges", 9, arr(8, ["a b", "\u0120 ab"])),
           ("tokenizer.ggml.token_type", 9, arr(5, [1, 1, 1, 1, 1, 3, 3, 3])),
           ("tokenizer.ggml.eos_token_id", 4, u32(7)), ("tokenizer.ggml.bos_token_id", 4, u32(7)),
           ("tokenizer.chat_template", 8, gg_str("{{ messages }}"))]
llama_kvs = [("general.architecture", 8, gg_str("llama")), ("llama.block_count", 4, u32(1)),
             ("llama.embedding_length", 4, u32(32)), ("llama.feed_forward_length", 4, u32(64)),
             ("llama.attention.head_count", 4, u32(2)), ("llama.attention.head_count_kv", 4, u32(1)),
             ("llama.context_length", 4, u32(16)), ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
             ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)), ("general.alignment", 4, u32(32))]
q8_block = struct.pack("<e", 0.5) + bytes(range(32))
q4k_block = struct.pack("<ee", 0.25, 0.125) + bytes(range(12)) + bytes(range(128))
tens = [("token_embd.weight", 0, [32, 8], f32(*[i / 10 for i in range(256)])),
        ("blk.0.attn_norm.weight", 1, [32], struct.pack("<32e", *[1.0] * 32)),
        ("blk.0.attn_q.weight", 8, [32, 2], q8_block * 2),
        ("blk.0.ffn_up.weight", 12, [256, 1], q4k_block)]
put("gguf", "llama", gguf(llama_kvs + tok_kvs, tens))
put("gguf", "meta_only", gguf([("e.str", 8, gg_str("")), ("e.arr", 9, arr(5, []))], []))
put("gguf_tokenizer", "gpt2", gguf(tok_kvs, []))
put("gguf_tokenizer", "smollm", gguf([(k, t, gg_str("smollm") if k == "tokenizer.ggml.pre" else v) for k, t, v in tok_kvs], []))

put("pairs", "ids", '{"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "score": 0.5}\n'
                    '\n{"prompt_ids":[7],"chosen_ids":[8,9],"rejected_ids":[10]}\n')
put("pairs", "text", '{"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}\n'
                     '{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], '
                     '"chosen": [{"role": "assistant", "content": "hello"}], "rejected": "go away"}\n')
put("pairs", "conversation", json.dumps({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                                         "rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "c"}]}) + "\r\n")
put("pairs", "prompts", '{"prompt": "only a prompt"}\n{"prompt_ids": [5, 6]}\n')

# REPOPAIR without its magic (fuzz_repopair.c adds it): version 1, vocabulary 1000, 2 pairs, 8 ids
body = struct.pack("<IIQQ", 1, 1000, 2, 8)
body += struct.pack("<3i", 1, 1, 1) + struct.pack("<3i", 5, 6, 7)
body += struct.pack("<3i", 2, 2, 1) + struct.pack("<5i", 1, 2, 3, 4, 999)
put("repopair", "two_pairs", body)


def byte_level():
    cps, n = [], 0
    for b in range(256):
        keep = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        cps.append(b if keep else 256 + n)
        n += not keep
    return [chr(c) for c in cps]


BL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
vocab = {c: i for i, c in enumerate(byte_level())}
for w in ["th", "the", "\u0120the", "in", "ing", "12"]:
    vocab[w] = len(vocab)
merges = ["t h", "th e", "\u0120 the", "i n", "in g", "1 2"]
added = [{"id": len(vocab), "content": "<|im_start|>", "single_word": False, "lstrip": False, "rstrip": False,
          "normalized": False, "special": True},
         {"id": len(vocab) + 1, "content": "<tool>", "single_word": True, "lstrip": True, "rstrip": True,
          "normalized": True, "special": False}]


def tokenizer_json(pre, merges_form):
    return json.dumps({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                       "pre_tokenizer": pre, "post_processor": BL, "decoder": BL,
                       "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                                 "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                                 "vocab": vocab, "merges": merges_form}})


put("tokenizer_json", "gpt2", tokenizer_json(BL, merges))
put("tokenizer_json", "smollm_pairs", tokenizer_json({"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True}, BL]}, [m.split(" ") for m in merges]))
LLAMA3 = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
          "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
put("tokenizer_json", "llama3", tokenizer_json({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
    dict(BL, use_regex=False)]}, merges))

put("vocab_merges", "gpt2", json.dumps(vocab).encode() + b"\0" + ("#version: 0.2\n" + "\n".join(merges) + "\n").encode())

for i, text in enumerate([b"Hello world, it's 2024! ", b"  lots   of\tspace\n\n\r\n", "caf\u00e9 na\u00efve \u2713 1234567".encode(),
                          b"<|im_start|>user\nhi<|im_end|>", b"\xff\xfe bad \xc3 utf8 \xe2\x82", b"'s 't 're 've 'm 'll 'd THE"]):
    put("encode", f"text{i}", bytes([i % 3]) + text)
print("seeds written to", OUT, file=sys.stderr)
