import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WinaError } from '../src/errors.js';
import { sharedPath } from '../src/io/paths.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import {
  HfTokenizer,
  Llama2cTokenizer,
  loadTokenizer,
  StreamDecoder,
  type TextTokenizer,
} from '../src/tokenizer/index.js';

const TOK512 = sharedPath('models/stories260K/tok512.bin');
const BPE1024 = sharedPath('fixtures/tokenizers/bpe1024');
const GPT_NEOX = sharedPath('tokenizers/gpt-neox');

function firstStory(): string {
  const sample = readFileSync(sharedPath('data/tinystories/tinystories_sample.txt'), 'utf8');
  return sample.split('<|endoftext|>')[0]!.trim();
}

/** Streams ids one by one; returns the deltas. */
function streamDeltas(tokenizer: TextTokenizer, ids: number[], skipSpecial = false): string[] {
  const stream = new StreamDecoder(tokenizer, { skipSpecial });
  const deltas = ids.map((id) => stream.push(id));
  deltas.push(stream.flush());
  return deltas;
}

function assertStreamsLikeDecode(tokenizer: TextTokenizer, ids: number[], skipSpecial = false): void {
  const deltas = streamDeltas(tokenizer, ids, skipSpecial);
  assert.equal(deltas.join(''), tokenizer.decode(ids, { skipSpecial }));
  for (const delta of deltas) assert.ok(!delta.includes('\uFFFD'), `delta ${JSON.stringify(delta)}`);
}

