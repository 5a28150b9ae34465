#!/usr/bin/env python3
"""HF transformers as the peer line for `tinyllm bench`, on the same GPU in the same call.

    python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b [--prefill 4096] [--gen 128]

Random bf16 weights of the config's shape (no checkpoint), SDPA attention, eager mode.
Prints one JSON line: prefill tok/s and TFLOP/s of a P-token prompt, decode tok/s of
generate() at batch 1 (greedy, fixed length).
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config_dir")
    ap.add_argument("--prefill", type=int, default=4096)
    ap.add_argument("--gen", type=int, default=128)
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
    print(json.dumps({"peer": "hf-transformers", "config": a.config_dir, "gpu": torch.cuda.get_device_name(),
                      "prefill_tokens": a.prefill, "prefill_tok_s": a.prefill / t,
                      "prefill_tflops": flops / t / 1e12, "decode_tok_s": a.gen / td}))


if __name__ == "__main__":
    main()
