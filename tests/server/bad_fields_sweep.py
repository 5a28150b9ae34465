#!/usr/bin/env python3
"""Every request field of every POST endpoint, given every wrong kind of value, against a real
`tinyllm serve` on loopback (stdlib only).

  bad_fields_sweep.py TINYLLM_BINARY MODEL_DIR

For each endpoint, a valid base request gets one field (from the union of the fields the
OpenAI, vLLM and tinyllm endpoints know, plus an unknown one) set to each of ~25 values of the
wrong type, range or encoding: negative and huge integers, floats for integers, strings, null,
empty and nested arrays, objects, booleans, a lone UTF-16 surrogate, ids outside the
vocabulary. Then raw bodies that are not JSON (empty, cut, invalid UTF-8, two objects), and
malformed chat messages and completion prompts. Each answer must be
- 200 with a body that parses as JSON (a stream: every `data:` event JSON, ending `[DONE]`, or
  for the Responses API on response.completed / incomplete / failed), or
- 4xx (or 501) with an OpenAI error object: `{"error": {"message": ..., ...}}`, valid UTF-8;
never a 5xx, a dropped connection, a hang (60 s per request) or a dead server. A greedy
completion before and after the sweep must give the same text: nothing the sweep did changed
the server's state. Exit status 0 when all of that holds; each violation is printed.
"""
import http.client
import json
import sys
import time

import loopback_server

VALUES = [0, -1, 1, 2, 10**12, -10**12, 2**63, 1.5, -0.5, 1e300, "x", "", None, [], [1], [[]], {}, {"a": 1},
          True, False, "\ud800", [None], ["a"], [-1], [10**9]]
FIELDS = [
    "temperature", "top_p", "top_k", "min_p", "n", "best_of", "max_tokens", "max_completion_tokens", "stop",
    "stop_token_ids", "seed", "logprobs", "top_logprobs", "echo", "logit_bias", "presence_penalty",
    "frequency_penalty", "repetition_penalty", "stream", "stream_options", "response_format", "tools", "tool_choice",
    "user", "suffix", "min_tokens", "ignore_eos", "skip_special_tokens", "include_stop_str_in_output", "guided_json",
    "guided_regex", "guided_choice", "guided_grammar", "structured_outputs", "prompt_logprobs",
    "truncate_prompt_tokens", "allowed_token_ids", "bad_words", "use_beam_search", "length_penalty",
    "parallel_tool_calls", "chat_template", "chat_template_kwargs", "add_generation_prompt",
    "continue_final_message", "documents", "model", "prompt", "messages", "input", "encoding_format", "dimensions",
    "instructions", "max_output_tokens", "previous_response_id", "text", "reasoning", "store", "background",
    "query", "text_1", "text_2", "tokens", "add_special_tokens", "return_tokens_as_token_ids", "logits_processors",
    "priority", "request_id", "vllm_xargs", "cache_salt", "no_such_field"]
BASE = {
    "/v1/completions": {"prompt": "Hello", "max_tokens": 3},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    "/v1/embeddings": {"input": "Hello"},
    "/v1/responses": {"input": "Hi", "max_output_tokens": 3},
    "/tokenize": {"prompt": "Hello"},
    "/detokenize": {"tokens": [1, 2, 3]},
    "/v1/score": {"text_1": "a", "text_2": "b"},
    "/v1/rerank": {"query": "a", "documents": ["b", "c"]},
}
RAW_BODIES = ["", "{", "[]", "null", "1", "\"x\"", "{\"prompt\": \"a\", }", b"\xff\xfe\x00", b"{\"prompt\": \"\xc3\"}",
              "{\"prompt\": \"\\ud800\"}", "{\"messages\": [{\"role\": \"user\", \"content\": \"\\udfff\"}]}"]
