/**
 * Files from and to the user, checked before they are used. An input must be a regular file (a FIFO or a
 * device such as /dev/zero would hang the reader or fill memory), opened without blocking and read with a size
 * limit that fits its kind. An output is written to a temporary file beside the target and renamed into place,
 * never onto a device, FIFO, socket or folder, and its temporary file is removed when anything fails; a folder
 * output (a checkpoint) is built whole in a temporary folder and renamed into place at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail, WinaError } from '../errors.js';

const MiB = 2 ** 20;

/** Size limits per kind of input: far above any real file of the kind, far below what fills memory. */
export const SIZE_LIMITS = {
  /** config.json, generation_config.json, a safetensors index. */
  config: 64 * MiB,
  /** tokenizer.json, profiles, results, other JSON documents. */
  json: 512 * MiB,
  /** Data sets and task files (read whole as one string: V8's string limit is ~512 MiB). */
  text: 500 * MiB,
  /** Chat templates. */
  template: 4 * MiB,
} as const;

/** "a FIFO", "a folder", ...: what a path that is not a regular file is. */
function kindOf(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** One line for a failed open or stat of `file`: missing, a dangling or looping symlink, unreadable. */
function failOpen(e: unknown, what: string, file: string): never {
  if (e instanceof WinaError) throw e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    const link = lstatOrUndefined(file);
    if (link?.isSymbolicLink()) fail(`${what} ${file} is a symlink to a path that does not exist`);
    fail(`${what} ${file} does not exist`);
  }
  if (code === 'ELOOP') fail(`${what} ${file} is a symlink loop`);
  if (code === 'EACCES' || code === 'EPERM') fail(`${what} ${file} cannot be read: permission denied`);
  if (code === 'ENOTDIR') fail(`${what} ${file}: a part of the path is not a folder`);
  if (code === 'ENXIO') fail(`${what} ${file} is a socket, not a regular file`);
  if (code === 'ENAMETOOLONG') fail(`${what} path is too long`);
  fail(`cannot open ${what} ${file}: ${code ?? (e as Error).message}`);
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

/** What `file` is (following symlinks), or a one-line error when it cannot be looked at. */
export function statInput(file: string, what: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    failOpen(e, what, file);
  }
}

/**
 * Opens a regular file for reading. O_NONBLOCK makes opening a FIFO return at once (it would wait for a writer),
 * and fstat on the open descriptor judges the file actually opened, not the one a racing rename left behind.
 */
export function openInputFile(file: string, what: string, limit?: number): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    failOpen(e, what, file);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    fail(`${what} ${file} is ${kindOf(st)}, not a regular file`);
  }
  if (limit !== undefined && st.size > limit) {
    fs.closeSync(fd);
    fail(
      `${what} ${file} is ${formatBytes(st.size)}, larger than the ${formatBytes(limit)} such a file may be`,
    );
  }
  return { fd, size: st.size };
}

/** Reads `length` bytes at `position`, all of them, or fails naming the file as truncated. */
export function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) fail(`${file} ended early (changed while being read?)`);
    done += n;
  }
}

