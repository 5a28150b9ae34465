#!/usr/bin/python3
"""Random-weight checkpoints of real Qwen (and Llama) shapes, in the exact hub layout (bf16 safetensors),
for benchmarks. Needs only numpy (apt-get install python3-numpy).

    /usr/bin/python3 scripts/make_random_checkpoint.py qwen2.5-0.5b /tmp/qwen2.5-0.5b-random
    /usr/bin/python3 scripts/make_random_checkpoint.py --fp8 qwen2.5-0.5b /tmp/qwen2.5-0.5b-fp8
    /usr/bin/python3 scripts/make_random_checkpoint.py --list

--fp8 writes the projections (q/k/v/o, gate/up/down, experts) as Qwen's FP8 checkpoints do:
F8_E4M3 codes (the nearest e4m3 value of the same random weights) with an f32
weight_scale_inv per 128 x 128 block, and config.json's quantization_config.

The configs themselves live in bench/configs/<shape>/config.json (also usable with
`tinyllm bench --load-format dummy`, which needs no weights at all).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bench", "configs")


def tensor_shapes(cfg):
    H, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    arch = cfg["architectures"][0]
    qwen3 = arch.startswith("Qwen3")
    llama = arch.startswith("Llama")
    # Qwen2: q/k/v biases always; Qwen3 and Llama: q/k/v/o biases when attention_bias.
    bias = (not qwen3 and not llama) or cfg.get("attention_bias", False)
    out = [("model.embed_tokens.weight", (V, H)), ("model.norm.weight", (H,))]
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, H)))
    for l in range(L):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,))]
        a = p + "self_attn."
        out += [(a + "q_proj.weight", (nh * hd, H)), (a + "k_proj.weight", (nkv * hd, H)),
                (a + "v_proj.weight", (nkv * hd, H)), (a + "o_proj.weight", (H, nh * hd))]
        if bias:
            out += [(a + "q_proj.bias", (nh * hd,)), (a + "k_proj.bias", (nkv * hd,)), (a + "v_proj.bias", (nkv * hd,))]
        if (qwen3 or llama) and cfg.get("attention_bias", False):
            out.append((a + "o_proj.bias", (H,)))
        if qwen3:
            out += [(a + "q_norm.weight", (hd,)), (a + "k_norm.weight", (hd,))]
        m = p + "mlp."
        E = cfg.get("num_experts", 0)
        sparse = E > 0 and l not in cfg.get("mlp_only_layers", []) and (l + 1) % cfg.get("decoder_sparse_step", 1) == 0
        if sparse:
            I = cfg["moe_intermediate_size"]
            out.append((m + "gate.weight", (E, H)))
            for e in range(E):
                x = f"{m}experts.{e}."
                out += [(x + "gate_proj.weight", (I, H)), (x + "up_proj.weight", (I, H)), (x + "down_proj.weight", (H, I))]
            S = cfg.get("shared_expert_intermediate_size", 0)
            if S:
                out += [(m + "shared_expert.gate_proj.weight", (S, H)), (m + "shared_expert.up_proj.weight", (S, H)),
                        (m + "shared_expert.down_proj.weight", (H, S)), (m + "shared_expert_gate.weight", (1, H))]
        else:
            I = cfg["intermediate_size"]
            out += [(m + "gate_proj.weight", (I, H)), (m + "up_proj.weight", (I, H)), (m + "down_proj.weight", (H, I))]
    return out


def bf16_random(n, rng, scale, one_centered):
    x = rng.standard_normal(n, dtype=np.float32) * scale
    if one_centered:
        x += 1.0
    u = x.view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    return u.astype(np.uint16)


PROJ = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight",
        "up_proj.weight", "down_proj.weight")
BLOCK = 128


def e4m3_table():
    """The finite float8_e4m3fn values (sign, 4-bit exponent with bias 7, 3-bit mantissa;
    S.1111.111 is NaN), sorted, with their codes."""
    vals, codes = [], []
    for c in range(256):
        e, m = (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            continue
        v = m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
        vals.append(-v if c & 0x80 else v)
        codes.append(c)
    order = np.argsort(np.array(vals), kind="stable")
    return np.array(vals, dtype=np.float32)[order], np.array(codes, dtype=np.uint8)[order]


def fp8_blocks(w, table):
    """w [rows, cols] f32 -> (e4m3 codes [rows, cols] uint8, scales [ceil(rows/128), ceil(cols/128)] f32)."""
    vals, codes = table
    rows, cols = w.shape
    sr, sc = -(-rows // BLOCK), -(-cols // BLOCK)
    scale = np.ones((sr, sc), dtype=np.float32)
    q = np.empty((rows, cols), dtype=np.uint8)
    for i in range(sr):
        for j in range(sc):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            amax = float(np.abs(blk).max())
            s = np.float32(amax / 448.0) if amax > 0 else np.float32(1.0)
            scale[i, j] = s
            x = blk / s
            k = np.clip(np.searchsorted(vals, x), 1, len(vals) - 1)
            nearer_left = (x - vals[k - 1]) <= (vals[k] - x)
            q[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = np.where(nearer_left, codes[k - 1], codes[k])
    return q, scale


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--list":
        print("\n".join(sorted(os.listdir(CONFIGS))))
        return
    fp8 = len(sys.argv) >= 2 and sys.argv[1] == "--fp8"
    args = sys.argv[2:] if fp8 else sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    shape, out_dir = args
    src = os.path.join(CONFIGS, shape, "config.json")
    if not os.path.exists(src):
        sys.exit(f"unknown shape {shape}; known: {', '.join(sorted(os.listdir(CONFIGS)))}")
    cfg = json.load(open(src))
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(src, os.path.join(out_dir, "config.json"))
    gen = os.path.join(CONFIGS, shape, "generation_config.json")
    if os.path.exists(gen):
        shutil.copy(gen, os.path.join(out_dir, "generation_config.json"))
    shapes = tensor_shapes(cfg)
    if fp8:
        cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                      "weight_block_size": [BLOCK, BLOCK]}
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        full = []
        for name, shp in shapes:
            if name.endswith(PROJ):
                full.append((name, shp, "F8_E4M3"))
                full.append((name[: -len("weight")] + "weight_scale_inv", (-(-shp[0] // BLOCK), -(-shp[1] // BLOCK)), "F32"))
            else:
                full.append((name, shp, "BF16"))
    else:
        full = [(name, shp, "BF16") for name, shp in shapes]
    size = {"BF16": 2, "F32": 4, "F8_E4M3": 1}
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shp, dt in full:
        n = int(np.prod(shp)) * size[dt]
        header[name] = {"dtype": dt, "shape": list(shp), "data_offsets": [offset, offset + n]}
        offset += n
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    rng = np.random.default_rng(0)
    table = e4m3_table() if fp8 else None
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        pending_scale = None
        for name, shp, dt in full:
            if dt == "F32":  # the scales of the FP8 weight just written
                f.write(pending_scale.tobytes())
                continue
            n = int(np.prod(shp))
            norm = name.endswith("norm.weight")
            if dt == "F8_E4M3":
                w = rng.standard_normal(n, dtype=np.float32).reshape(shp) * 0.02
                q, pending_scale = fp8_blocks(w, table)
                f.write(q.tobytes())
            else:
                f.write(bf16_random(n, rng, 0.02, norm).tobytes())
    print(f"wrote {out_dir}: {len(full)} tensors, {offset / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
