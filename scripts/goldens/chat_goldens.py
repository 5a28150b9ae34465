#!/usr/bin/env python3
"""Chat-template goldens for tiny-llm's Jinja interpreter.

Usage: python3 scripts/goldens/chat_goldens.py ASSETS_DIR OUT_DIR

ASSETS_DIR holds one folder per hub tokenizer, each with tokenizer.json and tokenizer_config.json
(scripts/fetch_assets.sh lays them out in .cache/assets/tokenizers/{qwen3,llama3,deepseek_v3}).
The other templates come from tests/data/chat/templates/*.jinja in this repository.

Every conversation of tests/data/chat/conversations.json is rendered through HuggingFace
transformers' `tokenizer.apply_chat_template(..., tokenize=False)`, with and without the generation
prompt and with each kwargs variant of the template. Writes OUT_DIR/chat_goldens.json:

  {template_name: [{"conversation_id", "add_generation_prompt", "kwargs", "rendered" | "error"}],
   "__meta__": {"transformers_version", "jinja2_version", "fixed_now",
                "templates": {template_name: {"source", "bos_token", "eos_token", "loader"}}}}

"error" is "ExceptionType: message" when transformers raises (raise_exception, TypeError, ...).
`strftime_now` is pinned to FIXED_NOW by patching the `datetime` that transformers' Jinja helper
calls; the C++ side pins the same instant with TLLM_FIXED_DATE=2024-07-26T14:30:05.

Needs only python3 + transformers (+ its jinja2 and tokenizers); runs offline.
`--emulate-with-jinja2` renders with a local copy of transformers' Jinja environment instead of
transformers itself: a development preview only, never the committed reference.
"""

import argparse
import datetime as dtmod
import importlib
import json
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "chat")
FIXED_NOW = dtmod.datetime(2024, 7, 26, 14, 30, 5)

# name -> (kind, where, bos, eos). Asset templates take bos/eos from their tokenizer_config.json.
TEMPLATES = {
    "qwen3": ("asset", "qwen3", None, None),
    "llama3": ("asset", "llama3", None, None),
    "deepseek_v3": ("asset", "deepseek_v3", None, None),
    "qwen2_instruct": ("file", "qwen2_instruct.jinja", None, "<|im_end|>"),
    "qwen2_5_instruct": ("file", "qwen2_5_instruct.jinja", None, "<|im_end|>"),
    "tiny_qwen2_demo": ("file", "tiny_qwen2_demo.jinja", None, "<|endoftext|>"),
    "probe_basics": ("file", "probe_basics.jinja", "<s>", "</s>"),
    "probe_filters": ("file", "probe_filters.jinja", "<s>", "</s>"),
    "probe_tojson": ("file", "probe_tojson.jinja", "<s>", "</s>"),
    "probe_raise": ("file", "probe_raise.jinja", "<s>", "</s>"),
}

KWARGS_VARIANTS = {
    "qwen3": [{}, {"enable_thinking": False}, {"enable_thinking": True}],
    "probe_filters": [{"extra": {"nested": [1, 2.5, "x"]}, "flag": True}],
}

# Probes only need a few conversations each.
PROBE_CONVERSATIONS = {
    "probe_basics": ["multi_turn", "tools_call_object", "unicode"],
    "probe_filters": ["multi_turn", "tools_call_object"],
    "probe_tojson": ["tools_call_object", "tool_call_with_content", "unicode", "empty_content"],
    "probe_raise": ["single_user", "system_user", "multi_turn"],
}


