/**
 * `npm run bench`: the kernel benchmark, then the linear-algebra one, each in its own process (each fills
 * memory its own way), with this command's arguments (--write, --quick).
 */
import { spawnSync } from 'node:child_process';

for (const name of ['kernels', 'linalg']) {
  const script = new URL(`./${name}.js`, import.meta.url).pathname;
  const { status } = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
