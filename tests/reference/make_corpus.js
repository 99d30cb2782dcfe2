// Writes the tokenizer test corpus (one JSON string per line, {"text": ...}) to stdout.
//
// Deterministic: a fixed-seed PRNG picks from hand-written pools, so rerunning gives the same
// file. The pools cover what prompts and answers in causal-tracing studies contain (CounterFact
// style facts) and what tends to break tokenizers: accents and combining marks (NFC vs NFD), CJK,
// 4-byte characters (emoji, math letters), digit runs, whitespace runs, contractions, code and
// special-token text inside user strings.
'use strict';

let seed = 0x9e3779b9;
function rand() { // xorshift32
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const randint = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const subjects = [
  'Danielle Darrieux', 'Edwin of Northumbria', 'Toko Yasuda', 'Autonomous University of Madrid',
  'Thomas Joannes Stieltjes', 'Anaal Nathrakh', 'Apple A5', 'Honda Civic', 'Shibuya',
  'Kuala Lumpur', 'Björk', 'Antonín Dvořák', 'François Mitterrand', 'Zoë Saldaña', 'Łódź',
  'São Paulo', 'Nguyễn Phú Trọng', 'Søren Kierkegaard', 'Ólafur Arnalds', 'İstanbul',
  'Gdańsk', 'Þingvellir', 'Mikhail Gorbachev', 'Михаил Горбачёв', 'Ἀριστοτέλης', '東京',
  '北京大学', '孫文', 'ソニー', '삼성전자', 'Ernő Rubik', 'Dvořák', 'Mötley Crüe', 'Beyoncé',
  'Häagen-Dazs', "McDonald's", 'AT&T', 'C++', 'Windows 95', 'iPhone 15 Pro', 'BMW X5',
  'Pokémon', 'Renée Zellweger', 'Chișinău', 'Reykjavík', 'Malmö', 'Ciudad Juárez', 'Nuuk',
  'Ouagadougou', 'Johann Sebastian Bach', 'Marie Curie', 'Ada Lovelace', 'Alan Turing',
  'Srinivasa Ramanujan', 'Mahatma Gandhi', 'महात्मा गांधी', 'القاهرة', 'תל אביב', 'กรุงเทพมหานคร',
];
const templates = [
  'The mother tongue of {} is', '{} is a native speaker of', '{} was born in', '{} is located in the country of',
  'The headquarters of {} is in', '{}, developed by', '{} plays the', '{} is a product of',
  'The capital of {} is', '{} works in the field of', '{} is affiliated with the religion of',
  "{}'s occupation is", 'In {}, the official language is', '{} was originally aired on',
  '{} is a part of the continent of', 'The original language of {} was', '{} holds a citizenship from',
  'What is the twin city of {}? It is', '{} died in the city of', '{} plays in the position of',
];
const answers = [
  'French', 'English', 'Paris', 'London', 'Tokyo', 'Japan', 'Italy', 'Microsoft', 'Apple',
  'Google', 'Nokia', 'Toyota', 'BBC', 'NBC', 'CBS', 'piano', 'guitar', 'jazz', 'Christianity',
  'Islam', 'Buddhism', 'physics', 'mathematics', 'Europe', 'Asia', 'Africa', 'Antarctica',
  'goalkeeper', 'midfielder', 'quarterback', 'Swedish', 'Norwegian', 'Russian', 'Chinese',
  'Dutch', 'Spanish', 'Portuguese', 'Finnish', 'Hungarian', 'Latin', 'Greek', 'Hebrew',
  'München', 'Zürich', 'Genève', 'Kraków', 'Москва', '日本語', '中文', '한국어', 'Ελληνικά',
];
const words = [
  'the', 'of', 'and', 'a', 'to', 'in', 'is', 'you', 'that', 'it', 'he', 'was', 'for', 'on',
  'are', 'as', 'with', 'his', 'they', 'I', 'at', 'be', 'this', 'have', 'from', 'or', 'one',
  'had', 'by', 'word', 'but', 'not', 'what', 'all', 'were', 'we', 'when', 'your', 'can', 'said',
  'tokenization', 'antidisestablishmentarianism', 'supercalifragilisticexpialidocious',
  'naïve', 'café', 'résumé', 'coöperate', 'façade', 'jalapeño', 'über', 'Straße', 'œuvre',
  'ﬁnance', 'Ⅻ', 'ǅ', 'ǈ', 'ß', 'ẞ', 'İ', 'ı', 'ſ', 'K', 'Å', 'µ', 'ﬀ',
  'HTTP', 'URL', 'GPU', 'Vulkan', 'llama.cpp', 'GGUF', 'MoE', 'Qwen3-30B-A3B',
];
const contractions = [
  "don't", "can't", "won't", "I'm", "you're", "we've", "they'll", "she'd", "it's", "He's",
  "DON'T", "I'M", "YOU'RE", "WE'VE", "THEY'LL", "SHE'D", "IT'S", "o'clock", "rock'n'roll",
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'mM", "''", "'''",
  "’s", "don’t", "l'homme", "aujourd'hui",
];
const cjk = [
  '你好，世界！', '我爱自然语言处理。', '机器学习是人工智能的一个分支', '東京都は日本の首都です。',
  'こんにちは、元気ですか？', 'カタカナとひらがな', '한국어 문장입니다.', '漢字仮名交じり文',
  '中华人民共和国成立于1949年10月1日。', '「引用」と『二重引用』', '全角ＡＢＣ１２３', '𠀀𠀁𪚥𩸽',
];
const emoji = [
  '😀', '😂🤣', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵🇫🇷', '❤️', '🤖', '🚀✨', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '𝐁𝐨𝐥𝐝', '𓀀𓀁', '🧑🏿‍💻', '🫠', '©®™', '✓✗', '→⇒↔', '∑∫∂√∞', '½¼¾', '€$£¥₹₿',
];
const combining = [
  'e\u0301', 'a\u0300', 'n\u0303', 'o\u0308', 'A\u030a', 'c\u0327', 'u\u0308\u0301',
  'Cafe\u0301', 'nai\u0308ve', 'Zoe\u0308', 'q\u0307\u0323', 'ệ', 'e\u0323\u0302',
  '\u0301', '\u0301\u0301x', 'Ấ', 'ñ', 'Å', 'Ω', 'ḱṷṓn', 'ก\u0e34\u0e4c', 'अ\u093f', '\u1100\u1161\u11a8',
];
const code = [
  'def f(x):\n    return x + 1\n', 'for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}',
  '#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }',
  'const x = {a: 1, "b": [2, 3]};', 'SELECT * FROM users WHERE id = 42;', '<div class="x">&nbsp;</div>',
  'if x != None and y >= 3:\n\t\tpass', 'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }',
  '$ ls -la | grep ".c$" > out.txt 2>&1', '    indented    code\n\n\n    more', 'a_b-c.d/e\\f',
  'x=1;y=2;z=x**y//3%4', '```python\nprint("hi")\n```', '{{ template }} {% if %}', '@decorator\nclass A:',
  'https://example.org/path?q=1&r=%20#frag', 'user@example.com', '0x1F 0b1010 1e-9 3.14159',
];
const specials = [
  '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<tool_call>',
  '<|vision_start|>', '<s>', '</s>', '<unk>', '<|im_start|', '<|im_start>', '<<|im_end|>>',
  '<|im_start|><|im_end|>', '< s>', '<s >', '<0x41>', '<|fim_prefix|>', '<|endoftext|>x',
];
const spaces = [' ', '  ', '   ', '    ', '\t', '\t\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\u00a0', '\u3000', '\u2003', ' \t \n', '\u2028', '\u000b', '\f'];

function number() {
  const r = rand();
  if (r < 0.3) return String(randint(0, 100));
  if (r < 0.5) return String(randint(1000, 9999));
  if (r < 0.7) { let s = ''; const n = randint(5, 40); for (let i = 0; i < n; i++) s += randint(0, 9); return s; }
  if (r < 0.8) return randint(1, 999) + ',' + String(randint(0, 999)).padStart(3, '0') + ',' + String(randint(0, 999)).padStart(3, '0');
  if (r < 0.9) return (rand() * 1000).toFixed(randint(1, 6));
  return '١٢٣٤٥';
}
function piece() {
  const r = rand();
  if (r < 0.30) return pick(words);
  if (r < 0.40) return pick(contractions);
  if (r < 0.48) return number();
  if (r < 0.56) return pick(subjects);
  if (r < 0.62) return pick(cjk);
  if (r < 0.68) return pick(emoji);
  if (r < 0.74) return pick(combining);
  if (r < 0.78) return pick(code);
  if (r < 0.83) return pick(specials);
  if (r < 0.88) return pick(answers);
  return pick(['.', ',', '!', '?', '...', ';', ':', '-', '--', '—', '(', ')', '"', "'", '«»', '¿', '¡', '/', '*', '#']);
}
function sep() { return rand() < 0.75 ? ' ' : pick(spaces); }

const out = [];
const seen = new Set();
function add(s) { if (!seen.has(s)) { seen.add(s); out.push(s); } }

// Edge cases first, written out.
['', ' ', '  ', '\n', '\t', 'a', ' a', 'a ', '  a', 'a  ', 'Hello', ' Hello', 'Hello world', 'Hello  world',
 'hello\n\nworld', '\n\n\n', ' \n \n ', '   \t\t   ', 'x\r\ny', '\r', "I'm", " 's", "'s'", '1', '12', '123',
 '1234', '12345', '1234567890', '00000000000000000000', '3.14', '-1', '1e10', '😀', ' 😀', '😀😀',
 'é', 'e\u0301', ' e\u0301', '\u0301', 'ǅ', 'ﬁ', '<|im_start|>', '<|im_start|>user\nhi<|im_end|>',
 '<s>', ' <s>', '<s> ', '<s>hi', 'a<s>b', '</s></s>', '<unk>', '<0x0A>', '▁', '▁▁', 'a▁b', ' ▁ ',
 '\u00a0', '\ufeff', 'x\ufeffy', '\u0085', 'a\u0085b', '\u2028', '\u200b', '\u200d', 'Ａ', 'ｱ',
 '\u0000', 'a\u0000b', '\u007f', '\u0001\u0002', 'ÿ', 'Ā', 'Ġ', 'Ċ', 'ĉ', '\\', '\\n', '%', '{}',
].forEach(add);

// CounterFact-style prompts, answers and prompt+answer pairs.
for (const t of templates) for (let k = 0; k < 12; k++) {
  const p = t.replace('{}', pick(subjects));
  add(p);
  const a = pick(answers);
  add(a); add(' ' + a); add(p + ' ' + a);
}
for (const s of subjects) { add(s); add(' ' + s); }
for (const a of answers) { add(a); add(' ' + a); add(a.toUpperCase()); add(a.toLowerCase()); }

// Random mixtures until the corpus has 2,400 strings.
while (out.length < 2400) {
  const n = randint(1, 14);
  let s = rand() < 0.1 ? pick(spaces) : '';
  for (let i = 0; i < n; i++) { s += piece(); if (i + 1 < n) s += sep(); }
  if (rand() < 0.1) s += pick(spaces);
  if (rand() < 0.05) s = s.normalize('NFD');
  add(s);
}
// A few long strings (throughput, long-word BPE, whitespace runs).
let longText = '';
for (let i = 0; i < 400; i++) longText += piece() + sep();
add(longText);
add('a'.repeat(3000));
add(' '.repeat(1000) + 'x');
add('9'.repeat(2000));
add('😀'.repeat(500));
add('ab'.repeat(1500));
add('\n'.repeat(300) + 'end');

for (const s of out) process.stdout.write(JSON.stringify({ text: s }) + '\n');
