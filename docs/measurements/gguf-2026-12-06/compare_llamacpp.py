#!/usr/bin/env python3
"""GGUF blocks run as stored, against llama.cpp (2026-12-06, session 60; from session 59's script).

For each block type: the demo model's weights encoded in that type (scripts/gguf/write_gguf.py
model --type T; "mixed" is q4_K with v, down in q6_K), and random blocks of it (--random-blocks T),
run by llama.cpp (the peer's
prebuilt CPU build, ../shared/peers/cpu/llamacpp_bench.mjs --sanity: its tokenization of a
fixed sentence, the top logits of the next token, 8 greedy tokens) and by tinyllm (the same
ids, f32 activations, greedy past the end-of-text token as llama.cpp goes on, top log-probs), which since session 60 computes with the
blocks' own codes, scales and offsets. Gaps to the top token are the same in logits and
log-probs, so the two engines' top lists compare directly (session 59's script compared
llama.cpp's logit gaps with our log-probs themselves, which differ by the top token's
log-prob: its large "worst" figures for flat distributions were that, not a decoding error). Run from the repository root, with
node-llama-cpp in ./.peer (see ../shared/peers/cpu/README.md).

Arguments (session 64): `TYPE ... [--as-f32 TYPE ...]` runs those cases instead: the demo
weights in each TYPE, random blocks of each TYPE but the mixes, and random blocks of each
--as-f32 TYPE stored as the f32 values they stand for (llama.cpp then computes without
rounding its activations to 8 bits).
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
CASES = [("demo weights as " + k, ["--type", k]) for k in
         ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_K", "q5_K", "q6_K", "mixed"]]
CASES += [(k, ["--random-blocks", k]) for k in ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_K", "q5_K", "q6_K"]]
if len(sys.argv) > 1:
    cut = sys.argv.index("--as-f32") if "--as-f32" in sys.argv else len(sys.argv)
    types, as_f32 = sys.argv[1:cut], sys.argv[cut + 1:]
    CASES = [("demo weights as " + k, ["--type", k]) for k in types]
    CASES += [(k, ["--random-blocks", k]) for k in types if not k.startswith("mixed")]
    CASES += [(k + " as f32", ["--random-blocks", k, "--decoded"]) for k in as_f32]
for kind, args in CASES:
    gguf = os.path.join(env["XDG_CACHE_HOME"], kind.replace(" ", "_") + ".gguf")
    subprocess.run(["/usr/bin/python3", "scripts/gguf/write_gguf.py", "model", "models/tiny-qwen2-demo", gguf] + args,
                   check=True)
    ref = json.loads(subprocess.run(["node", PEER, gguf, "--sanity", "--top", str(TOP), "--threads", "2"],
                                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    ours_ids = subprocess.run([TINYLLM, "tokenize", "--model", gguf, "The quick brown fox jumps over the lazy dog. 1 2 3 4"],
                              capture_output=True, text=True, check=True, env=env).stdout.split()
    out = subprocess.run([TINYLLM, "generate", "--model", gguf, "--prompt-ids", ",".join(map(str, ref["input_tokens"])),
                          "--max-tokens", "8", "--ignore-eos", "--temperature", "0", "--json", "--logprobs", str(TOP), "--dtype",
                          "float32", "--kv-cache-memory", "64MiB"], capture_output=True, text=True, check=True, env=env)
    steps = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{\"token_id\"")]
    ours = {t["token_id"]: t["logprob"] for t in steps[0]["top_logprobs"]}
    top = ref["top_logits"]
    ours_top = max(ours.values())
    scale = abs(top[0][1])
    worst = 0.0
    missing = []
    for tid, logit in top:
        if tid not in ours:
            missing.append(tid)
            continue
        worst = max(worst, abs((logit - top[0][1]) - (ours[tid] - ours_top)) / scale)
    greedy = [t["token_id"] for t in steps]
    worst_all = max(worst_all, worst)
    print(json.dumps({"case": kind, "tokenizer_same": [int(x) for x in ours_ids] == ref["input_tokens"],
                      "top_ids_llama": [t[0] for t in top], "top_ids_ours": list(ours)[:TOP], "missing": missing,
                      "max_gap_error_over_top_logit": round(worst, 6), "top_logit": top[0][1],
                      "greedy_llama": ref["greedy_tokens"], "greedy_ours": greedy,
                      "greedy_same": greedy == ref["greedy_tokens"], "top_gaps_llama": [round(v - top[0][1], 3) for _, v in top],
                      "top_gaps_ours": [round(v - ours_top, 3) for v in list(ours.values())[:TOP]],
                      "text_llama": ref["greedy_text"], "text_ours": "".join(t["text"] for t in steps)}))
print(json.dumps({"worst": worst_all}))
