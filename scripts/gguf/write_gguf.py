#!/usr/bin/env python3
"""Test GGUF files for tinyllm's GGUF reader (tests/io/test_gguf.cpp, tests/engine/test_gguf_parity.cpp).

    write_gguf.py model CHECKPOINT_DIR OUT.gguf [--type f32|f16|bf16|q4_0|..|q6_K|mixed|mixed3] [--decoded] [--split N]
        A hub-layout Qwen2 / Qwen3 / Llama checkpoint as llama.cpp's converter lays it out:
        its tensor names, row-major shapes stored innermost first, Llama's q / k rows of each
        head interleaved (the converter's rotary order), Llama 3.1's rope scaling as the
        rope_freqs tensor, and the tokenizer (tokenizer.json) as tokenizer.ggml.* metadata
        when the checkpoint has one. Norms and biases stay f32. --decoded: the same file with
        each block-quantized weight stored as the f32 values its blocks stand for (its twin).
        --random-blocks KIND: 2-D weights as random blocks of a quantized type instead (for
        comparing block decoding with llama.cpp: docs/measurements/gguf-2026-12-05/).
    write_gguf.py blocks OUT.gguf OUT_EXPECTED.f32 [--seed N]
        One tensor per block-quantized type (q4_0, q4_1, q5_0, q5_1, q8_0, q3_K, q4_K, q5_K, q6_K,
        iq4_nl, iq4_xs)
        of random blocks with tame scales, and the floats they stand for, decoded here from
        ggml's block layouts (all tensors in name order, little-endian f32).

Written from the GGUF description (ggml's docs/gguf.md) and ggml's block structs; NumPy only.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# Metadata value types and the ggml tensor types used here.
U8, I8, U16, I16, U32, I32, F32V, BOOL, STR, ARR, U64, I64, F64 = range(13)
GT = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
      "q3_K": 11, "q4_K": 12, "q5_K": 13, "q6_K": 14, "iq4_nl": 20, "iq4_xs": 23, "bf16": 30}
# The values of iq4_nl's and iq4_xs's 4-bit indices (ggml's kvalues_iq4nl).
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []  # (name, row-major shape, type id, bytes)

    def add(self, key, vtype, value, etype=None):
        self.kv.append((key, vtype, value, etype))

    def tensor(self, name, shape, gtype, data):
        self.tensors.append((name, tuple(shape), gtype, data))

    @staticmethod
    def _s(text):
        b = text.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value, etype):
        fmt = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32V: "f", BOOL: "?",
               U64: "Q", I64: "q", F64: "d"}
        if vtype == STR:
            return self._s(value)
        if vtype == ARR:
            head = struct.pack("<IQ", etype, len(value))
            if etype == STR:
                return head + b"".join(self._s(v) for v in value)
            return head + struct.pack("<%d%s" % (len(value), fmt[etype]), *value)
        return struct.pack("<" + fmt[vtype], value)

    def write(self, path, alignment=32, split=1):
        """One file, or with split > 1 llama.cpp's gguf-split layout: PATH's stem + -0000K-of-0000N.gguf,
        the first part with all the metadata, every part with split.no / split.count (u16) and
        split.tensors.count (i32), the tensors dealt out in order."""
        if split <= 1:
            return self._write(path, self.kv, self.tensors, alignment)
        stem = path[:-5] if path.endswith(".gguf") else path
        per = (len(self.tensors) + split - 1) // split
        for i in range(split):
            kv = (self.kv if i == 0 else []) + [("split.no", U16, i, None), ("split.count", U16, split, None),
                                                ("split.tensors.count", I32, len(self.tensors), None)]
            self._write("%s-%05d-of-%05d.gguf" % (stem, i + 1, split), kv, self.tensors[i * per:(i + 1) * per],
                        alignment)

    def _write(self, path, kvs, tensors, alignment):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
        for key, vtype, value, etype in kvs:
            out += self._s(key) + struct.pack("<I", vtype) + self._value(vtype, value, etype)
        offset = 0
        placed = []
        for name, shape, gtype, data in tensors:
            out += self._s(name) + struct.pack("<I", len(shape))
            out += b"".join(struct.pack("<Q", d) for d in reversed(shape))  # ne[0] innermost
            out += struct.pack("<IQ", gtype, offset)
            placed.append((offset, data))
            offset += (len(data) + alignment - 1) // alignment * alignment
        out += b"\0" * (-len(out) % alignment)
        base = len(out)
        for off, data in placed:
            out += b"\0" * (base + off - len(out)) + data
        with open(path, "wb") as f:
            f.write(out)


# ---- checkpoints ------------------------------------------------------------------
def read_safetensors(folder):
    tensors = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        raw = open(os.path.join(folder, fn), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        for name, h in header.items():
            if name == "__metadata__":
                continue
            b, e = h["data_offsets"]
            buf = np.frombuffer(raw[8 + n + b: 8 + n + e], dtype=np.uint8)
            if h["dtype"] == "BF16":
                x = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
            elif h["dtype"] == "F16":
                x = buf.view("<f2").astype(np.float32)
            elif h["dtype"] == "F32":
                x = buf.view("<f4").copy()
            else:
                sys.exit(f"{fn}: {name} is {h['dtype']}, not a float type")
            tensors[name] = x.reshape(h["shape"])
    return tensors


def encode_float(x, kind):
    if kind == "f32":
        return x.astype("<f4").tobytes()
    if kind == "f16":
        return x.astype("<f2").tobytes()
    if kind == "bf16":  # round to nearest even
        u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
    raise ValueError(kind)


def interleave_rotary(w, heads):
    """HF's rotary order (pairs i, i + d/2) -> llama.cpp's converter's (pairs 2i, 2i + 1)."""
    rows = w.shape[0]
    d = rows // heads
    return w.reshape(heads, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(cfg, head_dim):
    s = cfg["rope_scaling"]
    factor, low, high = s["factor"], s.get("low_freq_factor", 1.0), s.get("high_freq_factor", 4.0)
    orig = s["original_max_position_embeddings"]
    out = []
    for i in range(head_dim // 2):
        freq = 1.0 / cfg.get("rope_theta", 10000.0) ** (2.0 * i / head_dim)
        wavelen = 2 * np.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(freq / ((1 - smooth) * freq / factor + smooth * freq))
    return np.array(out, np.float32)


def add_tokenizer(w, folder, cfg):
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.exists(path):
        return
    tj = json.load(open(path, encoding="utf-8"))
    tc_path = os.path.join(folder, "tokenizer_config.json")
    tc = json.load(open(tc_path, encoding="utf-8")) if os.path.exists(tc_path) else {}
    n = cfg["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [5] * n  # unused
    for tok, i in tj["model"]["vocab"].items():
        tokens[i], types[i] = tok, 1
    for a in tj.get("added_tokens", []):
        tokens[a["id"]], types[a["id"]] = a["content"], 3 if a.get("special") else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    ids = {t: i for i, t in enumerate(tokens)}

    def token_id(key):
        v = tc.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        return ids.get(v) if isinstance(v, str) else None

    w.add("tokenizer.ggml.model", STR, "gpt2")
    w.add("tokenizer.ggml.pre", STR, "qwen2" if cfg["model_type"].startswith("qwen") else "llama-bpe")
    w.add("tokenizer.ggml.tokens", ARR, tokens, STR)
    w.add("tokenizer.ggml.token_type", ARR, types, I32)
    w.add("tokenizer.ggml.merges", ARR, merges, STR)
    for key, name in (("eos_token", "eos_token_id"), ("bos_token", "bos_token_id"), ("pad_token", "padding_token_id")):
        if token_id(key) is not None:
            w.add("tokenizer.ggml." + name, U32, token_id(key))
    w.add("tokenizer.ggml.add_bos_token", BOOL, False)
    if isinstance(tc.get("chat_template"), str):
        w.add("tokenizer.chat_template", STR, tc["chat_template"])


def write_model(folder, out, kind, random_blocks=None, decoded=False, seed=1, split=1):
    rng = np.random.default_rng(seed)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model_type = cfg["model_type"]
    arch = {"qwen2_moe": "qwen2moe", "qwen3_moe": "qwen3moe"}.get(model_type, model_type)
    assert arch in ("qwen2", "qwen3", "llama", "qwen2moe", "qwen3moe"), arch
    st = read_safetensors(folder)
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    w = Writer()
    w.add("general.architecture", STR, arch)
    w.add("general.alignment", U32, 32)
    for key, v in (("block_count", cfg["num_hidden_layers"]), ("context_length", cfg["max_position_embeddings"]),
                   ("embedding_length", cfg["hidden_size"]), ("feed_forward_length", cfg["intermediate_size"]),
                   ("attention.head_count", heads), ("attention.head_count_kv", kv_heads),
                   ("attention.key_length", head_dim), ("attention.value_length", head_dim),
                   ("rope.dimension_count", head_dim)):
        w.add(f"{arch}.{key}", U32, v)
    if arch.endswith("moe"):  # llama.cpp's qwen2moe / qwen3moe keys
        w.add(f"{arch}.expert_count", U32, cfg["num_experts"])
        w.add(f"{arch}.expert_used_count", U32, cfg["num_experts_per_tok"])
        w.add(f"{arch}.expert_feed_forward_length", U32, cfg["moe_intermediate_size"])
        if cfg.get("shared_expert_intermediate_size"):
            w.add(f"{arch}.expert_shared_feed_forward_length", U32, cfg["shared_expert_intermediate_size"])
    w.add(f"{arch}.rope.freq_base", F32V, float(cfg.get("rope_theta", 10000.0)))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", F32V, float(cfg["rms_norm_eps"]))
    add_tokenizer(w, folder, cfg)
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "llama3":
        w.tensor("rope_freqs.weight", (head_dim // 2,), GT["f32"], llama3_rope_freqs(cfg, head_dim).tobytes())

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                 "mlp.down_proj.weight": "ffn_down.weight"}
    for p, g in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"), ("o_proj", "attn_output")):
        for s in ("weight", "bias"):
            per_layer[f"self_attn.{p}.{s}"] = f"{g}.{s}"
    per_layer.update({"mlp.gate.weight": "ffn_gate_inp.weight",
                      "mlp.shared_expert.gate_proj.weight": "ffn_gate_shexp.weight",
                      "mlp.shared_expert.up_proj.weight": "ffn_up_shexp.weight",
                      "mlp.shared_expert.down_proj.weight": "ffn_down_shexp.weight",
                      "mlp.shared_expert_gate.weight": "ffn_gate_inp_shexp.weight"})
    for l in range(cfg["num_hidden_layers"]):
        for hf, g in per_layer.items():
            names[f"model.layers.{l}.{hf}"] = f"blk.{l}.{g}"
    # Experts stacked per layer as llama.cpp's converter does: [E, rows, cols] as ffn_*_exps.
    for l in range(cfg["num_hidden_layers"]):
        for part in ("gate", "up", "down"):
            keys = [f"model.layers.{l}.mlp.experts.{e}.{part}_proj.weight" for e in range(cfg.get("num_experts", 0))]
            if keys and all(k in st for k in keys):
                hf = f"model.layers.{l}.mlp.experts.{part}_proj.weight"
                st[hf] = np.stack([st.pop(k) for k in keys])
                names[hf] = f"blk.{l}.ffn_{part}_exps.weight"
        sg = f"model.layers.{l}.mlp.shared_expert_gate.weight"
        if sg in st:
            st[sg] = st[sg].reshape(-1)  # [1, hidden] -> [hidden]
    if cfg.get("tie_word_embeddings"):
        st.pop("lm_head.weight", None)
    for hf, x in sorted(st.items()):
        if hf not in names:
            sys.exit(f"{hf}: no GGUF name")
        if arch == "llama" and (".q_proj." in hf or ".k_proj." in hf):
            x = interleave_rotary(x, heads if ".q_proj." in hf else kv_heads)
        t = kind if x.ndim >= 2 and not hf.endswith(".mlp.gate.weight") else "f32"  # llama.cpp keeps routers f32
        if t == "mixed":  # as llama.cpp's Q4_K_M leans: q6_K for v, down and the output
            t = "q6_K" if any(p in hf for p in (".v_proj.", ".down_proj.", "lm_head.")) else "q4_K"
        if t == "mixed3":  # as llama.cpp's Q3_K_M leans: q4_K for v, o and down, q6_K for the output
            t = "q6_K" if "lm_head." in hf else "q4_K" if any(
                p in hf for p in (".v_proj.", ".o_proj.", ".down_proj.")) else "q3_K"
        if (t.endswith("K") or t == "iq4_xs") and x.shape[-1] % 256:  # llama.cpp's fallbacks for other rows
            t = {"q3_K": "iq4_nl", "iq4_xs": "iq4_nl", "q4_K": "q5_0", "q5_K": "q5_1", "q6_K": "q8_0"}[t]
        if t[0] in "qi" and x.shape[-1] % 32:
            t = "f32"
        if random_blocks and x.ndim == 2 and x.shape[-1] % 256 == 0:
            # Scales a model's activations survive: weights of a few tenths at most.
            t = random_blocks
            raw, vals = make_blocks(t, x.size // block_of(t), rng, 0.05)
        elif t[0] in "qi":
            raw, vals = encode_blocks(x, t)
        else:
            w.tensor(names[hf], x.shape, GT[t], encode_float(x, t))
            continue
        if decoded:  # the floats the blocks stand for, as f32
            w.tensor(names[hf], x.shape, GT["f32"], vals.astype("<f4").tobytes())
        else:
            w.tensor(names[hf], x.shape, GT[t], bytes(raw))
    w.write(out, split=split)


# ---- quantized blocks ---------------------------------------------------------------
def h(x):
    return np.asarray(x, np.float16)


def f(x):
    return np.asarray(x, np.float32)


def pack_q6_K(d, scales, q):
    """Q6_K blocks from f16 d [n], int8 scales [n, 16] and 6-bit codes q [n, 256]: (bytes, floats)."""
    n = q.shape[0]
    ql = np.zeros((n, 128), np.uint8)
    qh = np.zeros((n, 64), np.uint8)
    vals = np.zeros((n, 256), np.float32)
    df = f(d)
    for half in range(2):  # two halves of 128 values
        base = q[:, half * 128: half * 128 + 128]
        a, b, c_, e = base[:, 0:32], base[:, 32:64], base[:, 64:96], base[:, 96:128]
        ql[:, half * 64: half * 64 + 32] = (a & 15) | ((c_ & 15) << 4)
        ql[:, half * 64 + 32: half * 64 + 64] = (b & 15) | ((e & 15) << 4)
        qh[:, half * 32: half * 32 + 32] = (a >> 4) | ((b >> 4) << 2) | ((c_ >> 4) << 4) | ((e >> 4) << 6)
        for k, part in enumerate((a, b, c_, e)):
            for sub in range(2):  # 16 values per scale
                sc = scales[:, half * 8 + 2 * k + sub]
                cols = slice(half * 128 + 32 * k + 16 * sub, half * 128 + 32 * k + 16 * sub + 16)
                vals[:, cols] = f(df * f(sc))[:, None] * f(f(part[:, 16 * sub: 16 * sub + 16]) - 32)
    return np.concatenate([ql, qh, scales.view(np.uint8), d.view(np.uint8).reshape(n, 2)], 1), vals


def encode_16(x, s_div, sc_lo, sc_hi, q_lo, q_hi):
    """Float rows (length a multiple of 256) in the form of the K-quants with an integer scale per
    16 values and no mins (q3_K, q6_K): f16 d per 256 values, scales in [sc_lo, sc_hi] per 16
    (each 16's largest magnitude over s_div, in steps of d) and codes q - q_lo for q in [q_lo,
    q_hi]: (d [n], scales [n, 16], codes [n, 256]). A plain max-abs encoder, not ggml's search."""
    b = x.astype(np.float32).reshape(-1, 256)
    sub = b.reshape(-1, 16, 16)
    s = np.abs(sub).max(axis=2) / s_div
    d = (s.max(axis=1) / sc_hi).astype(np.float16)
    df = d.astype(np.float32)
    sc = np.where(df[:, None] > 0, np.rint(s / np.where(df > 0, df, 1)[:, None]), 0).clip(sc_lo, sc_hi)
    step = df[:, None] * sc.astype(np.float32)
    q = np.where(step[:, :, None] > 0, np.rint(sub / np.where(step > 0, step, 1)[:, :, None]), 0)
    return d, sc.astype(np.int64), (q.clip(q_lo, q_hi) - q_lo).astype(np.uint8).reshape(-1, 256)


def encode_q6_K(x):
    d, sc, q = encode_16(x, 31, -128, 127, -32, 31)
    raw, vals = pack_q6_K(d, sc.astype(np.int8), q)
    return raw.tobytes(), vals


def pack_q3_K(d, scales, q):
    """Q3_K blocks from f16 d [n], 6-bit scales [n, 16] (the stored value, s - 32 applied when
    decoding) and 3-bit codes q [n, 256] (the value is q - 4): (bytes, floats). Element
    128 n + 32 j + l: low bit pair j of byte 32 n + l of qs, third bit 4 n + j of byte l of hmask,
    scale of sub-block 8 n + 2 j + l // 16."""
    count = q.shape[0]
    hmask = np.zeros((count, 32), np.uint8)
    qs = np.zeros((count, 64), np.uint8)
    vals = np.zeros((count, 256), np.float32)
    q = q.astype(np.uint8)
    df = f(d)
    for n in range(2):
        for j in range(4):
            part = q[:, 128 * n + 32 * j: 128 * n + 32 * j + 32]
            qs[:, 32 * n: 32 * n + 32] |= ((part & 3) << (2 * j)).astype(np.uint8)
            hmask |= (((part >> 2) & 1) << (4 * n + j)).astype(np.uint8)
            for half in range(2):
                sc = scales[:, 8 * n + 2 * j + half].astype(np.int64) - 32
                cols = slice(128 * n + 32 * j + 16 * half, 128 * n + 32 * j + 16 * half + 16)
                vals[:, cols] = f(df * f(sc))[:, None] * f(f(part[:, 16 * half: 16 * half + 16]) - 4)
    sc = scales.astype(np.uint8)
    packed = np.zeros((count, 12), np.uint8)  # the inverse of ggml's unpacking of the 16 scales
    packed[:, 0:8] = (sc[:, 0:8] & 15) | ((sc[:, 8:16] & 15) << 4)
    for j in range(16):
        packed[:, 8 + j % 4] |= ((sc[:, j] >> 4) << (2 * (j // 4))).astype(np.uint8)
    return np.concatenate([hmask, qs, packed, d.view(np.uint8).reshape(count, 2)], 1), vals


def encode_q3_K(x):
    d, sc, q = encode_16(x, 4, -32, 31, -4, 3)  # the step of each 16: values in [-4, 3] steps
    raw, vals = pack_q3_K(d, sc + 32, q)
    return raw.tobytes(), vals


def pack_iq4(kind, d, ls, idx):
    """iq4_nl blocks (32 values) from f16 d [n] and indices [n, 32], or iq4_xs blocks (256) from
    f16 d [n], 6-bit group scales ls [n, 8] (the value is d (ls - 32)) and indices [n, 256]:
    (bytes, floats). Group g's bytes hold index j in the low nibble of byte j, j + 16 in the high."""
    count = idx.shape[0]
    groups = idx.shape[1] // 32
    idx = idx.astype(np.uint8).reshape(count, groups, 32)
    qs = (idx[:, :, :16] | (idx[:, :, 16:] << 4)).reshape(count, 16 * groups)
    df = f(d)
    if kind == "iq4_nl":
        vals = df[:, None] * IQ4_VALUES[idx.reshape(count, 32)]
        return np.concatenate([d.view(np.uint8).reshape(count, 2), qs], 1), f(vals)
    ls = ls.astype(np.int64)
    high = np.zeros(count, np.uint16)
    for g in range(8):
        high |= (((ls[:, g] >> 4) & 3) << (2 * g)).astype(np.uint16)
    low = ((ls[:, 0::2] & 15) | ((ls[:, 1::2] & 15) << 4)).astype(np.uint8)
    dl = f(df[:, None] * f(ls - 32))
    vals = (dl[:, :, None] * IQ4_VALUES[idx]).reshape(count, 256)
    raw = np.concatenate([d.view(np.uint8).reshape(count, 2), high.astype("<u2").view(np.uint8).reshape(count, 2),
                          low, qs], 1)
    return raw, f(vals)


def encode_iq4(x, kind):
    """Float rows as iq4_nl / iq4_xs: a scale from each group's largest magnitude and the nearest
    table value per element (a plain encoder, not ggml's search)."""
    per = 32 if kind == "iq4_nl" else 256
    b = x.astype(np.float32).reshape(-1, per)
    sub = b.reshape(b.shape[0], -1, 32)
    s = np.abs(sub).max(axis=2) / 127
    if kind == "iq4_nl":
        d = h(s[:, 0])
        ls = None
        step = f(d)[:, None]
    else:
        d = h(s.max(axis=1) / 31)
        ls = (np.rint(safe_div(s, f(d)[:, None])).clip(0, 31) + 32).astype(np.int64)
        step = f(f(d)[:, None] * f(ls - 32))
    ratio = safe_div(sub, step[:, :, None])
    idx = np.abs(ratio[..., None] - IQ4_VALUES).argmin(axis=-1).reshape(b.shape[0], per)
    raw, vals = pack_iq4(kind, d, ls, idx)
    return raw.tobytes(), vals


def pack_simple(kind, d, m, q):
    """q4_0 / q4_1 / q5_0 / q5_1 / q8_0 blocks from f16 d [n], f16 m [n] (the _1 kinds) and codes
    q [n, 32] (q8_0: int8; else unsigned): (bytes [n, block bytes], floats [n, 32])."""
    n = q.shape[0]
    df, mf = f(d)[:, None], f(m)[:, None]
    if kind == "q8_0":
        q = q.astype(np.int8)
        return np.concatenate([d.view(np.uint8).reshape(n, 2), q.view(np.uint8)], 1), f(q) * df
    five = kind.startswith("q5")
    q = q.astype(np.uint8)
    nib = (q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)
    parts = [d.view(np.uint8).reshape(n, 2)]
    if kind.endswith("_1"):
        parts.append(m.view(np.uint8).reshape(n, 2))
    if five:  # bit 4 of element j is bit j of a little-endian u32
        bits = (q >> 4).astype(np.uint64)
        qh = (bits << np.arange(32, dtype=np.uint64)).sum(axis=1).astype("<u4")
        parts.append(qh.view(np.uint8).reshape(n, 4))
    parts.append(nib)
    offset = 16 if kind == "q5_0" else 8 if kind == "q4_0" else 0
    vals = (f(q) - offset) * df + (mf if kind.endswith("_1") else 0)
    return np.concatenate(parts, 1), f(vals)


def pack_k(kind, d, dmin, sc, mn, q):
    """q4_K / q5_K blocks from f16 d, dmin [n], 6-bit scales and mins [n, 8] and codes [n, 256]."""
    n = q.shape[0]
    five = kind == "q5_K"
    packed = np.zeros((n, 12), np.uint8)  # the inverse of get_scale_min_k4
    packed[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 15) | ((mn[:, 4:8] & 15) << 4)
    q = q.astype(np.uint8)
    # 4 chunks of 64 values: 32 low nibbles then 32 high nibbles of the same 32 bytes.
    qs = np.zeros((n, 128), np.uint8)
    qh = np.zeros((n, 32), np.uint8)
    vals = np.zeros((n, 256), np.float32)
    df, dmf = f(d), f(dmin)
    for c in range(4):
        lo, hi = q[:, c * 64: c * 64 + 32], q[:, c * 64 + 32: c * 64 + 64]
        qs[:, c * 32: c * 32 + 32] = (lo & 15) | ((hi & 15) << 4)
        qh |= ((lo >> 4) << (2 * c)).astype(np.uint8) | ((hi >> 4) << (2 * c + 1)).astype(np.uint8)
        for half, part in ((0, lo), (1, hi)):
            j = 2 * c + half
            dj = f(df * f(sc[:, j]))[:, None]
            mj = f(dmf * f(mn[:, j]))[:, None]
            vals[:, c * 64 + 32 * half: c * 64 + 32 * half + 32] = f(dj * f(part)) - mj
    parts = [d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), packed]
    if five:
        parts.append(qh)
    parts.append(qs)
    return np.concatenate(parts, 1), vals


def make_blocks(kind, n, rng, scale=1.0):
    """Random blocks of `kind` with small scales (times `scale`): (bytes [n, block bytes], floats [n, block])."""
    if kind in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0"):
        d = h(rng.uniform(-0.05, 0.05, n) * scale)
        m = h(rng.uniform(-0.5, 0.5, n) * scale)
        if kind == "q8_0":
            return pack_simple(kind, d, m, rng.integers(-128, 128, (n, 32)))
        return pack_simple(kind, d, m, rng.integers(0, 32 if kind.startswith("q5") else 16, (n, 32)))
    if kind in ("q4_K", "q5_K"):
        d, dmin = h(rng.uniform(0, 0.01, n) * scale), h(rng.uniform(0, 0.01, n) * scale)
        sc = rng.integers(0, 64, (n, 8))
        mn = rng.integers(0, 64, (n, 8))
        q = rng.integers(0, 32 if kind == "q5_K" else 16, (n, 256))
        return pack_k(kind, d, dmin, sc, mn, q)
    if kind == "iq4_nl":
        return pack_iq4(kind, h(rng.uniform(-0.01, 0.01, n) * scale), None, rng.integers(0, 16, (n, 32)))
    if kind == "iq4_xs":
        return pack_iq4(kind, h(rng.uniform(-0.001, 0.001, n) * scale), rng.integers(0, 64, (n, 8)),
                        rng.integers(0, 16, (n, 256)))
    if kind == "q3_K":
        d = h(rng.uniform(-0.01, 0.01, n) * scale)
        return pack_q3_K(d, rng.integers(0, 64, (n, 16)), rng.integers(0, 8, (n, 256)))
    if kind == "q6_K":
        d = h(rng.uniform(0, 0.002, n) * scale)
        scales = rng.integers(-128, 128, (n, 16)).astype(np.int8)
        q = rng.integers(0, 64, (n, 256)).astype(np.uint8)
        return pack_q6_K(d, scales, q)
    raise ValueError(kind)


def block_of(kind):
    return 256 if kind.endswith("K") or kind == "iq4_xs" else 32


def safe_div(a, b):
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0)


def encode_blocks(x, kind):
    """Float rows (a multiple of the block) as `kind`, with plain encoders (not ggml's search):
    (bytes, the floats the blocks stand for, in x's shape)."""
    if kind in ("q3_K", "q6_K"):
        raw, vals = (encode_q3_K if kind == "q3_K" else encode_q6_K)(x)
        return raw, vals.reshape(x.shape)
    if kind.startswith("iq4"):
        raw, vals = encode_iq4(x, kind)
        return raw, vals.reshape(x.shape)
    per = 256 if kind.endswith("K") else 32
    b = x.astype(np.float32).reshape(-1, per)
    n = b.shape[0]
    if kind == "q8_0":
        d = h(np.abs(b).max(axis=1) / 127)
        q = np.rint(safe_div(b, f(d)[:, None])).clip(-127, 127)
        raw, vals = pack_simple(kind, d, h(np.zeros(n)), q)
    elif kind in ("q4_0", "q5_0"):  # d from the value of largest magnitude, sign included
        top = 8 if kind == "q4_0" else 16
        big = b[np.arange(n), np.abs(b).argmax(axis=1)]
        d = h(big / -top)
        q = np.rint(safe_div(b, f(d)[:, None]) + top).clip(0, 2 * top - 1)
        raw, vals = pack_simple(kind, d, h(np.zeros(n)), q)
    elif kind in ("q4_1", "q5_1"):
        levels = 15 if kind == "q4_1" else 31
        lo, hi = b.min(axis=1), b.max(axis=1)
        d, m = h((hi - lo) / levels), h(lo)
        q = np.rint(safe_div(b - f(m)[:, None], f(d)[:, None])).clip(0, levels)
        raw, vals = pack_simple(kind, d, m, q)
    else:  # q4_K / q5_K: per 32 values a 6-bit scale and min of the block's d and dmin
        levels = 15 if kind == "q4_K" else 31
        sub = b.reshape(n, 8, 32)
        lo = np.minimum(sub.min(axis=2), 0)
        step, mins = (sub.max(axis=2) - lo) / levels, -lo
        d, dmin = h(step.max(axis=1) / 63), h(mins.max(axis=1) / 63)
        sc = np.rint(safe_div(step, f(d)[:, None])).clip(0, 63).astype(np.int64)
        mn = np.rint(safe_div(mins, f(dmin)[:, None])).clip(0, 63).astype(np.int64)
        s_eff = f(f(d)[:, None] * f(sc))
        m_eff = f(f(dmin)[:, None] * f(mn))
        q = np.rint(safe_div(sub + m_eff[:, :, None], s_eff[:, :, None])).clip(0, levels).reshape(n, 256)
        raw, vals = pack_k(kind, d, dmin, sc, mn, q)
    return raw.tobytes(), vals.reshape(x.shape)


def write_blocks(out, expected, seed):
    rng = np.random.default_rng(seed)
    w = Writer()
    w.add("general.architecture", STR, "blocks")
    floats = []
    for kind in sorted(("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs")):
        per = block_of(kind)
        rows, cols = 3, 2 * 256
        raw, vals = make_blocks(kind, rows * cols // per, rng)
        w.tensor("t_" + kind, (rows, cols), GT[kind], raw.tobytes())
        floats.append(vals.reshape(-1))
    w.write(out)
    np.concatenate(floats).astype("<f4").tofile(expected)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("checkpoint")
    m.add_argument("out")
    m.add_argument("--type", default="f32", choices=sorted(GT) + ["mixed", "mixed3"],
                   help="2-D weights in this type (block types through plain encoders, not llama.cpp's; rows "
                        "the K-quants cannot take fall back as llama.cpp's do); mixed: q4_K, with v, down and "
                        "the output in q6_K; mixed3: q3_K, with v, o and down in q4_K and the output in q6_K")
    m.add_argument("--random-blocks", choices=sorted(k for k in GT if k[0] in "qi"),
                   help="2-D tensors with rows of 256k values become random blocks of this type (a model "
                        "that checks block decoding against another engine, not one that writes text)")
    m.add_argument("--decoded", action="store_true",
                   help="the floats the blocks of --type or --random-blocks stand for, stored as f32")
    m.add_argument("--split", type=int, default=1,
                   help="write N parts as llama.cpp's gguf-split does (OUT's stem + -0000K-of-0000N.gguf)")
    b = sub.add_parser("blocks")
    b.add_argument("out")
    b.add_argument("expected")
    b.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "model":
        write_model(a.checkpoint, a.out, a.type, a.random_blocks, a.decoded, split=a.split)
    else:
        write_blocks(a.out, a.expected, a.seed)


if __name__ == "__main__":
    main()
