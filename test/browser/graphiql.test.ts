// GraphiQL in a real browser (Debian's chromium via playwright-core): the page the gateway
// serves works offline (every request it makes goes to the gateway), shows the schema docs
// and the example operations with the demo header, and runs the token listing.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHttpGateway, type HttpGateway } from '../http-gateway.ts';
import { CHROMIUM } from './global-setup.ts';
import { graphiqlDemo } from '../../src/emulator/demo-examples.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOT = join(ROOT, 'test-results/graphiql.png');

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Monaco renders spaces as U+00A0: compare text with whitespace collapsed. */
const textOf = async (locator: ReturnType<Page['locator']>) => (await locator.innerText()).replace(/\s+/g, ' ');

let gw: HttpGateway;
let userDataDir: string;
let context: BrowserContext;
let page: Page;
/** Every request the page (and its workers) made, and every WebSocket it opened. */
const requests: string[] = [];

beforeAll(async () => {
  gw = await startHttpGateway(() => ({ graphiqlDemo: graphiqlDemo() }));
  userDataDir = await mkdtemp(join(tmpdir(), 'token-gateway-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: ARGS,
    viewport: { width: 1600, height: 900 },
    colorScheme: 'light',
  });
  context.on('request', (r) => requests.push(r.url()));
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (r) => requests.push(r.url()));
  page.on('websocket', (ws) => requests.push(ws.url()));
});

afterAll(async () => {
  await context?.close();
  await gw?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

describe('GraphiQL in chromium', () => {
  test('renders offline, with the schema docs, the example operations and the demo header', async () => {
    const res = await page.goto(gw.url);
    expect(res?.status()).toBe(200);
    // The schema came in by introspection: the docs list the root types.
    await page.locator('.graphiql-doc-explorer').getByText('Mutation', { exact: true }).waitFor({ timeout: 30_000 });
    const editor = page.locator('.graphiql-query-editor');
    await editor.locator('.view-line', { hasText: 'query ListTokens' }).waitFor();

    await page.getByText('Headers', { exact: true }).click();
    await expect.poll(() => textOf(page.locator('.graphiql-editor-tool'))).toContain('Bearer demo-idaas-access-token-full');
    await page.getByText('Variables', { exact: true }).click();
  });

  test('runs ListTokens and shows the token ids', async () => {
    const listing = page.waitForResponse(
      (r) => r.request().method() === 'POST' && (r.request().postData() ?? '').includes('"operationName":"ListTokens"'),
    );
    // Cursor into the ListTokens operation (at the start of its line), then Ctrl+Enter.
    await page.locator('.graphiql-query-editor .view-line', { hasText: 'query ListTokens' }).click({ position: { x: 2, y: 5 } });
    await page.keyboard.press('Control+Enter');
    const res = await listing;
    expect(res.status()).toBe(200);
    const body = (await res.json()) as { data?: any; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data.instance.authenticationTokens.totalCount).toBe(25);

    const result = page.locator('.graphiql-response');
    await expect.poll(() => textOf(result), { timeout: 10_000 }).toMatch(/atntkn_demo2\d{4}/);
    expect(await textOf(result)).toContain('"totalCount": 25');

    await mkdir(join(ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    // docs/graphiql.png (README) is a copy of a good one: `cp test-results/graphiql.png docs/`.
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await copyFile(SCREENSHOT, join(ROOT, 'docs/graphiql.png'));
  });

  test('no request left the host: every one went to the gateway (or a blob: of its page)', () => {
    expect(requests.length).toBeGreaterThan(2);
    const foreign = requests.filter((u) => {
      const url = new URL(u);
      if (url.protocol === 'data:') return false;
      // blob: URLs (GraphiQL's inlined Monaco workers) carry the page's origin.
      return url.origin !== gw.origin;
    });
    expect(foreign).toEqual([]);
  });
});
