#!/usr/bin/env python3
"""GGUF block decoding against llama.cpp (2026-12-05, session 59).

For each block type: the demo model's GGUF with its 2-D weights replaced by random blocks of
that type (scripts/gguf/write_gguf.py model --random-blocks T), run by llama.cpp (the peer's
prebuilt CPU build, ../shared/peers/cpu/llamacpp_bench.mjs --sanity: its tokenization of a
fixed sentence, the top logits of the next token, 8 greedy tokens) and by tinyllm (the same
ids, f32 activations, greedy, top log-probs). Log-prob gaps to the top token are logit gaps,
so the two engines' top lists compare directly. Run from the repository root, with
node-llama-cpp in ./.peer (see ../shared/peers/cpu/README.md).
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.getcwd()
PEER = os.path.join(ROOT, "..", "shared", "peers", "cpu", "llamacpp_bench.mjs")
TINYLLM = os.path.join(ROOT, "build", "src", "cli", "tinyllm")
TOP = 8
env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp())
worst_all = 0.0
# (label, write_gguf.py model arguments): random blocks of each type; the q6_K blocks again
# stored as the f32 values they stand for (llama.cpp then computes without quantizing its
# activations); the demo model's own weights encoded as q6_K (a model that writes text).
CASES = [(k, ["--random-blocks", k]) for k in ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_K", "q5_K", "q6_K"]]
CASES += [("q6_K as f32", ["--random-blocks", "q6_K", "--decoded"]), ("demo weights as q6_K", ["--type", "q6_K"])]
for kind, args in CASES:
    gguf = os.path.join(env["XDG_CACHE_HOME"], kind.replace(" ", "_") + ".gguf")
    subprocess.run(["/usr/bin/python3", "scripts/gguf/write_gguf.py", "model", "models/tiny-qwen2-demo", gguf] + args,
                   check=True)
    ref = json.loads(subprocess.run(["node", PEER, gguf, "--sanity", "--top", str(TOP), "--threads", "2"],
                                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    ours_ids = subprocess.run([TINYLLM, "tokenize", "--model", gguf, "The quick brown fox jumps over the lazy dog. 1 2 3 4"],
                              capture_output=True, text=True, check=True, env=env).stdout.split()
    out = subprocess.run([TINYLLM, "generate", "--model", gguf, "--prompt-ids", ",".join(map(str, ref["input_tokens"])),
                          "--max-tokens", "8", "--temperature", "0", "--json", "--logprobs", str(TOP), "--dtype",
                          "float32", "--kv-cache-memory", "64MiB"], capture_output=True, text=True, check=True, env=env)
    steps = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{\"token_id\"")]
    ours = {t["token_id"]: t["logprob"] for t in steps[0]["top_logprobs"]}
    top = ref["top_logits"]
    scale = abs(top[0][1])
    worst = 0.0
    missing = []
    for tid, logit in top:
        if tid not in ours:
            missing.append(tid)
            continue
        worst = max(worst, abs((logit - top[0][1]) - ours[tid]) / scale)
    greedy = [t["token_id"] for t in steps]
    worst_all = max(worst_all, worst)
    print(json.dumps({"case": kind, "tokenizer_same": [int(x) for x in ours_ids] == ref["input_tokens"],
                      "top_ids_llama": [t[0] for t in top], "top_ids_ours": list(ours)[:TOP], "missing": missing,
                      "max_gap_error_over_top_logit": round(worst, 6), "top_logit": top[0][1],
                      "greedy_llama": ref["greedy_tokens"], "greedy_ours": greedy,
                      "greedy_same": greedy == ref["greedy_tokens"], "top_gaps_llama": [round(v - top[0][1], 3) for _, v in top],
                      "top_gaps_ours": [round(v, 3) for v in list(ours.values())[:TOP]],
                      "text_llama": ref["greedy_text"], "text_ours": "".join(t["text"] for t in steps)}))
print(json.dumps({"worst": worst_all}))