class FixedDatetime(dtmod.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(FIXED_NOW.year, FIXED_NOW.month, FIXED_NOW.day, FIXED_NOW.hour,
                   FIXED_NOW.minute, FIXED_NOW.second, tzinfo=tz)


def pin_clock():
    """Make transformers' strftime_now() see FIXED_NOW. It calls datetime.now() through the
    module-level name `datetime` of the module that defines its Jinja environment."""
    patched = []
    for name in ("transformers.utils.chat_template_utils", "transformers.tokenization_utils_base",
                 "transformers.processing_utils"):
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        cur = getattr(mod, "datetime", None)
        if cur is dtmod.datetime:
            mod.datetime = FixedDatetime
            patched.append(name)
        elif cur is dtmod:
            shim = types.ModuleType("datetime")
            shim.__dict__.update(dtmod.__dict__)
            shim.datetime = FixedDatetime
            mod.datetime = shim
            patched.append(name)
    return patched


def emulated_environment():
    """transformers' Jinja environment, rebuilt locally (for --emulate-with-jinja2 only)."""
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class AssistantTracker(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return FixedDatetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_content(tok):
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


class Renderer:
    def __init__(self, emulate):
        self.emulate = emulate
        if emulate:
            self.env = emulated_environment()

    def synthetic_tokenizer(self, bos, eos):
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast
        vocab = {"<unk>": 0}
        for t in (bos, eos):
            if t:
                vocab.setdefault(t, len(vocab))
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        kw = {"unk_token": "<unk>"}
        if bos:
            kw["bos_token"] = bos
        if eos:
            kw["eos_token"] = eos
        return PreTrainedTokenizerFast(tokenizer_object=tok, **kw)

    def load(self, name, assets_dir):
        kind, where, bos, eos = TEMPLATES[name]
        if kind == "asset":
            d = os.path.join(assets_dir, where)
            cfg_path = os.path.join(d, "tokenizer_config.json")
            if not os.path.exists(cfg_path):
                raise FileNotFoundError(cfg_path)
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
            source = cfg["chat_template"]
            jinja_path = os.path.join(d, "chat_template.jinja")
            if os.path.exists(jinja_path):
                with open(jinja_path, encoding="utf-8") as f:
                    source = f.read()
            bos, eos = token_content(cfg.get("bos_token")), token_content(cfg.get("eos_token"))
            meta = {"source": "asset:" + where}
            if self.emulate:
                return {"source": source, "bos": bos, "eos": eos, "tok": None}, dict(meta, loader="emulated")
            try:
                from transformers import AutoTokenizer
                tok = AutoTokenizer.from_pretrained(d)
                meta["loader"] = "AutoTokenizer"
                stm = tok.special_tokens_map
                bos, eos = stm.get("bos_token"), stm.get("eos_token")
                return {"source": None, "bos": bos, "eos": eos, "tok": tok}, meta
            except Exception as e:  # fall back to the same template on a minimal tokenizer
                print(f"warning: AutoTokenizer({d}) failed ({type(e).__name__}: {e}); "
                      "using a synthetic tokenizer", file=sys.stderr)
                meta["loader"] = "synthetic"
                return {"source": source, "bos": bos, "eos": eos,
                        "tok": self.synthetic_tokenizer(bos, eos)}, meta
        with open(os.path.join(DATA, "templates", where), encoding="utf-8") as f:
            source = f.read()
        meta = {"source": "file:tests/data/chat/templates/" + where}
        if self.emulate:
            return {"source": source, "bos": bos, "eos": eos, "tok": None}, dict(meta, loader="emulated")
        meta["loader"] = "synthetic"
        return {"source": source, "bos": bos, "eos": eos, "tok": self.synthetic_tokenizer(bos, eos)}, meta

    def render(self, t, messages, tools, agp, kwargs):
        if self.emulate:
            ctx = {"messages": messages, "tools": tools, "documents": None,
                   "add_generation_prompt": agp}
            if t["bos"] is not None:
                ctx["bos_token"] = t["bos"]
            if t["eos"] is not None:
                ctx["eos_token"] = t["eos"]
            ctx.update(kwargs)
            return self.env.from_string(t["source"]).render(**ctx)
        extra = {}
        if t["source"] is not None:
            extra["chat_template"] = t["source"]
        return t["tok"].apply_chat_template(messages, tools=tools, add_generation_prompt=agp,
                                            tokenize=False, **extra, **kwargs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("assets_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--emulate-with-jinja2", action="store_true",
                    help="development preview without transformers (not a reference)")
    args = ap.parse_args()

    meta = {"fixed_now": FIXED_NOW.isoformat(), "templates": {}}
    import jinja2
    meta["jinja2_version"] = jinja2.__version__
    if args.emulate_with_jinja2:
        meta["transformers_version"] = None
        meta["renderer"] = "jinja2-emulation (preview only)"
    else:
        import transformers
        meta["transformers_version"] = transformers.__version__
        meta["renderer"] = "transformers.apply_chat_template"
        meta["clock_patched_in"] = pin_clock()

    renderer = Renderer(args.emulate_with_jinja2)

    if not args.emulate_with_jinja2:  # prove the clock pin took effect before rendering anything
        probe = {"source": "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}", "bos": None, "eos": None,
                 "tok": renderer.synthetic_tokenizer(None, "</s>")}
        got = renderer.render(probe, [{"role": "user", "content": "x"}], None, False, {})
        if got != "2024-07-26 14:30:05":
            sys.exit(f"could not pin strftime_now (got {got!r}); patched: {meta['clock_patched_in']}")

    with open(os.path.join(DATA, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)["conversations"]

    out = {}
    for name in TEMPLATES:
        try:
            t, tmeta = renderer.load(name, args.assets_dir)
        except FileNotFoundError as e:
            print(f"skipping {name}: {e} not found", file=sys.stderr)
            continue
        tmeta["bos_token"], tmeta["eos_token"] = t["bos"], t["eos"]
        meta["templates"][name] = tmeta
        wanted = PROBE_CONVERSATIONS.get(name)
        rows = []
        for conv in conversations:
            if wanted is not None and conv["id"] not in wanted:
                continue
            for kwargs in KWARGS_VARIANTS.get(name, [{}]):
                for agp in (False, True):
                    row = {"conversation_id": conv["id"], "add_generation_prompt": agp,
                           "kwargs": kwargs}
                    try:
                        # Deep copies: templates may not mutate our inputs between renders.
                        msgs = json.loads(json.dumps(conv["messages"]))
                        tools = json.loads(json.dumps(conv["tools"])) if "tools" in conv else None
                        row["rendered"] = renderer.render(t, msgs, tools, agp, kwargs)
                    except Exception as e:
                        row["error"] = f"{type(e).__name__}: {e}"
                    rows.append(row)
        out[name] = rows
        n_err = sum("error" in r for r in rows)
        print(f"{name}: {len(rows)} renderings, {n_err} errors", file=sys.stderr)
    out["__meta__"] = meta

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "chat_goldens.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
