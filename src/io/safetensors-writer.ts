import fs from 'node:fs';
import { writeOutputWith } from './files.js';
import { FORMATS } from '../kernels/formats.js';
import { type DType, numel } from '../kernels/tensor.js';

/** I8 / U8: the values of a q8 / q4 weight (its scales are an F32 tensor beside it). */
export type StoredDType = DType | 'I8' | 'U8';
const elementBytes = (d: StoredDType) => (d === 'I8' || d === 'U8' ? 1 : FORMATS[d].bytes);

export interface TensorToWrite {
  name: string;
  dtype: StoredDType;
  shape: number[];
  /** Fills `out` (the tensor's bytes, possibly in several chunks) starting at element `start`. */
  fill(out: Uint8Array, start: number): void;
}

const CHUNK_BYTES = 16 << 20;

/**
 * Writes a .safetensors file tensor by tensor in bounded memory, to a temporary file renamed into place at the
 * end, so an interrupted write never leaves a half-written checkpoint.
 */
export function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
  onProgress?: (bytesDone: number, bytesTotal: number) => void,
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * elementBytes(t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  writeOutputWith(file, 'output', (fd) => {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.length));
    fs.writeSync(fd, length);
    fs.writeSync(fd, headerBytes);
    const chunk = new Uint8Array(CHUNK_BYTES);
    let done = 0;
    for (const t of tensors) {
      const bytesPer = elementBytes(t.dtype);
      const total = numel(t.shape) * bytesPer;
      for (let at = 0; at < total; at += CHUNK_BYTES) {
        const part = chunk.subarray(0, Math.min(CHUNK_BYTES, total - at));
        t.fill(part, at / bytesPer);
        fs.writeSync(fd, part);
        done += part.length;
        onProgress?.(done, offset);
      }
    }
  });
}
