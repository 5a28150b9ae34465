#!/usr/bin/python3
"""Random-weight checkpoints of real Qwen (and Llama) shapes, in the exact hub layout (bf16 safetensors),
for benchmarks. Needs only numpy (apt-get install python3-numpy).

    /usr/bin/python3 scripts/make_random_checkpoint.py qwen2.5-0.5b /tmp/qwen2.5-0.5b-random
    /usr/bin/python3 scripts/make_random_checkpoint.py --list

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


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--list":
        print("\n".join(sorted(os.listdir(CONFIGS))))
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    shape, out_dir = sys.argv[1], sys.argv[2]
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
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shp in shapes:
        n = int(np.prod(shp)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shp), "data_offsets": [offset, offset + n]}
        offset += n
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    rng = np.random.default_rng(0)
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name, shp in shapes:
            n = int(np.prod(shp))
            norm = name.endswith("norm.weight")
            f.write(bf16_random(n, rng, 0.02, norm).tobytes())
    print(f"wrote {out_dir}: {len(shapes)} tensors, {offset / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
