#!/usr/bin/env python3
"""`tinyllm serve` with async scheduling on (the default on CUDA) and off, driven over real HTTP
(stdlib only: the GPU machine has no node for the OpenAI client test). ctest runs it on the
CPU (test_server_async_py, where `on` runs the pipelined engine with synchronous draws); the
device runs with --device cuda, where the draws overlap the next step.

  serve_async_check.py TINYLLM_BINARY MODEL_DIR [--device cuda|cpu]

Phase 1, one request at a time (one batch shape per request in both modes, so the numerics are
the same): greedy, seeded top-p, logprobs, a stop string, min_tokens, n = 3; streamed and not
(n = 1). The texts, finish reasons and log-probs must be equal between the modes, and a
streamed request's pieces must add up to the same request unstreamed.
Phase 2, 40 concurrent streams (some with penalties, whose steps run synchronously), 10 of them
dropped by the client after 3 chunks, and malformed requests among them: every kept stream
ends with one finish_reason and [DONE], no chunk after it, and a usage chunk whose
completion_tokens is max_tokens for a length finish; the malformed ones get a 400 with an
error object; afterwards the server has nothing running or waiting and every KV block free
(prefix-cached blocks count as free). Exit status 0 when everything holds.
"""
import argparse
import http.client
import json
import random
import re
import sys
import threading
import time

import loopback_server

FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL:", msg, flush=True)


def start_server(binary, model, device, mode):
    return loopback_server.start(binary, ["--model", model, "--device", device, "--async-scheduling", mode,
                                          "--max-num-seqs", "32", "--served-model-name", "m"], f"server ({mode})")