describe('HfTokenizer', () => {
  const expected = JSON.parse(
    readFileSync(sharedPath('fixtures/tokenizers/expected_ids.json'), 'utf8'),
  ) as Record<string, { text: string; ids: number[] }[]>;
  const tokenizers: Record<string, string> = { bpe1024: BPE1024, 'gpt-neox': GPT_NEOX };

  for (const [name, dir] of Object.entries(tokenizers)) {
    test(`${name} reproduces expected_ids.json`, () => {
      const tokenizer = HfTokenizer.fromFolder(dir);
      assert.ok(expected[name]!.length > 0);
      for (const { text, ids } of expected[name]!) {
        assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text));
        assert.equal(tokenizer.decode(ids, { skipSpecial: true }), text);
      }
    });
  }

  test('special ids: caller > tokenizer_config.json > post-processor / well-known names', () => {
    const neox = HfTokenizer.fromFolder(GPT_NEOX);
    assert.equal(neox.bosId, 0);
    assert.deepEqual(neox.eosIds, [0]);
    const bpe = HfTokenizer.fromFolder(BPE1024);
    assert.equal(bpe.vocabSize, 1024);
    assert.equal(bpe.bosId, 1); // from `<|bos|> $A`
    assert.deepEqual(bpe.eosIds, [0]); // <|endoftext|>
    assert.equal(bpe.chatTemplate, undefined);
    const overridden = HfTokenizer.fromFolder(BPE1024, { bosId: 5, eosIds: [7, 8] });
    assert.equal(overridden.bosId, 5);
    assert.deepEqual(overridden.eosIds, [7, 8]);
    const story = HfTokenizer.fromFolder(sharedPath('models/tinystories-656k'));
    assert.equal(story.bosId, 1);
    assert.deepEqual(story.eosIds, [2]);
  });

  test('addSpecial: false leaves out the BOS of the post-processor', () => {
    const bpe = HfTokenizer.fromFolder(BPE1024);
    assert.deepEqual(bpe.encode('Hello world').slice(1), bpe.encode('Hello world', { addSpecial: false }));
    assert.equal(bpe.decode([]), '');
  });

  test('chat template: a string, or the "default" of a list', () => {
    const json = JSON.parse(readFileSync(path.join(BPE1024, 'tokenizer.json'), 'utf8'));
    assert.equal(new HfTokenizer(json, { chat_template: '{{ x }}' }).chatTemplate, '{{ x }}');
    const list = [
      { name: 'tool_use', template: 'a' },
      { name: 'default', template: 'b' },
    ];
    assert.equal(new HfTokenizer(json, { chat_template: list }).chatTemplate, 'b');
  });

  test('unreadable or invalid tokenizer.json is a WinaError naming the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wina-tok-'));
    try {
      assert.throws(
        () => HfTokenizer.fromFolder(dir),
        (e) => e instanceof WinaError && /tokenizer\.json/.test(e.message),
      );
      writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": ');
      assert.throws(
        () => HfTokenizer.fromFolder(dir),
        (e) => e instanceof WinaError && e.message.includes(path.join(dir, 'tokenizer.json')),
      );
      writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
      assert.throws(() => HfTokenizer.fromFolder(dir), WinaError);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('Llama2cTokenizer', () => {
  test('encodes the first TinyStories story as the reference ids', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512, { vocabSize: 512 });
    const reference = SafetensorsFile.open(
      sharedPath('fixtures/models/stories260K-hf/reference.safetensors'),
    );
    const expected = reference.readInts('ids');
    reference.close();
    assert.equal(expected.length, 256);
    assert.deepEqual(tokenizer.encode(firstStory()).slice(0, 256), expected);
  });

  test('ids, special tokens and vocabulary size', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512);
    assert.equal(tokenizer.vocabSize, 512);
    assert.equal(tokenizer.bosId, 1);
    assert.deepEqual(tokenizer.eosIds, [2]);
    assert.deepEqual(tokenizer.encode(''), [1]);
    assert.deepEqual(tokenizer.encode('', { addSpecial: false }), []);
    assert.equal(tokenizer.encode('a', { addSpecial: false }).length > 0, true);
  });

  test('matches a literal port of run.c merging on random text', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512);
    const naive = naiveRunCEncoder(readFileSync(TOK512));
    const alphabet = [...'  aabcdeehilmnoorsttuy.,!?\n', 'é', '日', '😀', '™', '\u200a'];
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let trial = 0; trial < 200; trial++) {
      const length = Math.floor(random() * 60);
      const text = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      assert.deepEqual(tokenizer.encode(text), naive(text), JSON.stringify(text));
    }
    const story = firstStory();
    assert.deepEqual(tokenizer.encode(story), naive(story));
  });

  test('decode round trip, byte tokens included', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512);
    for (const text of [firstStory(), 'Hello 日本語 😀 ™ café', ' two  spaces\n']) {
      const ids = tokenizer.encode(text);
      assert.equal(tokenizer.decode(ids, { skipSpecial: true }), text);
      // Without BOS nothing strips the dummy-prefix space.
      assert.equal(tokenizer.decode(tokenizer.encode(text, { addSpecial: false })), ` ${text}`);
    }
    assert.equal(tokenizer.decode([1, 2], { skipSpecial: false }), '\n<s>\n\n</s>\n');
  });

  test('a truncated tokenizer.bin is a WinaError', () => {
    const bytes = readFileSync(TOK512);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wina-tok-'));
    try {
      for (const cut of [2, 4 + 5, bytes.length - 3]) {
        const file = path.join(dir, `cut${cut}.bin`);
        writeFileSync(file, bytes.subarray(0, cut));
        assert.throws(
          () => Llama2cTokenizer.fromFile(file),
          (e) => e instanceof WinaError && e.message.includes(file) && /truncated/.test(e.message),
        );
      }
      assert.throws(() => Llama2cTokenizer.fromFile(TOK512, { vocabSize: 513 }), WinaError);
      assert.throws(() => Llama2cTokenizer.fromFile(path.join(dir, 'missing.bin')), WinaError);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('StreamDecoder', () => {
  test('gpt-neox: multibyte characters split across tokens', () => {
    const tokenizer = HfTokenizer.fromFolder(GPT_NEOX);
    const ids = tokenizer.encode('日本語 😀');
    const deltas = streamDeltas(tokenizer, ids);
    assert.equal(deltas.join(''), '日本語 😀');
    assert.ok(deltas.includes(''), 'held back inside a character');
    assertStreamsLikeDecode(tokenizer, tokenizer.encode('Unicode: café naïve — “quotes” 日本語 😀 end'));
  });

  test('llama2.c: BOS space stripping and byte tokens', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512);
    const ids = tokenizer.encode(`${firstStory().slice(0, 300)} 日本語 😀`);
    assertStreamsLikeDecode(tokenizer, ids, true);
    assertStreamsLikeDecode(tokenizer, [...ids, 1, ...ids, 2], true);
  });

  test('SentencePiece-style and byte-level Hugging Face tokenizers', () => {
    const text = 'Once upon a time, there was a cat. 日本語 😀';
    for (const dir of ['models/tinystories-656k', 'models/llama-28m-mixed']) {
      const tokenizer = loadTokenizer(sharedPath(dir));
      assertStreamsLikeDecode(tokenizer, tokenizer.encode(text), true);
      assertStreamsLikeDecode(tokenizer, tokenizer.encode(text), false);
    }
  });

  test('flush returns an incomplete character that never completed', () => {
    const tokenizer = Llama2cTokenizer.fromFile(TOK512);
    const stream = new StreamDecoder(tokenizer);
    assert.equal(stream.push(0xe6 + 3), ''); // first byte of a 3-byte character
    assert.equal(stream.flush(), '\uFFFD');
  });
});

describe('loadTokenizer', () => {
  test('picks the format from the path', () => {
    assert.ok(loadTokenizer(GPT_NEOX) instanceof HfTokenizer);
    assert.ok(loadTokenizer(path.join(BPE1024, 'tokenizer.json')) instanceof HfTokenizer);
    assert.ok(loadTokenizer(TOK512) instanceof Llama2cTokenizer);
    assert.equal(loadTokenizer(GPT_NEOX, { eosIds: [3] }).eosIds[0], 3);
    assert.throws(() => loadTokenizer(sharedPath('models/stories260K')), WinaError);
    assert.throws(() => loadTokenizer(sharedPath('no/such/tokenizer')), WinaError);
    assert.throws(() => loadTokenizer(sharedPath('tokenizers/llama2/tokenizer.model')), WinaError);
  });
});

/** run.c's encode(), line by line: O(n²) per merge, used only to check the heap-based one. */
function naiveRunCEncoder(file: Uint8Array): (text: string) => number[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const vocab: string[] = [];
  const scores: number[] = [];
  for (let offset = 4; offset < file.length;) {
    scores.push(view.getFloat32(offset, true));
    const length = view.getInt32(offset + 4, true);
    vocab.push(Buffer.from(file.subarray(offset + 8, offset + 8 + length)).toString('latin1'));
    offset += 8 + length;
  }
  const lookup = (s: string) => vocab.indexOf(s);
  return (text) => {
    const bytes = Buffer.from(text, 'utf8');
    const tokens = [1];
    if (bytes.length > 0) tokens.push(lookup(' '));
    let buffer: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i]! & 0xc0) !== 0x80) buffer = [];
      buffer.push(bytes[i]!);
      if (i + 1 < bytes.length && (bytes[i + 1]! & 0xc0) === 0x80 && buffer.length < 4) continue;
      const id = lookup(Buffer.from(buffer).toString('latin1'));
      if (id !== -1) tokens.push(id);
      else tokens.push(...buffer.map((b) => b + 3));
      buffer = [];
    }
    for (;;) {
      let bestScore = -1e10;
      let bestId = -1;
      let bestIndex = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = lookup(vocab[tokens[i]!]! + vocab[tokens[i + 1]!]!);
        if (id !== -1 && scores[id]! > bestScore) {
          bestScore = scores[id]!;
          bestId = id;
          bestIndex = i;
        }
      }
      if (bestIndex === -1) break;
      tokens.splice(bestIndex, 2, bestId);
    }
    return tokens;
  };
}
