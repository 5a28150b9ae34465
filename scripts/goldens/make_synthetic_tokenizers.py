#!/usr/bin/env python3
"""Writes small tokenizer.json files under tests/data/tokenizer/synthetic/<name>/.

They exercise parts of the tokenizer.json format that the real Qwen/Llama/DeepSeek files do not
use (Metaspace, byte_fallback, unk tokens, Digits, Punctuation, Whitespace, Split behaviours,
normalizers, TemplateProcessing, decoders, added-token flags). The vocabularies come from a tiny
deterministic BPE trainer below; the expected encodings come from HuggingFace `tokenizers`
through scripts/goldens/tokenizer_goldens.py, never from our own code.
"""
import collections
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer", "synthetic")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer", "corpus.jsonl")

TRAIN_TEXT = """The quick brown fox jumps over the lazy dog. It's a test, isn't it? They'll say we've done it.
Natural language processing is a subfield of computer science and linguistics concerned with language.
def main(): return the value of the function for i in range(10): print(i) while true: continue
Hello world hello World HELLO the then there these those this that than and in on at of to is was were
machine learning deep learning neural network model training inference token tokenizer encode decode
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def train(words, n_merges, prefix="", suffix=""):
    """Plain BPE over a word list. Returns (alphabet in first-seen order, merges list)."""
    counts = collections.Counter(words)
    seqs = {}
    alphabet = []
    seen = set()
    for w in counts:
        syms = list(w)
        if prefix:
            syms = [syms[0]] + [prefix + s for s in syms[1:]]
        if suffix:
            syms[-1] = syms[-1] + suffix
        seqs[w] = syms
        for s in syms:
            if s not in seen:
                seen.add(s)
                alphabet.append(s)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, syms in seqs.items():
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += counts[w]
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        a, b = best
        merged = a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)
        merges.append((a, b, merged))
        for w, syms in seqs.items():
            out = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            seqs[w] = out
    return alphabet, merges


def corpus_texts():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def build_vocab(specials, alphabet, merges):
    vocab = {}
    for s in specials:
        vocab.setdefault(s, len(vocab))
    for s in alphabet:
        vocab.setdefault(s, len(vocab))
    for _, _, m in merges:
        vocab.setdefault(m, len(vocab))
    return vocab


def added(id_, content, special=True, lstrip=False, rstrip=False, single_word=False, normalized=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def write(name, tok):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")


def bpe_model(vocab, merges, pair_format=False, **kw):
    m = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
         "vocab": vocab,
         "merges": [[a, b] for a, b, _ in merges] if pair_format else [f"{a} {b}" for a, b, _ in merges]}
    m.update(kw)
    return m


def base(model, normalizer=None, pre_tokenizer=None, post_processor=None, decoder=None, added_tokens=()):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": list(added_tokens),
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": post_processor,
            "decoder": decoder, "model": model}


def main():
    train_words_space = (TRAIN_TEXT * 3).split()
    extra = " ".join(corpus_texts()[:200]).split()

    # 1. SentencePiece-style BPE with byte fallback (Llama-2 / Mistral v1 layout).
    sp_words = ["\u2581" + w for w in train_words_space + extra]
    alphabet, merges = train(sp_words, 300)
    alphabet = [c for c in alphabet if ord(c) < 0x3000]  # leave CJK etc. to byte fallback
    merges = [m for m in merges if all(ch in alphabet for ch in m[2])]
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    vocab = build_vocab(specials, alphabet, merges)
    write("spm_byte_fallback", base(
        bpe_model(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True),
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        post_processor={"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        decoder={"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]))

    # 2. Metaspace pre-tokenizer, unk without fusing, added tokens with lstrip/rstrip/single_word/normalized.
    alphabet2, merges2 = train(sp_words, 200)
    alphabet2 = [c for c in alphabet2 if ord(c) < 0x0370]
    merges2 = [m for m in merges2 if all(ch in alphabet2 for ch in m[2])]
    vocab2 = build_vocab(["<unk>", "<s>", "</s>"], alphabet2, merges2)
    n = len(vocab2)
    write("metaspace_unk", base(
        bpe_model(vocab2, merges2, pair_format=True, unk_token="<unk>", fuse_unk=False),
        normalizer={"type": "NFKC"},
        pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        post_processor={"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                           "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        decoder={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                      added(n, "<mask>", lstrip=True, rstrip=False),
                      added(n + 1, "<sep>", lstrip=False, rstrip=True),
                      added(n + 2, "[SW]", special=False, single_word=True),
                      added(n + 3, "ﬁsh", special=False, normalized=True),
                      added(n + 4, "<|im_start|>", special=True),
                      added(n + 5, "<|im_start|>user", special=False),
                      added(n + 6, "world", special=False, single_word=True, lstrip=True, rstrip=True)]))

    # 3. Metaspace without split, prepend_scheme "always"; Lowercase + Strip normalizers.
    write("metaspace_nosplit", base(
        bpe_model(vocab2, merges2, unk_token="<unk>", fuse_unk=True),
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": True, "strip_right": True}, {"type": "Lowercase"},
            {"type": "NFD"}, {"type": "Replace", "pattern": {"Regex": "\\s{2,}"}, "content": " "}]},
        pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        decoder={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]))

    # 4. GPT-2 style: ByteLevel pre-tokenizer with its own regex and add_prefix_space; NFKD.
    b2u = bytes_to_unicode()
    bl_words = ["".join(b2u[b] for b in (" " + w).encode("utf-8")) for w in train_words_space + extra]
    _, merges4 = train(bl_words, 400)
    alphabet4 = [b2u[b] for b in range(256)]
    vocab4 = build_vocab(["<|endoftext|>"], alphabet4, merges4)
    n = len(vocab4)
    write("gpt2_bytelevel", base(
        bpe_model(vocab4, merges4),
        normalizer={"type": "NFKD"},
        pre_tokenizer={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        post_processor={"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                   {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
                        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}},
        decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        added_tokens=[added(0, "<|endoftext|>"), added(n, "<|im_start|>"), added(n + 1, "<|im_end|>"),
                      added(n + 2, " hello", special=False, normalized=False)]))

    # 5. Split behaviours, Digits, Punctuation, Whitespace around a byte-level model (no regex in ByteLevel).
    #    Byte 'A'..'E' are missing from the vocab and there is no unk: HF drops them.
    vocab5 = {k: v for k, v in vocab4.items() if k not in ("A", "B", "C", "D", "E")}
    vocab5 = {k: i for i, k in enumerate(vocab5)}
    merges5 = [m for m in merges4 if all(p in vocab5 for p in m)]
    def bl_tok(pre):
        return base(bpe_model(vocab5, merges5), pre_tokenizer={"type": "Sequence", "pretokenizers": pre + [
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
            decoder={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            post_processor={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            added_tokens=[added(0, "<|endoftext|>")])
    write("split_removed", bl_tok([{"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False},
                                   {"type": "Digits", "individual_digits": True}]))
    write("split_merged_prev", bl_tok([{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithPrevious", "invert": False},
                                       {"type": "Punctuation", "behavior": "Isolated"}]))
    write("split_merged_next", bl_tok([{"type": "Split", "pattern": {"Regex": "[\\s\\p{P}]"}, "behavior": "MergedWithNext", "invert": False},
                                       {"type": "Digits", "individual_digits": False}]))
    write("split_contiguous", bl_tok([{"type": "Split", "pattern": {"Regex": "\\p{L}"}, "behavior": "Contiguous", "invert": False},
                                      {"type": "Punctuation", "behavior": "MergedWithPrevious"}]))
    write("split_invert", bl_tok([{"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}"}, "behavior": "Isolated", "invert": True},
                                  {"type": "Punctuation", "behavior": "Removed"}]))
    write("split_invert_removed", bl_tok([{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Removed", "invert": True}]))
    write("whitespace", bl_tok([{"type": "Whitespace"}]))
    write("whitespace_split", bl_tok([{"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Contiguous"}]))

    # 6. Word-suffix/prefix BPE (continuing_subword_prefix + end_of_word_suffix), no decoder.
    words6 = [w.lower() for w in train_words_space + extra]
    alphabet6, merges6 = train(words6, 150, prefix="##", suffix="</w>")
    vocab6 = build_vocab(["[UNK]"], alphabet6, merges6)
    write("suffix_prefix", base(
        bpe_model(vocab6, merges6, unk_token="[UNK]", fuse_unk=True, continuing_subword_prefix="##",
                  end_of_word_suffix="</w>"),
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]},
        pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                             {"type": "Punctuation", "behavior": "Isolated"}]},
        decoder=None, added_tokens=[added(0, "[UNK]")]))


if __name__ == "__main__":
    main()
    print("wrote synthetic tokenizers to", OUT)