def post(port, path, body, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=raw if raw is not None else json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()


def stream(port, body, drop_after=None):
    """(pieces, finish_reasons, logprobs, saw_done, events_after_finish, status, usage)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/completions", body=json.dumps(dict(body, stream=True)),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        return None, None, None, False, 0, r.status, None
    pieces, finishes, lps, done, after, n, usage = [], [], [], False, 0, 0, None
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.decode().strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            break
        ev = json.loads(data)
        n += 1
        if ev.get("usage"):
            usage = ev["usage"]
        for ch in ev.get("choices", []):
            if finishes:
                after += 1
            pieces.append(ch.get("text", ""))
            if ch.get("logprobs"):
                lps += ch["logprobs"].get("token_logprobs", [])
            if ch.get("finish_reason"):
                finishes.append(ch["finish_reason"])
        if drop_after is not None and n >= drop_after:
            c.close()  # the client goes away mid-stream
            return pieces, finishes, lps, False, after, 200, usage
    return pieces, finishes, lps, done, after, 200, usage


PROMPTS = ["And the LORD said unto Moses,", "A computer", "In the beginning", "Q: What is the meaning of life?\nA:",
           "The fortune says:", "Blessed are the", "It is a truth universally", "Once upon a time"]


def phase1_bodies():
    out = []
    for i, p in enumerate(PROMPTS[:6]):
        b = {"model": "m", "prompt": p, "max_tokens": 24 + 4 * i, "ignore_eos": True}
        if i % 3 == 1:
            b.update(temperature=0.8, top_p=0.9, seed=100 + i)
        else:
            b.update(temperature=0.0)
        if i == 2:
            b["logprobs"] = 2
        if i == 3:
            b.update(stop=["\n"], ignore_eos=False)
        if i == 4:
            b.update(min_tokens=8, ignore_eos=False)
        if i == 5:
            b.update(n=3, temperature=0.9, seed=5)  # three sequences of one request, batched together
        out.append(b)
    return out


def phase1(port):
    res = []
    for b in phase1_bodies():
        st, text = post(port, "/v1/completions", b)
        if st != 200:
            fail(f"phase 1: status {st}: {text[:200]}")
            res.append(None)
            continue
        choices = sorted(json.loads(text)["choices"], key=lambda c: c["index"])
        if len(choices) != b.get("n", 1):
            fail(f"phase 1: {len(choices)} choices for n={b.get('n', 1)}")
        if b.get("n", 1) == 1:  # the streamed form of a one-choice request adds up to the same
            ch = choices[0]
            lp = (ch.get("logprobs") or {}).get("token_logprobs")
            pieces, fins, slp, done, after, _, _ = stream(port, b)
            if "".join(pieces) != ch["text"] or fins != [ch["finish_reason"]] or not done:
                fail(f"phase 1: streamed {''.join(pieces)!r} {fins} done={done} against {ch['text']!r} {ch['finish_reason']}")
            if lp is not None and [round(x, 4) for x in slp] != [round(x, 4) for x in lp]:
                fail("phase 1: streamed log-probs differ from the unstreamed ones")
        res.append([(c["text"], c["finish_reason"], (c.get("logprobs") or {}).get("token_logprobs")) for c in choices])
    return res


def phase2(port, seed):
    rng = random.Random(seed)
    results, threads = {}, []

    def one(i):
        if i % 13 == 5:  # malformed among the streams
            st, text = post(port, "/v1/completions", None, raw='{"model": "m", "prompt": "x", "max_tokens": }')
            results[i] = ("bad_json", st, text)
            return
        if i % 13 == 9:
            st, text = post(port, "/v1/completions", {"model": "m", "prompt": "x", "max_tokens": -3})
            results[i] = ("bad_value", st, text)
            return
        mt = rng.randint(1, 48)
        b = {"model": "m", "prompt": rng.choice(PROMPTS) * rng.randint(1, 6), "max_tokens": mt, "ignore_eos": True,
             "temperature": rng.choice([0.0, 0.7]), "seed": i, "stream_options": {"include_usage": True}}
        if i % 5 == 0:
            b["frequency_penalty"] = 0.4  # penalised steps fall back to synchronous ones
        drop = 3 if i % 4 == 1 else None
        results[i] = ("stream", mt, drop, stream(port, b, drop))

    for i in range(44):
        t = threading.Thread(target=one, args=(i,))
        threads.append(t)
        t.start()
        time.sleep(rng.random() * 0.01)
    for t in threads:
        t.join()
    kept = dropped = 0
    for i, r in sorted(results.items()):
        if r[0] in ("bad_json", "bad_value"):
            if r[1] != 400 or "error" not in r[2]:
                fail(f"phase 2: malformed request {i} ({r[0]}): status {r[1]} {r[2][:200]}")
            continue
        _, mt, drop, (pieces, fins, _, done, after, st, usage) = r
        if st != 200:
            fail(f"phase 2: request {i}: status {st}")
            continue
        if drop is not None:
            dropped += 1
            continue
        kept += 1
        if len(fins) != 1 or not done or after:
            fail(f"phase 2: request {i}: finishes {fins}, [DONE] {done}, {after} chunks after the finish")
        elif not usage or (fins[0] == "length" and usage.get("completion_tokens") != mt):
            fail(f"phase 2: request {i}: finish {fins[0]} with usage {usage} for max_tokens {mt}")
    # the server notices dropped clients and frees their blocks
    for _ in range(100):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        vals = {k: float(v) for k, v in re.findall(r"^(vllm:num_requests_running|vllm:num_requests_waiting|vllm:kv_cache_usage_perc)\{[^}]*\} (\S+)", text, re.M)}
        if vals and all(v == 0 for v in vals.values()):
            break
        time.sleep(0.1)
    else:
        fail(f"phase 2: after the run the server reports {vals}")
    return kept, dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    got = {}
    for mode in ("on", "off"):
        p, port = start_server(a.binary, a.model, a.device, mode)
        try:
            got[mode] = phase1(port)
            kept, dropped = phase2(port, 7)
            print(f"{mode}: phase 1 {len(got[mode])} requests; phase 2 {kept} streams kept, {dropped} dropped", flush=True)
            phase2(port, 8)  # a second round on the same server: nothing left over from the first
        finally:
            p.terminate()
            p.wait(timeout=30)
    for i, (x, y) in enumerate(zip(got["on"], got["off"])):
        if x != y:
            fail(f"phase 1 request {i}: async {x!r} against synchronous {y!r}")
    print("FAILED" if FAILS else "PASSED", f"({len(FAILS)} failures)")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
