#!/usr/bin/env python3
"""Tokenizer goldens from HuggingFace `tokenizers` (and `transformers` when importable).

usage: python3 scripts/goldens/tokenizer_goldens.py ASSETS_DIR OUT_DIR [--bench-repeat N] [--bench-file FILE]

ASSETS_DIR: a folder whose sub-folders hold tokenizer.json (+ tokenizer_config.json), e.g.
            .cache/assets/tokenizers (made by scripts/fetch_assets.sh: qwen3, llama3, deepseek_v3).
Also used, when present: models/tiny-qwen2-demo (or ../shared/models/tiny-qwen2-demo) and every
tests/data/tokenizer/synthetic/<name>/tokenizer.json (made by make_synthetic_tokenizers.py).

For every string of tests/data/tokenizer/corpus.jsonl it records, per tokenizer:
  ids / pieces        Tokenizer.encode(text, add_special_tokens=False)
  ids_special         Tokenizer.encode(text, add_special_tokens=True)
  decode, decode_skip Tokenizer.decode(ids_special, skip_special_tokens=False / True)
  tf_*                the same through transformers (AutoTokenizer / PreTrainedTokenizerFast), which
                      may differ: it applies tokenizer_config.json (add_bos_token, clean-up of spaces).
and writes OUT_DIR/goldens_<name>.json. Then it times single-threaded encode of the corpus.
Needs only python3 + tokenizers (+ transformers, optional); no network.
"""
import argparse
import glob
import json
import os
import sys
import time

# Single-threaded reference timings: both must be set before tokenizers is imported.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

try:
    import transformers  # noqa: E402
    from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402
except Exception as e:  # transformers is optional
    transformers = None
    print(f"note: transformers not importable ({e}); tf_* fields are omitted", file=sys.stderr)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer", "corpus.jsonl")
SYNTHETIC = os.path.join(ROOT, "tests", "data", "tokenizer", "synthetic")


def load_corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def find_tokenizers(assets_dir):
    """[(name, folder, kind)] with kind 'real', 'demo' or 'synthetic'."""
    found = []
    for d in sorted(glob.glob(os.path.join(assets_dir, "*"))):
        if os.path.isfile(os.path.join(d, "tokenizer.json")):
            found.append((os.path.basename(d), d, "real"))
    for demo in (os.path.join(ROOT, "models", "tiny-qwen2-demo"),
                 os.path.join(ROOT, "..", "shared", "models", "tiny-qwen2-demo")):
        if os.path.isfile(os.path.join(demo, "tokenizer.json")):
            found.append(("tiny_qwen2_demo", demo, "demo"))
            break
    for d in sorted(glob.glob(os.path.join(SYNTHETIC, "*"))):
        if os.path.isfile(os.path.join(d, "tokenizer.json")):
            found.append(("synthetic_" + os.path.basename(d), d, "synthetic"))
    return found


def load_transformers(folder):
    if transformers is None:
        return None
    try:
        if os.path.isfile(os.path.join(folder, "tokenizer_config.json")):
            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    except Exception as e:
        print(f"note: transformers could not load {folder}: {e}", file=sys.stderr)
        return None


def make_goldens(name, folder, kind, texts):
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tf = load_transformers(folder)
    cases = []
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        enc_sp = tok.encode(text, add_special_tokens=True)
        case = {"text": text, "ids": enc.ids}
        if kind != "synthetic":
            case["pieces"] = enc.tokens
        case["ids_special"] = enc_sp.ids
        case["decode"] = tok.decode(enc_sp.ids, skip_special_tokens=False)
        case["decode_skip"] = tok.decode(enc_sp.ids, skip_special_tokens=True)
        if tf is not None:
            tf_ids = tf.encode(text, add_special_tokens=True)
            case["tf_ids_special"] = tf_ids
            case["tf_decode"] = tf.decode(tf_ids, skip_special_tokens=False)
            case["tf_decode_skip"] = tf.decode(tf_ids, skip_special_tokens=True)
        cases.append(case)
    meta = {"name": name, "kind": kind, "source": f"python tokenizers {tokenizers.__version__}",
            "transformers": (transformers.__version__ if (transformers is not None and tf is not None) else None),
            "tf_class": (type(tf).__name__ if tf is not None else None),
            "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True)}
    return {"meta": meta, "cases": cases}


def bench(name, folder, texts, repeat, bench_file):
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    if bench_file:
        with open(bench_file, encoding="utf-8", errors="replace") as f:
            doc = f.read()
        lines = [l for l in doc.split("\n")]
    else:
        lines = texts * repeat
        doc = "\n".join(lines)
    nbytes = len(doc.encode("utf-8"))
    tok.encode(doc[:10000])  # warm-up
    # Whole document as one string (one call, single-threaded inside the Rust library).
    best = None
    n_tokens = 0
    for _ in range(3):
        t0 = time.perf_counter()
        n_tokens = len(tok.encode(doc, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    print(f"{name:28s} doc   {nbytes / 1e6:7.2f} MB {n_tokens:9d} tok  {nbytes / best / 1e6:8.2f} MB/s "
          f"{n_tokens / best / 1e6:7.3f} Mtok/s")
    # One string per line through encode_batch with parallelism off (per-call Python cost amortized).
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        encs = tok.encode_batch(lines, add_special_tokens=False)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    n_tokens = sum(len(e.ids) for e in encs)
    line_bytes = sum(len(l.encode("utf-8")) for l in lines)
    print(f"{name:28s} lines {line_bytes / 1e6:7.2f} MB {n_tokens:9d} tok  {line_bytes / best / 1e6:8.2f} MB/s "
          f"{n_tokens / best / 1e6:7.3f} Mtok/s  ({len(lines)} strings, encode_batch, 1 thread)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("assets_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--bench-repeat", type=int, default=50,
                    help="timing input = corpus strings joined by newlines, repeated N times (default 50)")
    ap.add_argument("--bench-file", default=None, help="time this UTF-8 text file instead")
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()

    texts = load_corpus()
    found = find_tokenizers(args.assets_dir)
    if not found:
        sys.exit(f"no tokenizer.json found under {args.assets_dir} (run scripts/fetch_assets.sh)")
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"tokenizers {tokenizers.__version__}, transformers "
          f"{transformers.__version__ if transformers is not None else 'absent'}, {len(texts)} corpus strings")
    for name, folder, kind in found:
        g = make_goldens(name, folder, kind, texts)
        path = os.path.join(args.out_dir, f"goldens_{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(g, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path} ({os.path.getsize(path) / 1e3:.0f} kB)")
    if not args.no_bench:
        print("single-threaded encode timing (best of 3):")
        for name, folder, kind in found:
            if kind != "synthetic":
                bench(name, folder, texts, args.bench_repeat, args.bench_file)


if __name__ == "__main__":
    main()
