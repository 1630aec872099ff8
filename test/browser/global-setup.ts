/**
 * vitest globalSetup of the `browser` project: makes sure Debian's chromium is installed
 * (scripts/install-chromium.sh: a no-op when /usr/bin/chromium exists, else apt-get).
 * playwright-core drives that binary; Playwright's own browser downloads are never used.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = join(ROOT, 'scripts/install-chromium.sh');
const INSTALL_TIMEOUT_MS = 10 * 60_000; // apt-get update + install: ~11 s here, slow mirrors vary

export const CHROMIUM = '/usr/bin/chromium';

export default async function setup(): Promise<void> {
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn('bash', [INSTALL], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    const timer = setTimeout(() => {
      output += `\n[browser] install-chromium.sh timed out after ${INSTALL_TIMEOUT_MS} ms\n`;
      child.kill('SIGTERM');
    }, INSTALL_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`[browser] cannot run ${INSTALL}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (code !== 0) {
    throw new Error(`[browser] scripts/install-chromium.sh failed (exit ${code}) after ${secs} s:\n${output.trimEnd().split('\n').slice(-40).join('\n')}`);
  }
  console.log(`[browser] chromium: ${/already installed/.test(output) ? 'already installed' : 'installed'} (${secs} s)`);
}
