#!/usr/bin/env python3
"""Mutated model files through `tinyllm generate`: every run must end with exit status 0 (the
mutation was harmless) or 1 (an error line), within 60 s, without a sanitizer report. A
developer's check, not a ctest (thousands of processes); run it on a sanitizer build
(scripts/dev/sanitize.sh builds one and runs it).

  fuzz_loaders.py TINYLLM [--only config|safetensors|gguf|tokenizer] [--seed N] [--gguf-cases N]

- config:      every config.json field of the demo model set to each of 15 wrong values
               (0, -1, huge, float, string, null, [], {}, NaN, ...), each field deleted, and
               texts that are not JSON objects;
- safetensors: the demo model's file truncated at 8 points; per tensor (5 of them) the dtype,
               shape and data_offsets corrupted 11 ways; a header length past the file;
- gguf:        the demo model written as a Q4_K_M-like GGUF (scripts/gguf/write_gguf.py
               --type mixed, needs NumPy), then truncated, then every integer field of its
               header (counts, string lengths, value types, dimensions, tensor types and
               offsets) set to edge values, then random bytes of the header flipped;
- tokenizer:   every field of tokenizer.json outside the vocabulary and merges (the model's
               settings, normalizer, pre-tokenizer, decoder, post-processor, added tokens)
               set to the wrong values and deleted; vocabulary entries and merges of the
               wrong kind; pre-tokenizer regexes that are invalid or pathological; every
               tokenizer_config.json field (special tokens, chat template, lengths) set to
               the wrong values, run with --chat so that the template renders.
Prints one line per run that broke the rules and a count at the end; exit status 1 if any did.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "models", "tiny-qwen2-demo")
WRONG = [0, -1, 1, 3, 10**12, 2**31, 1.5, -0.0, "x", None, [], {}, True, float("nan"), 1e308]
EDGE = [0, 1, 2, 3, 0x7f, 0xff, 0x100, 0x7fffffff, 0xffffffff, 0x100000000, 2**62, 2**63 - 1, 2**64 - 1, 13, 31, 99]


class Runner:
    def __init__(self, binary, work):
        self.binary, self.work, self.runs, self.bad = binary, work, 0, 0
        self.env = dict(os.environ, HOME=os.path.join(work, "home"))  # the GGUF folder cache

    def run(self, model, name, extra=(), prompt="Hello"):
        self.runs += 1
        try:
            p = subprocess.run([self.binary, "generate", "--model", model, "--prompt", prompt, "--max-tokens", "2",
                                "--temperature", "0", "--kv-cache-memory", "64MiB", *extra],
                               capture_output=True, timeout=60, env=self.env)
            rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        sanitizer = "AddressSanitizer" in err or "runtime error:" in err or "LeakSanitizer" in err
        if rc not in (0, 1) or sanitizer:
            self.bad += 1
            last = (err.strip().splitlines() or [""])[-1][:200]
            print(f"BAD {name}: exit {rc} {last}", flush=True)
            if sanitizer:
                print(err[:4000], flush=True)

    def folder(self, config_text=None, safetensors=None, texts=None):
        """The demo model's folder with config.json, model.safetensors or other files (texts:
        {name: text}) replaced."""
        d = os.path.join(self.work, "m")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        texts = dict(texts or {})
        if config_text is not None:
            texts["config.json"] = config_text
        replaced = set(texts)
        if safetensors is not None:
            replaced.add("model.safetensors")
        for f in os.listdir(DEMO):
            if f not in replaced:
                os.symlink(os.path.join(DEMO, f), os.path.join(d, f))
        for name, text in texts.items():
            with open(os.path.join(d, name), "w", encoding="utf-8", errors="surrogatepass") as fh:
                fh.write(text)
        if safetensors is not None:
            with open(os.path.join(d, "model.safetensors"), "wb") as fh:
                fh.write(safetensors)
        return d


def fuzz_config(r):
    base = json.load(open(os.path.join(DEMO, "config.json")))
    for k in sorted(base):
        for v in WRONG:
            r.run(r.folder(config_text=json.dumps(dict(base, **{k: v}))), f"config {k}={json.dumps(v)}")
        r.run(r.folder(config_text=json.dumps({x: y for x, y in base.items() if x != k})), f"config without {k}")
    for text in ["", "{", "[]", "null", "{\"a\":1}", "\xff\xfe", "{\"hidden_size\": 64,}"]:
        r.run(r.folder(config_text=text), f"config text {text!r}")


def fuzz_safetensors(r):
    raw = open(os.path.join(DEMO, "model.safetensors"), "rb").read()
    hl = struct.unpack("<Q", raw[:8])[0]
    hdr, body = json.loads(raw[8:8 + hl]), raw[8 + hl:]

    def pack(h):
        j = json.dumps(h).encode()
        return struct.pack("<Q", len(j)) + j + body
    for cut in [0, 4, 8, 20, 8 + hl - 1, 8 + hl, 8 + hl + 100, len(raw) - 1]:
        r.run(r.folder(safetensors=raw[:cut]), f"safetensors cut at {cut}")
    r.run(r.folder(safetensors=struct.pack("<Q", 10**15) + raw[8:]), "safetensors header length 1e15")
    names = sorted(k for k in hdr if k != "__metadata__")
    for k in names[:4] + ["model.embed_tokens.weight"]:
        for mut in ["dtype=F8", "dtype=I64", "dtype=zz", "shape+1", "shape-drop", "shape=[]", "shape0", "off-swap",
                    "off-big", "off-neg", "del"]:
            h = json.loads(json.dumps(hdr))
            t = h[k]
            if mut.startswith("dtype="):
                t["dtype"] = mut[6:]
            elif mut == "shape+1":
                t["shape"][0] += 1
            elif mut == "shape-drop":
                t["shape"] = t["shape"][1:]
            elif mut == "shape=[]":
                t["shape"] = []
            elif mut == "shape0":
                t["shape"][0] = 0
            elif mut == "off-swap":
                t["data_offsets"] = t["data_offsets"][::-1]
            elif mut == "off-big":
                t["data_offsets"][1] += 10**12
            elif mut == "off-neg":
                t["data_offsets"][0] = -8
            else:
                del h[k]
            r.run(r.folder(safetensors=pack(h)), f"safetensors {k} {mut}")


def gguf_fields(raw):
    """(offset, size, what) of every integer field of a GGUF header, and where the header ends."""
    fields, o = [], 4
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def u(fmt, what):
        nonlocal o
        v = struct.unpack_from("<" + fmt, raw, o)[0]
        fields.append((o, struct.calcsize(fmt), what))
        o += struct.calcsize(fmt)
        return v

    def string(what):
        nonlocal o
        n = u("Q", what + " length")  # (not `o += u(...)`: that would add to o as it was before u moved it)
        o += n
    u("I", "version")
    n_tensors, n_kv = u("Q", "tensor count"), u("Q", "metadata count")
    for _ in range(n_kv):
        string("key")
        t = u("I", "value type")
        if t == 8:
            string("string value")
        elif t == 9:
            et, n = u("I", "array type"), u("Q", "array length")
            for j in range(n):
                if et == 8 and (j < 3 or j > n - 3):
                    string("array string")
                elif et == 8:
                    o += 8 + struct.unpack_from("<Q", raw, o)[0]
                else:
                    o += sizes[et]
        else:
            o += sizes[t]
    for _ in range(n_tensors):
        string("tensor name")
        for _ in range(u("I", "dimension count")):
            u("Q", "dimension")
        u("I", "tensor type")
        u("Q", "tensor offset")
    return fields, o


def fuzz_gguf(r, rng, cases):
    path = os.path.join(r.work, "demo.gguf")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gguf", "write_gguf.py"), "model", DEMO, path,
                    "--type", "mixed"], check=True, stdout=subprocess.DEVNULL)
    raw = open(path, "rb").read()
    fields, end = gguf_fields(raw)
    target = os.path.join(r.work, "g.gguf")

    def run(blob, name):
        with open(target, "wb") as fh:
            fh.write(blob)
        r.run(target, name)
    for cut in [0, 3, 4, 8, 16, 24, 100, end - 1, end, end + 31, len(raw) // 2, len(raw) - 1]:
        run(raw[:cut], f"gguf cut at {cut}")
    for off, size, what in rng.sample(fields, min(cases, len(fields))):
        for v in rng.sample(EDGE, 4):
            b = bytearray(raw)
            struct.pack_into("<" + {1: "B", 4: "I", 8: "Q"}[size], b, off, v & ((1 << (8 * size)) - 1))
            run(bytes(b), f"gguf {what} at {off} = {v}")
    for i in range(cases // 2):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(0, end)] = rng.randrange(256)
        run(bytes(b), f"gguf header bytes flipped ({i})")


def json_paths(node, path=()):
    """Every path to a value inside node (keys and list indices), parents before children."""
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += json_paths(v, path + (i,))
    return out


def with_value(doc, path, value, delete=False):
    d = json.loads(json.dumps(doc))
    node = d
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


def fuzz_tokenizer(r):
    tok = json.load(open(os.path.join(DEMO, "tokenizer.json")))
    cfg = json.load(open(os.path.join(DEMO, "tokenizer_config.json")))
    # "Hello" alone would not reach the digits, apostrophes, newlines or the added tokens.
    prompt = "Hello, it's 2024!\n  <|im_start|>x\u00e9\u4e2d\U0001F600"

    def run_tok(t, name):
        r.run(r.folder(texts={"tokenizer.json": json.dumps(t) if not isinstance(t, str) else t}), name, prompt=prompt)
    for path in json_paths(tok):
        if path[:2] in (("model", "vocab"), ("model", "merges")):
            continue
        for v in WRONG:
            run_tok(with_value(tok, path, v), f"tokenizer.json {'.'.join(map(str, path))}={json.dumps(v)}")
        if not isinstance(path[-1], int):
            run_tok(with_value(tok, path, None, delete=True), f"tokenizer.json without {'.'.join(map(str, path))}")
    vocab = tok["model"]["vocab"]
    first = next(iter(vocab))
    for name, v in [("id -1", -1), ("id 2^31", 2**31), ("id 1e12", 10**12), ("id 1.5", 1.5), ("id str", "3"),
                    ("id null", None), ("duplicate id", vocab[first] + 1), ("id past the end", len(vocab) + 50)]:
        run_tok(with_value(tok, ("model", "vocab", first), v), f"tokenizer.json vocab {name}")
    run_tok(with_value(tok, ("model", "vocab"), {}), "tokenizer.json empty vocab")
    run_tok(with_value(tok, ("model", "vocab"), []), "tokenizer.json vocab a list")
    for m in ["a", "", ["a"], ["a", "b", "c"], [1, 2], "zz qq", "\u0120 \u0120", None, ["\u0120t", "\u0120t"]]:
        run_tok(with_value(tok, ("model", "merges", 0), m), f"tokenizer.json merge {json.dumps(m)}")
    run_tok(with_value(tok, ("model", "merges"), []), "tokenizer.json no merges")
    run_tok(with_value(tok, ("model", "merges"), tok["model"]["merges"] * 2), "tokenizer.json merges twice")
    for rx in ["(", "[", "\\p{Zzz}", "(?<=a)b", "a{99999999}", "(a+)+$", "", "\\", "(?i", "[^\\s\\S]", "x*",
               "(?:)", "\\b"]:
        run_tok(with_value(tok, ("pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"), rx),
                f"tokenizer.json pre-tokenizer regex {rx!r}")
    added = tok["added_tokens"]
    for name, patch in [("id -1", {"id": -1}), ("id huge", {"id": 10**9}), ("empty content", {"content": ""}),
                        ("content of a vocabulary token", {"content": first}), ("special 3", {"special": 3}),
                        ("no id", None)]:
        a = json.loads(json.dumps(added))
        if patch is None:
            del a[0]["id"]
        else:
            a[0].update(patch)
        run_tok(with_value(tok, ("added_tokens",), a), f"tokenizer.json added token {name}")
    run_tok(with_value(tok, ("added_tokens",), added + added), "tokenizer.json added tokens twice")
    for text in ["", "{", "[]", "null", "\xff\xfe"]:
        run_tok(text, f"tokenizer.json text {text!r}")
    for path in json_paths(cfg):
        for v in WRONG:
            r.run(r.folder(texts={"tokenizer_config.json": json.dumps(with_value(cfg, path, v))}),
                  f"tokenizer_config.json {'.'.join(map(str, path))}={json.dumps(v)}", extra=("--chat",), prompt=prompt)
        if not isinstance(path[-1], int):
            r.run(r.folder(texts={"tokenizer_config.json": json.dumps(with_value(cfg, path, None, delete=True))}),
                  f"tokenizer_config.json without {'.'.join(map(str, path))}", extra=("--chat",), prompt=prompt)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--only", choices=["config", "safetensors", "gguf", "tokenizer"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gguf-cases", type=int, default=150, help="header fields mutated (and half as many flips)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinyllm_fuzz_") as work:
        r = Runner(os.path.abspath(a.binary), work)
        if a.only in (None, "config"):
            fuzz_config(r)
        if a.only in (None, "safetensors"):
            fuzz_safetensors(r)
        if a.only in (None, "gguf"):
            fuzz_gguf(r, random.Random(a.seed), a.gguf_cases)
        if a.only in (None, "tokenizer"):
            fuzz_tokenizer(r)
        print(f"{r.runs} runs, {r.bad} broke the rules", flush=True)
        return 1 if r.bad else 0


if __name__ == "__main__":
    sys.exit(main())
