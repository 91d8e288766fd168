import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { openInputFile, readExactly, SIZE_LIMITS } from './files.js';
import { readJsonObject } from './json.js';
import { DTYPES, FORMATS, isDType } from '../kernels/formats.js';
import { type Allocate, numel, type Tensor } from '../kernels/tensor.js';

/** Where tensor bytes are placed; the WASM runtime passes one that carves from its shared memory. */
const allocateHeap: Allocate = (n) => new Uint8Array(n);

export interface TensorInfo {
  dtype: string;
  shape: number[];
}

/** A named collection of tensors that are read on demand (safetensors files, llama2.c checkpoints). */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Reads a float tensor in its stored dtype (no widening to F32). */
  read(name: string, allocate?: Allocate): Tensor;
  /** A tensor's stored bytes, whatever its dtype (q8 values and scales); absent where nothing is stored so. */
  readBytes?(name: string): Uint8Array;
  close(): void;
}

/** The safetensors format's own limit on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;

const ELEMENT_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

interface Entry extends TensorInfo {
  begin: number; // absolute byte offset in the file
  byteLength: number;
}

/** One .safetensors file: the header is parsed and checked on open; tensor bytes are read only when asked. */
export class SafetensorsFile implements TensorSource {
  private readonly entries = new Map<string, Entry>();
  readonly metadata: Record<string, string> = {};

  private constructor(
    readonly file: string,
    private fd: number,
  ) {}

  static open(file: string): SafetensorsFile {
    const { fd, size } = openInputFile(file, 'safetensors file');
    const st = new SafetensorsFile(file, fd);
    try {
      st.parseHeader(size);
    } catch (e) {
      st.close();
      throw e;
    }
    return st;
  }