/** A whole regular file, at most `limit` bytes. */
export function readInputBytes(file: string, what: string, limit: number): Buffer {
  const { fd, size } = openInputFile(file, what, limit);
  try {
    const bytes = Buffer.alloc(size);
    readExactly(fd, bytes, 0, file);
    return bytes;
  } catch (e) {
    if (e instanceof WinaError) throw e;
    fail(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A whole regular text file (UTF-8), at most `limit` bytes. */
export function readInputText(file: string, what: string, limit: number = SIZE_LIMITS.text): string {
  return readInputBytes(file, what, limit).toString('utf8');
}

/** A JSON document from a regular file; `what` names it in the one-line errors ("config", "profile"). */
export function readInputJson(file: string, what: string, limit: number = SIZE_LIMITS.json): unknown {
  const text = readInputText(file, what, limit);
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Whether `file` exists as a regular file (following symlinks); false for folders, FIFOs, devices. */
export function isRegularFile(file: string): boolean {
  return statOrUndefined(file)?.isFile() ?? false;
}

/**
 * The files under `root` whose names end with one of `extensions`, recursively and sorted, following symlinks
 * to files and folders (each folder once, so a symlink loop ends). A dangling or looping symlink among them is a
 * one-line error naming it, as is a matching entry that is not a regular file.
 */
export function listInputFiles(root: string, extensions: string[], what: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (dir: string) => {
    const real = fs.realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort((a, b) => a.localeCompare(b));
    } catch (e) {
      failOpen(e, what, dir);
    }
    for (const name of names) {
      const file = path.join(dir, name);
      const st = statInput(file, what);
      if (st.isDirectory()) visit(file);
      else if (extensions.some((ext) => name.endsWith(ext))) {
        if (!st.isFile()) fail(`${what} ${file} is ${kindOf(st)}, not a regular file`);
        out.push(file);
      }
    }
  };
  if (!statInput(root, what).isDirectory()) fail(`${what} ${root} is not a folder`);
  visit(root);
  return out;
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** The folder an output goes into: it must exist, be a folder and be writable. */
function checkOutputParent(dir: string, flag: string): void {
  const st = statOrUndefined(dir);
  if (!st) fail(`${flag}: folder ${dir} does not exist`);
  if (!st.isDirectory()) fail(`${flag}: ${dir} is not a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK); // EROFS on a read-only mount, even for root
  } catch (e) {
    fail(`${flag}: folder ${dir} is not writable (${(e as NodeJS.ErrnoException).code})`);
  }
  // Root passes access() on kernel file systems that still refuse new files; a probe file would touch the folder.
  const pseudo = PSEUDO_FILE_SYSTEMS[fs.statfsSync(dir).type];
  if (pseudo) fail(`${flag}: folder ${dir} is not writable (it is on ${pseudo})`);
}

/** statfs magic numbers of kernel file systems where no output can be created. */
const PSEUDO_FILE_SYSTEMS: Record<number, string> = {
  0x62656572: 'sysfs',
  0x9fa0: 'procfs',
  0x64626720: 'debugfs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroupfs',
  0x63677270: 'cgroup2fs',
};

/**
 * Checks, before any work is done, that `file` can be written as an output: its folder exists and is writable,
 * and `file` is absent or a regular file (a symlink to one is followed). Returns the path to write.
 */
export function checkOutputFile(file: string, flag: string): string {
  if (file === '') fail(`${flag} needs a file name`);
  const target = path.resolve(file);
  const link = lstatOrUndefined(target);
  if (link) {
    const st = statOrUndefined(target);
    if (!st) fail(`${flag}: ${file} is a dangling or looping symlink`);
    if (!st.isFile())
      fail(`${flag}: ${file} exists and is ${kindOf(st)}, not a regular file: refusing to replace it`);
    const real = fs.realpathSync(target);
    checkOutputParent(path.dirname(real), flag);
    return real;
  }
  checkOutputParent(path.dirname(target), flag);
  return target;
}

/** A temporary name beside `target`, hidden, unique to this process and call. */
function temporaryBeside(target: string): string {
  const suffix = `${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  return path.join(path.dirname(target), `.${path.basename(target)}.${suffix}`);
}

/** A file-system error (ENOSPC, EACCES, ...) as one line; anything else (a bug) is rethrown as it is. */
function failWrite(e: unknown, flag: string, file: string): never {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof WinaError || typeof code !== 'string') throw e;
  const reason =
    code === 'ENOSPC'
      ? 'no space left on the device'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'EDQUOT'
            ? 'disk quota exceeded'
            : code;
  fail(`${flag}: cannot write ${file}: ${reason}`);
}

/**
 * Writes an output file through `write(fd)` into a temporary file beside it, then renames it into place; on any
 * failure the temporary file is removed and the target is left as it was.
 */
export function writeOutputWith(file: string, flag: string, write: (fd: number) => void): void {
  const target = checkOutputFile(file, flag);
  const tmp = temporaryBeside(target);
  let fd = -1;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    write(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    failWrite(e, flag, file);
  }
}

/** Writes a whole output file (text or bytes) safely; see writeOutputWith. */
export function writeOutputFile(file: string, data: string | Uint8Array, flag = 'output'): void {
  writeOutputWith(file, flag, (fd) => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
  });
}

/** Writes a JSON document (pretty-printed with `indent`, newline-terminated) safely. */
export function writeOutputJson(file: string, value: unknown, flag = 'output', indent?: number): void {
  writeOutputFile(file, `${JSON.stringify(value, null, indent)}\n`, flag);
}

/**
 * Checks, before any work is done, that `dir` can be written as an output folder: its parent exists and is
 * writable; `dir` is absent, an empty folder, or a folder holding only files named in `replaceable` (an earlier
 * output of the same command); and it is neither one of `sources` nor inside one, nor holds one.
 */
export function checkOutputFolder(
  dir: string,
  flag: string,
  o: { replaceable: string[]; sources?: string[] },
): string {
  if (dir === '') fail(`${flag} needs a folder name`);
  const target = path.resolve(dir);
  for (const source of o.sources ?? []) {
    const from = fs.realpathSync(source);
    const to = statOrUndefined(target) ? fs.realpathSync(target) : target;
    const inside = (a: string, b: string) => a === b || a.startsWith(b + path.sep);
    if (inside(to, from) || inside(from, to))
      fail(
        `${flag} ${dir} is the model's own folder (or holds it, or lies inside it): choose another folder`,
      );
  }
  const link = lstatOrUndefined(target);
  if (link) {
    if (link.isSymbolicLink()) fail(`${flag}: ${dir} is a symlink: give the folder itself`);
    if (!link.isDirectory()) fail(`${flag}: ${dir} exists and is ${kindOf(link)}, not a folder`);
    const foreign = fs.readdirSync(target).filter((name) => !o.replaceable.includes(name));
    if (foreign.length > 0) {
      fail(
        `${flag}: ${dir} already holds other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}): ` +
          'choose a new or empty folder',
      );
    }
  }
  checkOutputParent(path.dirname(target), flag);
  return target;
}

/**
 * Builds an output folder through `build(tmpDir)` in a temporary folder beside `dir`, then puts it in place of
 * `dir` (an earlier output there is replaced only once the new one is complete). On failure the temporary
 * folder is removed and `dir` is left as it was.
 */
export function writeOutputFolder(
  dir: string,
  flag: string,
  o: { replaceable: string[]; sources?: string[] },
  build: (tmpDir: string) => void,
): void {
  const target = checkOutputFolder(dir, flag, o);
  const tmp = temporaryBeside(target);
  const old = `${tmp}.old`;
  try {
    fs.mkdirSync(tmp);
    build(tmp);
    if (statOrUndefined(target)) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (statOrUndefined(old) && !statOrUndefined(target)) fs.renameSync(old, target);
    failWrite(e, flag, dir);
  }
  fs.rmSync(old, { recursive: true, force: true });
}
