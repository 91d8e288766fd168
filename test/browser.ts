/**
 * The Chromium the browser tests drive through playwright-core, which never downloads one: $WINA_CHROMIUM, or
 * Debian's on this machine, or, when it is missing and the tests run as root, Debian's installed now with
 * apt-get, so that `npm ci && npm test` needs no other step. It says in one line which it uses; the tests never
 * skip for want of a browser.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const DEBIAN = '/usr/bin/chromium';

/** Headless, offline flags both browser tests launch with. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let found: string | undefined;

function say(line: string): void {
  process.stderr.write(`browser tests: ${line}\n`);
}

/** The path of a Chromium binary to launch, installing Debian's if need be (throws, in one line, if it cannot). */
export function chromiumPath(): string {
  if (found) return found;
  const own = process.env.WINA_CHROMIUM;
  if (own) {
    if (!fs.existsSync(own)) throw new Error(`WINA_CHROMIUM=${own} does not exist`);
    say(`using ${own} (WINA_CHROMIUM)`);
    return (found = own);
  }
  if (fs.existsSync(DEBIAN)) {
    say(`using ${DEBIAN}`);
    return (found = DEBIAN);
  }
  if (process.getuid?.() !== 0)
    throw new Error(
      `the browser tests need Chromium: run them as root (they install Debian's chromium), apt-get install chromium, or set WINA_CHROMIUM to a Chromium binary`,
    );
  say(`${DEBIAN} is missing: installing Debian's chromium (apt-get install chromium)`);
  // Test files run in parallel processes and dpkg takes one lock: one install at a time, the others wait for it.
  const script = `test -x ${DEBIAN} || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }`;
  const r = spawnSync('flock', ['/tmp/wina-chromium-install.lock', 'sh', '-c', script], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 900_000,
  });
  if (r.status !== 0 || !fs.existsSync(DEBIAN)) {
    const why = r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`;
    throw new Error(`installing Debian's chromium failed: ${why}`);
  }
  say(`installed ${DEBIAN}`);
  return (found = DEBIAN);
}
