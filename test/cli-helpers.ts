import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');

/** Runs the real CLI in a child process; a case that has not ended within `timeoutMs` is killed (a hang). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, WINA_DEBUG: '', ...env },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Exit code 2 and exactly one line on stderr, `wina <command>: ...`, that names the problem; no stack. */
export function assertUserError(
  args: string[],
  phrase: string | RegExp,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): string {
  const r = runCli(args, env, timeoutMs);
  const stderr = r.stderr.trim();
  assert.notEqual(r.signal, 'SIGKILL', `wina ${args.join(' ')} did not end within ${timeoutMs} ms`);
  assert.equal(r.status, 2, `exit status ${r.status} for wina ${args.join(' ')}; stderr:\n${r.stderr}`);
  assert.ok(stderr.length > 0, 'stderr is empty');
  assert.equal(stderr.split('\n').length, 1, `stderr is not one line:\n${r.stderr}`);
  assert.ok(stderr.startsWith(`wina ${args[0]}: `), `stderr: ${stderr}`);
  if (typeof phrase === 'string') assert.ok(stderr.includes(phrase), `"${phrase}" not in: ${stderr}`);
  else assert.match(stderr, phrase);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'stack trace on stderr');
  assert.doesNotMatch(r.stderr, /\b\w*Error: /, 'error dump on stderr');
  assert.doesNotMatch(r.stderr, /internal error/, 'an internal error, not a user error');
  return stderr;
}
