/**
 * vitest globalSetup of the `browser` project: makes sure Debian's chromium is installed
 * (scripts/install-chromium.sh: a no-op when /usr/bin/chromium exists, else apt-get).
 * playwright-core drives that binary; Playwright's own browser downloads are never used.
 */
import { runInstallScript } from '../install-script.ts';

export const CHROMIUM = '/usr/bin/chromium';

export default async function setup(): Promise<void> {
  await runInstallScript('browser', 'install-chromium.sh', 'chromium');
}
