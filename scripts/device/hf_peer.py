#!/usr/bin/env python3
"""HF transformers as the peer line for `tinyllm bench`, on the same GPU in the same call.

    python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b [--prefill 4096] [--gen 128] [--ours LOG ...]

Random bf16 weights of the config's shape (no checkpoint), SDPA attention, eager mode.
Prints one JSON line: prefill tok/s and TFLOP/s of a P-token prompt, decode tok/s of
generate() at batch 1 (greedy, fixed length); with --ours (logs of `tinyllm bench` on the same
shape in the same call), also our ppP and batch-1 tg rows and our ratio to the peer.
"""
import argparse
import json
import re
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def our_rows(logs, prefill):
    """Best pp<prefill> and batch-1 tg tok/s in `tinyllm bench` logs (None where absent)."""
    pp = tg = None
    for path in logs:
        with open(path) as f:
            for line in f:
                m = re.match(r"\|\s*(pp|tg)(\d+)\s*\|\s*(\d+)\s*\|\s*\d+\s*\|\s*([\d.]+)\s*\|", line)
                if not m:
                    continue
                kind, n, batch, tok_s = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4))
                if kind == "pp" and n == prefill:
                    pp = max(pp or 0.0, tok_s)
                elif kind == "tg" and batch == 1 and n > 1:
                    tg = max(tg or 0.0, tok_s)
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config_dir")
    ap.add_argument("--prefill", type=int, default=4096)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--ours", action="append", default=[], help="a tinyllm bench log of the same shape (repeatable)")
    a = ap.parse_args()
    cfg = AutoConfig.from_pretrained(a.config_dir)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    n_params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    ids = torch.randint(0, cfg.vocab_size, (1, a.prefill), device="cuda")
    with torch.no_grad():
        model(input_ids=ids[:, :256], logits_to_keep=1)  # warm-up
        torch.cuda.synchronize()
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            model(input_ids=ids, logits_to_keep=1)
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        t = sorted(ts)[1]
        L, H, nh = cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads
        hd = getattr(cfg, "head_dim", None) or H // nh
        flops = 2 * n_params * a.prefill + 4 * L * nh * hd * a.prefill * (a.prefill + 1) / 2
        prompt = ids[:, :1]
        model.generate(prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(prompt, max_new_tokens=a.gen, min_new_tokens=a.gen, do_sample=False)
        torch.cuda.synchronize()
        td = time.perf_counter() - t0
    out = {"peer": "hf-transformers", "config": a.config_dir, "gpu": torch.cuda.get_device_name(),
           "prefill_tokens": a.prefill, "prefill_tok_s": a.prefill / t,
           "prefill_tflops": flops / t / 1e12, "decode_tok_s": a.gen / td}
    if a.ours:
        pp, tg = our_rows(a.ours, a.prefill)
        if pp:
            out.update(ours_prefill_tok_s=pp, ours_over_peer_prefill=round(pp / out["prefill_tok_s"], 3))
        if tg:
            out.update(ours_decode_tok_s=tg, ours_over_peer_decode=round(tg / out["decode_tok_s"], 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
