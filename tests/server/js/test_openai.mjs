// The official OpenAI Node client against `tinyllm serve` (started here on a free
// loopback port with the tiny model on CPU). Run by run.sh from ctest.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import OpenAI from "openai";

const BIN = process.env.TINYLLM_BIN;
const MODEL = process.env.TINYLLM_MODEL;
let server;
let baseURL;
let client;

// Starts `tinyllm serve` with the tiny model and `extra` flags; resolves once /health is 200.
async function startServer(extra) {
  const proc = spawn(BIN, ["serve", "--model", MODEL, "--device", "cpu", "--threads", "2", "--kv-cache-memory", "256MiB", "--host", "127.0.0.1",
                           "--port", "0", ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d.toString();
      const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) => reject(new Error(`tinyllm serve exited with ${code}: ${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url };
}

async function stopServer(proc) {
  const exited = new Promise((r) => proc.on("exit", (code) => r(code)));
  proc.kill("SIGTERM");
  assert.equal(await exited, 0);
}

before(async () => {
  const s = await startServer(["--served-model-name", "tiny", "--enable-debug-endpoints"]);
  server = s.proc;
  baseURL = s.url;
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  if (server) await stopServer(server);
});

const prompt = "And the LORD said unto Moses,";
// Usage without cached_tokens, which depends on what ran before.
const counts = ({ prompt_tokens, completion_tokens, total_tokens }) => ({ prompt_tokens, completion_tokens, total_tokens });

test("models.list", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ["tiny"]);
  assert.deepEqual(await client.models.retrieve("tiny"), models.data[0]);
  await assert.rejects(client.models.retrieve("other"), (e) => e instanceof OpenAI.NotFoundError);
});

test("completions: text, usage, finish_reason", async () => {
  const r = await client.completions.create({ model: "tiny", prompt, max_tokens: 12, temperature: 0, ignore_eos: true });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, "string");
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
});

test("completions: best_of returns the n most likely of best_of samples, which n = best_of shows", async () => {
  const params = { model: "tiny", prompt, max_tokens: 6, temperature: 1, top_p: 1, top_k: -1, seed: 3, logprobs: 0 };
  const all = await client.completions.create({ ...params, n: 4 });
  const mean = (c) => c.logprobs.token_logprobs.reduce((a, b) => a + b, 0) / c.logprobs.token_logprobs.length;
  const ranked = [...all.choices].sort((a, b) => mean(b) - mean(a));
  const best = await client.completions.create({ ...params, n: 2, best_of: 4 });
  assert.deepEqual(best.choices.map((c) => c.text), ranked.slice(0, 2).map((c) => c.text));
  await assert.rejects(client.completions.create({ ...params, n: 2, best_of: 4, stream: true }),
                       (e) => e instanceof OpenAI.BadRequestError);
  // vLLM's beam search through the client's extra fields: n beams, best first.
  const beams = await client.completions.create({ model: "tiny", prompt, max_tokens: 6, n: 3, use_beam_search: true });
  assert.equal(beams.choices.length, 3);
  assert.equal(new Set(beams.choices.map((c) => c.text)).size, 3);
});

test("completions: streaming equals non-streaming, usage chunk last", async () => {
  const body = { model: "tiny", prompt, max_tokens: 20, temperature: 0, ignore_eos: true };
  const full = await client.completions.create(body);
  const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage = null;
  const ids = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    for (const c of chunk.choices) text += c.text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(ids.size, 1);
  assert.equal(text, full.choices[0].text);
  assert.deepEqual(counts(usage), counts(full.usage));
});

test("chat: message, logprobs with top_logprobs", async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: "Tell me a fortune." }], max_tokens: 10, temperature: 0,
    logprobs: true, top_logprobs: 2,
  });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(typeof t.token, "string");
    assert.ok(Array.isArray(t.bytes));
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6, "greedy picks the most likely token");
  }
});

test("chat: streaming with role first and include_usage", async () => {
  const body = { model: "tiny", messages: [{ role: "user", content: "Say something wise." }], max_tokens: 16, temperature: 0 };
  const full = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let first = true;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (first) {
      assert.equal(chunk.choices[0].delta.role, "assistant");
      first = false;
    }
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, full.choices[0].message.content);
  assert.equal(finish, full.choices[0].finish_reason);
  assert.deepEqual(counts(usage), counts(full.usage));
});

test("chat: OpenAI's cache, moderation and verbosity fields are accepted and change nothing", async () => {
  const body = { model: "tiny", messages: [{ role: "user", content: "Tell me a fortune." }], max_tokens: 8, temperature: 0 };
  const plain = await client.chat.completions.create(body);
  const hinted = await client.chat.completions.create({
    ...body, prompt_cache_key: "user-7", safety_identifier: "hash-7", verbosity: "low", modalities: ["text"] });
  assert.equal(hinted.choices[0].message.content, plain.choices[0].message.content);
  await assert.rejects(client.chat.completions.create({ ...body, modalities: ["text", "audio"] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "modalities");
});

test("n > 1 and stop strings", async () => {
  const r = await client.completions.create({ model: "tiny", prompt, max_tokens: 8, temperature: 1, seed: 3, n: 3 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  const full = await client.completions.create({ model: "tiny", prompt, max_tokens: 30, temperature: 0, ignore_eos: true });
  const text = full.choices[0].text;
  const stop = text.slice(8, 11);
  const cut = await client.completions.create({ model: "tiny", prompt, max_tokens: 30, temperature: 0, ignore_eos: true, stop: [stop] });
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, "stop");
});

test("errors surface as the client's typed errors", async () => {
  await assert.rejects(
    client.completions.create({ model: "tiny", prompt, temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "temperature");
  await assert.rejects(
    client.chat.completions.create({ model: "tiny", messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "messages");
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found");
});

test("aborting a stream frees the request and the server keeps serving", async () => {
  const controller = new AbortController();
  const stream = await client.completions.create(
    { model: "tiny", prompt, max_tokens: 1500, ignore_eos: true, stream: true }, { signal: controller.signal });
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 3) controller.abort();
  } catch {
    // Depending on timing the client ends the iteration or throws an abort error.
  }
  assert.ok(n >= 3);
  let running = -1;
  for (let i = 0; i < 200 && running !== 0; i++) {
    running = (await (await fetch(`${baseURL}/debug/engine`)).json()).num_running;
    if (running !== 0) await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(running, 0, "the aborted request still runs");
  const r = await client.completions.create({ model: "tiny", prompt, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});

test("logit_bias: +100 on a token makes greedy decoding repeat it", async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: prompt }], max_tokens: 3, temperature: 0, logit_bias: { "1000": 100 } });
  const d = await (await fetch(`${baseURL}/detokenize`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tokens: [1000, 1000, 1000] }) })).json();
  assert.equal(r.choices[0].message.content, d.prompt);
  await assert.rejects(
    client.completions.create({ model: "tiny", prompt, max_tokens: 2, logit_bias: { "x": 1 } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "logit_bias");
});

test("response_format json_object: the content is JSON (or, cut short, its start)", async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: "Answer in JSON." }], max_tokens: 40, seed: 3,
    response_format: { type: "json_object" } });
  const content = r.choices[0].message.content;
  assert.equal(content[0], "{");
  if (r.choices[0].finish_reason === "stop") assert.equal(typeof JSON.parse(content), "object");
});

test("response_format json_schema: the content follows the schema; unsupported keywords are a 400", async () => {
  const schema = { type: "object", properties: { answer: { type: "string", maxLength: 16 }, sure: { type: "boolean" } },
                   required: ["answer", "sure"], additionalProperties: false };
  let stopped = 0;
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: "tiny", messages: [{ role: "user", content: "Who led Israel out of Egypt? Answer in JSON." }],
      max_tokens: 60, seed, response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } } });
    const c = r.choices[0];
    if (c.finish_reason !== "stop") continue;
    stopped++;
    const v = JSON.parse(c.message.content);
    assert.deepEqual(Object.keys(v).sort(), ["answer", "sure"]);
    assert.equal(typeof v.answer, "string");
    assert.ok([...v.answer].length <= 16);
    assert.equal(typeof v.sure, "boolean");
  }
  assert.ok(stopped > 0, "no reply closed its object");
  // A string schema with a pattern: the reply is a JSON string that matches it.
  const word = /^[a-z]+( [a-z]+)*$/;
  const pat = await client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "Say it." }],
    max_tokens: 40, seed: 2,
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: word.source } } } });
  if (pat.choices[0].finish_reason === "stop") assert.match(JSON.parse(pat.choices[0].message.content), word);
  else assert.match(pat.choices[0].message.content, /^"[a-z]+( [a-z]+)* ?[a-z]*$/);
  await assert.rejects(
    client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a+$", maxLength: 3 } } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "response_format" && /pattern/.test(e.message));
});

test("guided_regex (vLLM's extra parameter) through the official client: the text matches whole", async () => {
  const re = /^(Yes|No), [a-z]+( [a-z]+){0,4}\.$/;
  let stopped = 0;
  for (const seed of [1, 2, 3]) {
    const r = await client.completions.create({ model: "tiny", prompt: "Is it good?", max_tokens: 24, seed,
      guided_regex: re.source.slice(1, -1) });
    const c = r.choices[0];
    if (c.finish_reason !== "stop") continue;
    stopped++;
    assert.match(c.text, re);
  }
  assert.ok(stopped > 0, "no reply ended within max_tokens");
  await assert.rejects(client.completions.create({ model: "tiny", prompt: "x", guided_regex: "(a" }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "guided_regex" && /offset 2/.test(e.message));
});

test("tool_choice naming a function: the reply is that tool call", async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: "Weather in Paris?" }], max_tokens: 120, seed: 1,
    tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    tool_choice: { type: "function", function: { name: "get_weather" } }, logit_bias: { "92": 4 } });
  const c = r.choices[0];
  assert.equal(c.finish_reason, "tool_calls");
  assert.equal(c.message.content, null);
  assert.equal(c.message.tool_calls.length, 1);
  assert.equal(c.message.tool_calls[0].function.name, "get_weather");
  assert.equal(typeof JSON.parse(c.message.tool_calls[0].function.arguments), "object");
});

test("a streamed tool call arrives in pieces that the client's stream helper puts together", async () => {
  const body = {
    model: "tiny", messages: [{ role: "user", content: "Weather in Paris?" }], max_tokens: 120, seed: 1,
    tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    tool_choice: { type: "function", function: { name: "get_weather" } }, logit_bias: { "92": 4 } };
  const whole = (await client.chat.completions.create(body)).choices[0].message.tool_calls[0];
  const stream = client.chat.completions.stream(body);
  let fragments = 0;
  stream.on("chunk", (chunk) => {
    for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) if (d.function?.arguments) fragments++;
  });
  const final = await stream.finalChatCompletion();
  const c = final.choices[0];
  assert.equal(c.finish_reason, "tool_calls");
  assert.equal(c.message.tool_calls.length, 1);
  assert.equal(c.message.tool_calls[0].function.name, "get_weather");
  assert.match(c.message.tool_calls[0].id, /^chatcmpl-tool-/);
  assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), JSON.parse(whole.function.arguments));
  assert.ok(fragments > 1, `the arguments came in ${fragments} fragment(s)`);
});

test("responses.create: the chat completion of the same conversation, output_text included", async () => {
  const chat = await client.chat.completions.create({
    model: "tiny", max_tokens: 24, temperature: 0,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a fortune." }] });
  const r = await client.responses.create({
    model: "tiny", instructions: "Be brief.", input: "Tell me a fortune.", max_output_tokens: 24, temperature: 0 });
  assert.match(r.id, /^resp_/);
  assert.equal(r.object, "response");
  assert.equal(r.output_text, chat.choices[0].message.content);  // the SDK's helper over the output items
  assert.equal(r.status, chat.choices[0].finish_reason === "length" ? "incomplete" : "completed");
  assert.equal(r.usage.input_tokens, chat.usage.prompt_tokens);
  assert.equal(r.usage.output_tokens, chat.usage.completion_tokens);
});

test("responses.stream: the SDK's accumulator rebuilds the whole response from the events", async () => {
  const body = { model: "tiny", input: [{ role: "user", content: "Tell me a fortune." }], max_output_tokens: 30, temperature: 0 };
  const whole = await client.responses.create(body);
  const stream = client.responses.stream(body);
  let deltas = "";
  const types = [];
  stream.on("response.output_text.delta", (e) => { deltas += e.delta; });
  stream.on("event", (e) => types.push(e.type));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, whole.output_text);
  assert.equal(deltas, whole.output_text);
  assert.equal(types[0], "response.created");
  assert.equal(types.at(-1), whole.status === "completed" ? "response.completed" : "response.incomplete");
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
});

test("responses: a forced function call, then its output in the next turn, sent whole or after previous_response_id", async () => {
  const tools = [{ type: "function", name: "get_weather", parameters: { type: "object" }, strict: false }];
  const input = [{ role: "user", content: "Weather in Paris?" }];
  const r = await client.responses.create({
    model: "tiny", input, tools, tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 120,
    seed: 1, logit_bias: { "92": 4 } });
  assert.equal(r.status, "completed");
  const call = r.output.find((o) => o.type === "function_call");
  assert.ok(call, JSON.stringify(r.output));
  assert.equal(call.name, "get_weather");
  assert.match(call.call_id, /^call_/);
  assert.equal(typeof JSON.parse(call.arguments), "object");
  const next = await client.responses.create({
    model: "tiny", tools, max_output_tokens: 8, temperature: 0,
    input: [...input, ...r.output, { type: "function_call_output", call_id: call.call_id, output: "Sunny." }] });
  assert.ok(next.usage.input_tokens > r.usage.input_tokens);
  // The same turn continuing the stored response: the same prompt, so the same reply.
  const continued = await client.responses.create({
    model: "tiny", tools, max_output_tokens: 8, temperature: 0, previous_response_id: r.id,
    input: [{ type: "function_call_output", call_id: call.call_id, output: "Sunny." }] });
  assert.equal(continued.usage.input_tokens, next.usage.input_tokens);
  assert.equal(continued.output_text, next.output_text);
  assert.deepEqual(await client.responses.retrieve(r.id), r);
  // The items the continuation read: the first input, the first output, then its own input.
  const read = await client.responses.inputItems.list(continued.id, { order: "asc" });
  assert.deepEqual(read.data.slice(1, 1 + r.output.length), r.output);
  assert.equal(read.data[0].role, "user");
  assert.deepEqual(read.data[0].content, [{ type: "input_text", text: "Weather in Paris?" }]);
  const last = read.data[read.data.length - 1];
  assert.equal(read.data.length, r.output.length + 2);
  assert.equal(last.type, "function_call_output");
  assert.equal(last.call_id, call.call_id);
  assert.equal(last.output, "Sunny.");
  await assert.rejects(
    client.responses.inputItems.list(continued.id, { limit: 0 }), (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(
    client.responses.create({ model: "tiny", input: "x", previous_response_id: "resp_unknown" }),
    (e) => e instanceof OpenAI.NotFoundError);
  // The client's DELETE carries no body (and no Content-Length); afterwards the response is gone.
  await client.responses.delete(r.id);
  await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(client.responses.delete(r.id), (e) => e instanceof OpenAI.NotFoundError);
  const raw = await fetch(`${baseURL}/v1/responses/${continued.id}`, { method: "DELETE" });
  assert.deepEqual(await raw.json(), { id: continued.id, object: "response.deleted", deleted: true });
});

test("responses in the background: queued, polled with retrieve, cancelled with cancel", async () => {
  const params = { model: "tiny", input: "Tell me a fortune.", max_output_tokens: 12, temperature: 0 };
  const queued = await client.responses.create({ ...params, background: true });
  assert.equal(queued.status, "queued");
  assert.equal(queued.background, true);
  let r = queued;
  for (let i = 0; i < 600 && (r.status === "queued" || r.status === "in_progress"); i++) {
    await new Promise((res) => setTimeout(res, 100));
    r = await client.responses.retrieve(queued.id);
  }
  assert.equal(r.status, "completed");
  const fg = await client.responses.create(params);
  assert.equal(r.output_text, fg.output_text);
  const long = await client.responses.create({
    model: "tiny", input: "Tell me a story.", max_output_tokens: 1900, ignore_eos: true, background: true });
  const cancelled = await client.responses.cancel(long.id);
  assert.equal(cancelled.status, "cancelled");
  assert.ok(cancelled.usage.output_tokens < 1900);
  const got = await client.responses.retrieve(long.id);  // the SDK adds output_text to retrieve's only
  assert.equal(got.status, "cancelled");
  assert.deepEqual(got.output, cancelled.output);
  assert.deepEqual(got.usage, cancelled.usage);
  await assert.rejects(client.responses.cancel(fg.id), (e) => e instanceof OpenAI.BadRequestError);
});

test("responses in the background, streamed: create's events, replayed by stream({ response_id }) and retrieve({ stream, starting_after })", async () => {
  const params = { model: "tiny", input: "Tell me a fortune.", max_output_tokens: 20, temperature: 0 };
  const fg = await client.responses.create(params);
  const events = [];
  for await (const e of await client.responses.create({ ...params, background: true, stream: true })) events.push(e);
  assert.deepEqual(events.slice(0, 3).map((e) => e.type), ["response.created", "response.queued", "response.in_progress"]);
  assert.equal(events[0].response.status, "queued");
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.equal(events.at(-1).type, fg.status === "completed" ? "response.completed" : "response.incomplete");
  const id = events[0].response.id;
  // The SDK's helper reads every event (to build its snapshot) and emits those after starting_after.
  const stream = client.responses.stream({ response_id: id, starting_after: 4 });
  const emitted = [];
  stream.on("event", (e) => emitted.push(e.sequence_number));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, fg.output_text);
  assert.equal(final.id, id);
  assert.deepEqual(emitted, events.slice(5).map((e) => e.sequence_number));
  // retrieve with stream and starting_after: the server sends only the later events.
  const rest = [];
  for await (const e of await client.responses.retrieve(id, { stream: true, starting_after: 4 })) rest.push(e);
  assert.deepEqual(rest, events.slice(5));
  await assert.rejects(client.responses.retrieve(fg.id, { stream: true }), (e) => e instanceof OpenAI.BadRequestError);
});

test("/tokenize and /detokenize (vLLM shapes)", async () => {
  const t = await (await fetch(`${baseURL}/tokenize`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt }) })).json();
  assert.equal(t.count, t.tokens.length);
  const d = await (await fetch(`${baseURL}/detokenize`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tokens: t.tokens }) })).json();
  assert.equal(d.prompt, prompt);
});

test("embeddings.create on a pooling server: the client's base64 default and floats agree", async () => {
  const { proc, url } = await startServer(["--runner", "pooling", "--served-model-name", "emb"]);
  try {
    const emb = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const input = ["In the beginning God created the heaven and the earth.", "A computer"];
    const packed = await emb.embeddings.create({ model: "emb", input });  // the client asks for base64
    const floats = await emb.embeddings.create({ model: "emb", input, encoding_format: "float" });
    assert.equal(packed.data.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.equal(packed.data[i].embedding.length, 256);
      assert.deepEqual(Array.from(packed.data[i].embedding, Math.fround), floats.data[i].embedding.map(Math.fround));
      const norm = Math.sqrt(floats.data[i].embedding.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
    }
    assert.ok(packed.usage.prompt_tokens > 0);
    const short = await emb.embeddings.create({ model: "emb", input: "A computer", dimensions: 32 });
    assert.equal(short.data[0].embedding.length, 32);
    await assert.rejects(emb.completions.create({ model: "emb", prompt: "x" }), (e) => e.status === 400);
  } finally {
    await stopServer(proc);
  }
});
