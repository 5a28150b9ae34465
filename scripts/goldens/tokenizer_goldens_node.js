#!/usr/bin/env node
// Node twin of tokenizer_goldens.py for machines without Python `tokenizers`: the npm package
// `tokenizers` is HuggingFace's own Rust library behind a Node binding, so its ids are the
// reference ids. It writes the same goldens_<name>.json files, without the transformers (tf_*)
// fields, and times single-threaded encode the same way.
//
// usage: npm install --prefix /tmp/hftok tokenizers@0.23.2
//        NODE_PATH=/tmp/hftok/node_modules node scripts/goldens/tokenizer_goldens_node.js ASSETS_DIR OUT_DIR [--no-bench]
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const ROOT = path.resolve(__dirname, '..', '..');
const CORPUS = path.join(ROOT, 'tests', 'data', 'tokenizer', 'corpus.jsonl');
const SYNTHETIC = path.join(ROOT, 'tests', 'data', 'tokenizer', 'synthetic');

function subdirsWithTokenizer(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort()
    .map((n) => path.join(dir, n))
    .filter((d) => fs.existsSync(path.join(d, 'tokenizer.json')));
}

function findTokenizers(assetsDir) {
  const found = subdirsWithTokenizer(assetsDir).map((d) => [path.basename(d), d, 'real']);
  for (const demo of [path.join(ROOT, 'models', 'tiny-qwen2-demo'),
                      path.join(ROOT, '..', 'shared', 'models', 'tiny-qwen2-demo')]) {
    if (fs.existsSync(path.join(demo, 'tokenizer.json'))) { found.push(['tiny_qwen2_demo', demo, 'demo']); break; }
  }
  for (const d of subdirsWithTokenizer(SYNTHETIC)) found.push(['synthetic_' + path.basename(d), d, 'synthetic']);
  return found;
}

async function makeGoldens(name, folder, kind, texts) {
  const tok = Tokenizer.fromFile(path.join(folder, 'tokenizer.json'));
  const cases = [];
  for (const text of texts) {
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const encSp = await tok.encode(text, null, { addSpecialTokens: true });
    const c = { text, ids: enc.getIds() };
    if (kind !== 'synthetic') c.pieces = enc.getTokens();
    c.ids_special = encSp.getIds();
    c.decode = await tok.decode(encSp.getIds(), false);
    c.decode_skip = await tok.decode(encSp.getIds(), true);
    cases.push(c);
  }
  const version = require('tokenizers/package.json').version;
  return { meta: { name, kind, source: `node tokenizers ${version}`, transformers: null, tf_class: null,
                   vocab_size_with_added: tok.getVocabSize(true) }, cases };
}

async function bench(name, folder, texts, repeat) {
  const tok = Tokenizer.fromFile(path.join(folder, 'tokenizer.json'));
  const lines = [];
  for (let r = 0; r < repeat; r++) lines.push(...texts);
  const doc = lines.join('\n');
  const nbytes = Buffer.byteLength(doc, 'utf8');
  await tok.encode(doc.slice(0, 10000));
  let best = Infinity, nTok = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    nTok = (await tok.encode(doc, null, { addSpecialTokens: false })).getIds().length;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`${name.padEnd(28)} doc ${(nbytes / 1e6).toFixed(2)} MB ${nTok} tok ` +
              `${(nbytes / best / 1e6).toFixed(2)} MB/s ${(nTok / best / 1e6).toFixed(3)} Mtok/s`);
}

(async () => {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const noBench = process.argv.includes('--no-bench');
  if (args.length !== 2) { console.error('usage: tokenizer_goldens_node.js ASSETS_DIR OUT_DIR [--no-bench]'); process.exit(2); }
  const [assetsDir, outDir] = args;
  const texts = fs.readFileSync(CORPUS, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).text);
  fs.mkdirSync(outDir, { recursive: true });
  const found = findTokenizers(assetsDir);
  for (const [name, folder, kind] of found) {
    const g = await makeGoldens(name, folder, kind, texts);
    const p = path.join(outDir, `goldens_${name}.json`);
    fs.writeFileSync(p, JSON.stringify(g) + '\n');
    console.log(`wrote ${p} (${(fs.statSync(p).size / 1e3).toFixed(0)} kB)`);
  }
  if (!noBench) {
    console.log('encode timing (best of 3; RAYON_NUM_THREADS=1 for one thread):');
    for (const [name, folder, kind] of found) if (kind !== 'synthetic') await bench(name, folder, texts, 50);
  }
})();
