"""Session 37's server paths on a CUDA server (run 222): beam search, best_of, a background
response polled to completion and one cancelled, input_items, cache_salt. Exits non-zero on
the first failed check. Usage: serve_new_paths.py TINYLLM_BINARY MODEL_DIR"""
import json, re, subprocess, sys, time, urllib.request

binary, model = sys.argv[1], sys.argv[2]
DEVICE = sys.argv[3] if len(sys.argv) > 3 else "cuda"
proc = subprocess.Popen([binary, "serve", "--model", model, "--device", DEVICE, "--port", "0"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
port = None
for line in proc.stdout:
    m = re.search(r"listening on http://[^:]+:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
url = f"http://127.0.0.1:{port}"
for _ in range(600):  # /health answers 503 while the model loads
    try:
        with urllib.request.urlopen(url + "/health") as r:
            if r.status == 200:
                break
    except urllib.error.URLError:
        pass
    time.sleep(0.1)

def call(path, body=None):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="GET" if body is None else "POST")
    for _ in range(300):
        try:
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())
        except urllib.error.URLError as e:
            if getattr(e, "code", None):
                raise
            time.sleep(0.1)

try:
    prompt = "And the LORD said unto Moses,"
    beams = call("/v1/completions", {"prompt": prompt, "max_tokens": 10, "n": 3, "use_beam_search": True})
    texts = [c["text"] for c in beams["choices"]]
    assert len(texts) == 3 and len(set(texts)) == 3, texts
    one = call("/v1/completions", {"prompt": prompt, "max_tokens": 10, "use_beam_search": True, "ignore_eos": True})
    greedy = call("/v1/completions", {"prompt": prompt, "max_tokens": 10, "temperature": 0, "ignore_eos": True})
    assert one["choices"][0]["text"] == greedy["choices"][0]["text"], (one, greedy)
    best = call("/v1/completions", {"prompt": prompt, "max_tokens": 8, "n": 2, "best_of": 5, "seed": 7,
                                    "temperature": 1.0, "logprobs": 0})
    means = [sum(c["logprobs"]["token_logprobs"]) / len(c["logprobs"]["token_logprobs"]) for c in best["choices"]]
    assert len(means) == 2 and means[0] >= means[1], means
    queued = call("/v1/responses", {"input": "Tell me a fortune.", "max_output_tokens": 12, "temperature": 0,
                                    "background": True})
    assert queued["status"] == "queued", queued
    r = queued
    for _ in range(300):
        r = call("/v1/responses/" + queued["id"])
        if r["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
    fg = call("/v1/responses", {"input": "Tell me a fortune.", "max_output_tokens": 12, "temperature": 0})
    assert r["status"] == "completed", r
    assert r["output"][0]["content"][0]["text"] == fg["output"][0]["content"][0]["text"], (r, fg)
    items = call("/v1/responses/" + queued["id"] + "/input_items")
    assert items["data"][0]["content"][0]["text"] == "Tell me a fortune.", items
    long = call("/v1/responses", {"input": "Tell me a story.", "max_output_tokens": 1900, "ignore_eos": True,
                                  "background": True})
    cancelled = call("/v1/responses/" + long["id"] + "/cancel", {})
    assert cancelled["status"] == "cancelled" and cancelled["usage"]["output_tokens"] < 1900, cancelled
    salted = [call("/v1/completions", {"prompt": prompt * 8, "max_tokens": 2, "cache_salt": s})["usage"]
              ["prompt_tokens_details"]["cached_tokens"] for s in ("a", "a", "b")]
    assert salted[0] == 0 and salted[1] > 0 and salted[2] == 0, salted
    print("all checks passed")
finally:
    proc.terminate()
    proc.wait(timeout=30)
