#!/usr/bin/env node
// Writes tests/tokenizer/probe_goldens.json: tokenizer.json variants that the corpus goldens do
// not reach (regexes that match the empty string, added tokens with lstrip/rstrip that are
// whitespace themselves), each as a patch to a committed synthetic tokenizer.json, with the ids
// HuggingFace `tokenizers` (the Rust library behind the npm package `tokenizers`) gives for a
// few texts. test_tokenizer_probe.cpp applies the same patch and compares.
//
// usage: npm install --prefix /tmp/hftok tokenizers@0.23.2
//        NODE_PATH=/tmp/hftok/node_modules node scripts/goldens/tokenizer_probe_goldens.js
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'tests', 'tokenizer', 'probe_goldens.json');
const BASE = 'tests/data/tokenizer/synthetic/gpt2_bytelevel/tokenizer.json';

const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
const split = (regex, behavior) => ({
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: regex }, behavior, invert: false }, byteLevel] },
});
const words = ['over', 'the tree', 'eee', 'hello there, reader', 'bee  e', 'é e', ''];

// patch: top-level fields to replace; added: tokens appended to added_tokens (ids follow the
// largest id in the file, in this order).
const CASES = [
  // The onig crate's find_iter skips an empty match right where the previous match ended.
  { name: 'split_optional_merged_with_next', patch: split('e?', 'MergedWithNext'), texts: words },
  { name: 'split_optional_merged_with_previous', patch: split('e?', 'MergedWithPrevious'), texts: words },
  { name: 'split_optional_contiguous', patch: split('b?', 'Contiguous'), texts: words },
  { name: 'split_star_isolated', patch: split('o*|\\s', 'Isolated'), texts: words },
  { name: 'split_lookbehind_removed', patch: split('(?<=e)', 'Removed'), texts: words },
  // A match inside the whitespace that the previous token's rstrip took is dropped.
  {
    name: 'added_whitespace_strip',
    added: [
      { content: '\t', single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
      { content: '<n>', single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
    ],
    texts: ['a\t\t\tb', ' \t \t \t', 'x \t\t\t \ty', ' <n> <n>', '\t', 'a \t b\t', ' <n>\t<n> '],
  },
];

(async () => {
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, BASE), 'utf8'));
  const cases = [];
  for (const c of CASES) {
    const j = JSON.parse(JSON.stringify(base));
    Object.assign(j, c.patch || {});
    let next = Math.max(...Object.values(j.model.vocab), ...j.added_tokens.map((a) => a.id)) + 1;
    for (const a of c.added || []) j.added_tokens.push({ id: next++, ...a });
    const tok = Tokenizer.fromString(JSON.stringify(j));
    const ids = [];
    for (const t of c.texts) ids.push((await tok.encode(t, null, { addSpecialTokens: false })).getIds());
    cases.push({ name: c.name, patch: c.patch || {}, added: c.added || [], texts: c.texts, ids });
  }
  const version = require('tokenizers/package.json').version;
  fs.writeFileSync(OUT, JSON.stringify({ meta: { base: BASE, source: `node tokenizers ${version}` }, cases }, null, 1) + '\n');
  console.log(`wrote ${OUT}`);
})();