MESSAGES = [None, "x", [], [{}], [{"role": "user"}], [{"role": "x", "content": "a"}], [{"role": "user", "content": None}],
            [{"role": "user", "content": [{"type": "text"}]}],
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            [{"role": "assistant", "content": "a", "tool_calls": [{}]}], [{"role": "tool", "content": "a"}],
            [{"role": "user", "content": 5}],
            [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function",
                                                   "function": {"name": "f", "arguments": "{bad"}}]}],
            [{"role": "user", "content": "a" * 100000}]]
PROMPTS = [[], [[]], [1, 2, -5], [10**9], [[1, 2], "a"], ["a", 5], "a" * 200000, [0] * 600, {"a": 1}]

failures = 0
requests = 0


def start_server(binary, model):
    return loopback_server.start(binary, ["--model", model, "--max-model-len", "512", "--kv-cache-memory", "64MiB"])


def body_ok(path, status, ctype, data):
    """Why the answer breaks the rules, or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"body is not UTF-8 ({e})"
    if status >= 400:
        if not (400 <= status < 500 or status == 501):
            return f"status {status}"
        try:
            err = json.loads(text)["error"]
            if not isinstance(err.get("message"), str) or not err["message"]:
                return "error object without a message"
        except (ValueError, KeyError, TypeError, AttributeError):
            return "error body is not an OpenAI error object"
        return None
    if status != 200:
        return f"status {status}"
    if "text/event-stream" in ctype:
        events = [ln[6:] for ln in text.split("\n") if ln.startswith("data: ")]
        if events and events[-1] == "[DONE]":  # chat and completions; the Responses API ends on its last event
            events = events[:-1]
        elif path != "/v1/responses":
            return "stream does not end with [DONE]"
        try:
            parsed = [json.loads(e) for e in events]
        except ValueError:
            return "a stream event is not JSON"
        if path == "/v1/responses" and (not parsed or parsed[-1].get("type") not in
                                         ("response.completed", "response.incomplete", "response.failed")):
            return "a Responses stream does not end with response.completed / incomplete / failed"
        return None
    try:
        json.loads(text)
    except ValueError:
        return "200 body is not JSON"
    return None


def post(server, port, path, body=None, raw=None):
    global failures, requests
    requests += 1
    data = raw if raw is not None else json.dumps(body)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        why = body_ok(path, r.status, r.getheader("Content-Type") or "", r.read())
    except Exception as e:  # a dropped connection, a timeout
        why = f"{type(e).__name__}: {e}"
    if server.poll() is not None:
        why = f"the server died (exit status {server.returncode})"
    if why:
        failures += 1
        print(f"FAIL {path} {data[:160]!r}: {why}", flush=True)
        if server.poll() is not None:
            sys.exit(1)


def greedy_text(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/completions", body=json.dumps({"prompt": "Once upon a time", "max_tokens": 12,
                                                          "temperature": 0}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read())["choices"][0]["text"]


def main():
    binary, model = sys.argv[1], sys.argv[2]
    server, port = start_server(binary, model)
    try:
        before = greedy_text(port)
        t0 = time.time()
        for path, base in BASE.items():
            for field in FIELDS:
                for v in VALUES:
                    # Valid sizes that only make the request long: not what this sweeps.
                    if field in ("n", "best_of") and isinstance(v, int) and not isinstance(v, bool) and v > 8:
                        continue
                    if (field in ("max_tokens", "max_completion_tokens", "max_output_tokens", "min_tokens")
                            and isinstance(v, int) and v > 64):
                        continue
                    post(server, port, path, dict(base, **{field: v}))
            for raw in RAW_BODIES + [json.dumps(base) * 2]:
                post(server, port, path, raw=raw)
        for m in MESSAGES:
            post(server, port, "/v1/chat/completions", {"messages": m, "max_tokens": 2})
        for p in PROMPTS:
            post(server, port, "/v1/completions", {"prompt": p, "max_tokens": 2})
        after = greedy_text(port)
        print(f"{requests} requests in {time.time() - t0:.1f} s, {failures} broke the rules", flush=True)
        if before != after or before[0] != 200:
            print(f"FAIL the greedy completion changed: {before!r} before the sweep, {after!r} after", flush=True)
            return 1
        return 1 if failures else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