  private parseHeader(size: number): void {
    const where = `safetensors file ${this.file}`;
    if (size < 8) fail(`${where} is truncated: ${size} bytes, no header length`);
    const lengthBytes = Buffer.alloc(8);
    readExactly(this.fd, lengthBytes, 0, this.file);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES)
      fail(`${where} is corrupt: header length ${headerLength} is above the format's limit of 100 MB`);
    if (8 + headerLength > size) {
      fail(
        `${where} is corrupt: header length ${headerLength} runs past the end of the file (${size} bytes)`,
      );
    }
    const headerBytes = Buffer.alloc(headerLength);
    readExactly(this.fd, headerBytes, 8, this.file);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      fail(`${where} is corrupt: its header is not valid JSON`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      fail(`${where} is corrupt: its header is not a JSON object`);
    }
    const dataStart = 8 + headerLength;
    for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof value !== 'object' || value === null || Array.isArray(value))
          fail(`${where} is corrupt: __metadata__ is not an object`);
        Object.assign(this.metadata, value);
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        fail(`${where} is corrupt: tensor ${name} has entry ${JSON.stringify(value)}, not an object`);
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const elementBytes = typeof v.dtype === 'string' ? ELEMENT_BYTES[v.dtype] : undefined;
      if (elementBytes === undefined)
        fail(`${where}: tensor ${name} has unknown dtype ${JSON.stringify(v.dtype)}`);
      const shape = v.shape;
      const offsets = v.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        fail(`${where}: tensor ${name} has an invalid shape`);
      }
      if (
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every((o) => Number.isInteger(o) && o >= 0)
      ) {
        fail(`${where}: tensor ${name} has invalid data_offsets`);
      }
      const [begin, end] = offsets as [number, number];
      if (end < begin || dataStart + end > size) {
        fail(`${where} is corrupt: tensor ${name} offsets [${begin}, ${end}] are out of range of the file`);
      }
      if (end - begin !== numel(shape) * elementBytes) {
        fail(`${where} is corrupt: tensor ${name} has ${end - begin} bytes for shape [${shape}] ${v.dtype}`);
      }
      this.entries.set(name, {
        dtype: v.dtype as string,
        shape,
        begin: dataStart + begin,
        byteLength: end - begin,
      });
    }
    // Two tensors sharing bytes would alias each other's weights: the file is not what its header says.
    const sorted = [...this.entries]
      .filter(([, e]) => e.byteLength > 0)
      .sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < sorted.length; i++) {
      const [prevName, prev] = sorted[i - 1]!;
      const [name, e] = sorted[i]!;
      if (e.begin < prev.begin + prev.byteLength)
        fail(`${where} is corrupt: the data of tensors ${prevName} and ${name} overlap`);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape };
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) fail(`tensor ${name} is missing from ${this.file}`);
    return e;
  }

  private readBytesOf(e: Entry, into: Uint8Array): void {
    readExactly(this.fd, into.subarray(0, e.byteLength), e.begin, this.file);
  }

  read(name: string, allocate: Allocate = allocateHeap): Tensor {
    const e = this.entry(name);
    const dtype = e.dtype;
    if (isDType(dtype)) {
      const bytes = allocate(e.byteLength);
      this.readBytesOf(e, bytes);
      return { dtype, shape: e.shape, data: FORMATS[dtype].view(bytes) };
    }
    if (e.dtype === 'F64') {
      const raw = new Uint8Array(e.byteLength);
      this.readBytesOf(e, raw);
      const wide = new Float64Array(raw.buffer);
      const bytes = allocate(wide.length * 4);
      const data = new Float32Array(bytes.buffer, bytes.byteOffset, wide.length);
      data.set(wide);
      return { dtype: 'F32', shape: e.shape, data };
    }
    const formats = `${DTYPES.slice(0, -1).join(', ')} or ${DTYPES.at(-1)}`;
    fail(`tensor ${name} in ${this.file} has dtype ${e.dtype}; weights must be ${formats}`);
  }

  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const raw = new Uint8Array(e.byteLength);
    this.readBytesOf(e, raw);
    return raw;
  }

  /** Integer tensors (token ids in reference files). */
  readInts(name: string): number[] {
    const e = this.entry(name);
    const raw = new Uint8Array(e.byteLength);
    this.readBytesOf(e, raw);
    if (e.dtype === 'I64') return Array.from(new BigInt64Array(raw.buffer), Number);
    if (e.dtype === 'I32') return Array.from(new Int32Array(raw.buffer));
    fail(`tensor ${name} in ${this.file} has dtype ${e.dtype}, not an integer type`);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** A sharded checkpoint: `model.safetensors.index.json` maps each tensor to the shard that holds it. */
export class ShardedSafetensors implements TensorSource {
  private constructor(
    private readonly weightMap: Map<string, SafetensorsFile>,
    private readonly shards: SafetensorsFile[],
  ) {}

  static open(indexFile: string): ShardedSafetensors {
    const index = readJsonObject(indexFile, 'safetensors index', SIZE_LIMITS.config);
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) fail(`${indexFile} has no weight_map`);
    const dir = path.dirname(indexFile);
    const byFile = new Map<string, SafetensorsFile>();
    const weightMap = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shardName] of Object.entries(map as Record<string, unknown>)) {
        // A shard is a plain file name inside the model folder: never a path that reaches outside it.
        if (typeof shardName !== 'string' || !isPlainFileName(shardName))
          fail(
            `${indexFile}: weight_map entry ${name} must be a file name in the model folder, got ${JSON.stringify(shardName)}`,
          );
        let shard = byFile.get(shardName);
        if (!shard) {
          const shardPath = path.join(dir, shardName);
          if (!fs.existsSync(shardPath)) fail(`shard ${shardName} named in ${indexFile} is missing`);
          shard = SafetensorsFile.open(shardPath);
          byFile.set(shardName, shard);
        }
        if (!shard.has(name)) fail(`tensor ${name} is not in shard ${shardName} as ${indexFile} says`);
        weightMap.set(name, shard);
      }
    } catch (e) {
      for (const s of byFile.values()) s.close();
      throw e;
    }
    return new ShardedSafetensors(weightMap, [...byFile.values()]);
  }

  names(): string[] {
    return [...this.weightMap.keys()];
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  private shard(name: string): SafetensorsFile {
    const s = this.weightMap.get(name);
    if (!s) fail(`tensor ${name} is missing from the checkpoint`);
    return s;
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  read(name: string, allocate?: Allocate): Tensor {
    return this.shard(name).read(name, allocate);
  }

  readBytes(name: string): Uint8Array {
    return this.shard(name).readBytes(name);
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}

/** A name with no folder part, not `.` or `..`, no NUL: what a shard may be called. */
function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

/** Opens the weights of a Hugging Face model folder, sharded or not. */
export function openSafetensorsFolder(dir: string): TensorSource {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) return ShardedSafetensors.open(index);
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return SafetensorsFile.open(single);
  const any = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  if (any.length === 1) return SafetensorsFile.open(path.join(dir, any[0]!));
  fail(`no model.safetensors or model.safetensors.index.json in ${dir}`);
}
