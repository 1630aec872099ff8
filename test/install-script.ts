// Runs one of the project's Debian install scripts (scripts/install-*.sh) for a vitest
// globalSetup: bounded in time, its output kept for the error, one line said on success.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INSTALL_TIMEOUT_MS = 10 * 60_000; // apt-get update + install: ~10 s here, slow mirrors vary

/** Runs `scripts/<script>`; throws with the script's last lines when it fails. */
export async function runInstallScript(tag: string, script: string, what: string): Promise<void> {
  const path = join(ROOT, 'scripts', script);
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn('bash', [path], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    const timer = setTimeout(() => {
      output += `\n[${tag}] ${script} timed out after ${INSTALL_TIMEOUT_MS} ms\n`;
      child.kill('SIGTERM');
    }, INSTALL_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`[${tag}] cannot run ${path}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (code !== 0) {
    throw new Error(`[${tag}] scripts/${script} failed (exit ${code}) after ${secs} s:\n${output.trimEnd().split('\n').slice(-40).join('\n')}`);
  }
  console.log(`[${tag}] ${what}: ${/already installed/.test(output) ? 'already installed' : 'installed'} (${secs} s)`);
}
