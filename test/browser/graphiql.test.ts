// GraphiQL in a real browser (Debian's chromium via playwright-core): the page the gateway
// serves works offline (every request it makes goes to the gateway, and it works with every
// other host blocked), shows the schema docs and the example operations with the demo header,
// and runs the token listing. Its files come once: a second load takes them from the
// browser's cache. What the gateway sends on a first load and on a reload is measured on its
// sockets (headers and compressed bodies, as on the wire).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
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

/** What reached the gateway's socket (node:http's diagnostics channels): request lines, and bytes sent. */
const served: string[] = [];
const sockets = new Set<Socket>();
let inFlight = 0;
const bytesSent = () => [...sockets].reduce((n, s) => n + s.bytesWritten, 0);
const ours = (socket: Socket) => gw !== undefined && socket.localPort === Number(new URL(gw.origin).port); // not the emulator's
const onRequest = (message: unknown) => {
  const { request, socket } = message as { request: IncomingMessage; socket: Socket };
  if (!ours(socket)) return;
  sockets.add(socket);
  inFlight++;
  served.push(`${request.method} ${request.url}`);
};
const onFinish = (message: unknown) => {
  if (ours((message as { socket: Socket }).socket)) inFlight--;
};
const assetRequests = () => served.filter((r) => r.includes('/graphql/assets/'));

/** Bytes the gateway sent for a first load and for a reload of the page (measured below). */
const measured: { firstLoad?: number; reload?: number; navigation?: number } = {};

/** The page is up: the docs list the root types (from the schema file), the query editor shows the examples. */
async function ready(p: Page) {
  await p.locator('.graphiql-doc-explorer').getByText('Mutation', { exact: true }).waitFor({ timeout: 30_000 });
  await p.locator('.graphiql-query-editor .view-line', { hasText: 'query ListTokens' }).waitFor();
}

/**
 * Waits until every answer is out and nothing new has reached the gateway for a while (Monaco
 * starts its workers late; from source, each file is compressed on its first request).
 */
async function quiet(p: Page) {
  await p.waitForLoadState('networkidle');
  let seen = -1;
  while (seen !== served.length || inFlight > 0) {
    seen = served.length;
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  subscribe('http.server.request.start', onRequest);
  subscribe('http.server.response.finish', onFinish);
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
  unsubscribe('http.server.request.start', onRequest);
  unsubscribe('http.server.response.finish', onFinish);
  await context?.close();
  await gw?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

describe('GraphiQL in chromium', () => {
  test('renders offline, with the schema docs, the example operations and the demo header', async () => {
    const before = bytesSent();
    const res = await page.goto(gw.url);
    expect(res?.status()).toBe(200);
    // The schema came in as a file (no introspection query): the docs list the root types.
    await ready(page);
    await quiet(page);
    measured.firstLoad = bytesSent() - before;
    // The page, then its 7 files (script, stylesheet, icon, schema, Monaco's 3 workers), each once.
    expect(served[0]).toMatch(/^GET \/graphql$/);
    expect(assetRequests()).toHaveLength(7);
    expect(new Set(assetRequests()).size).toBe(7);
    expect(served.filter((r) => r.startsWith('POST '))).toEqual([]);

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
      // blob: URLs (were there any) carry the page's origin.
      return url.origin !== gw.origin;
    });
    expect(foreign).toEqual([]);
  });

  test('a second load fetches no file again: the browser keeps them (immutable); only the page comes again', async () => {
    // A reload (GraphiQL has put the query in the URL: ?query=…), then a plain navigation.
    for (const load of ['reload', 'navigation'] as const) {
      served.length = 0;
      const before = bytesSent();
      const res = load === 'reload' ? await page.reload() : await page.goto(gw.url);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['cache-control']).toBe('no-store');
      // GraphiQL restores its tabs (from localStorage): the examples are in the ListTokens one.
      await page.locator('.graphiql-tab', { hasText: 'ListTokens' }).first().click({ timeout: 30_000 });
      await ready(page);
      await quiet(page);
      measured[load] = bytesSent() - before;
      expect(assetRequests(), load).toEqual([]);
      expect(served, load).toHaveLength(1);
      expect(served[0]).toMatch(/^GET \/graphql(\?|$)/);
    }
    console.log(
      `[browser] GraphiQL: first load ${measured.firstLoad} bytes sent by the gateway, reload ${measured.reload}, navigation ${measured.navigation}`,
    );
    expect(measured.firstLoad).toBeLessThan(2_500_000);
    expect(measured.reload).toBeLessThan(60_000);
    expect(measured.navigation).toBeLessThan(60_000);
  });

  test('streams the LeaseCredential subscription (a GET over SSE, with its CSRF header) and shows its first credential', async () => {
    const streaming = page.waitForResponse((r) => r.url().includes('LeaseCredential'));
    // The subscription is the document's last operation: cursor to the end, into it, Ctrl+Enter.
    await page.locator('.graphiql-query-editor .view-line', { hasText: 'query ListTokens' }).click({ position: { x: 2, y: 5 } });
    await page.keyboard.press('Control+End');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Control+Enter');
    const res = await streaming;
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/^text\/event-stream/);
    const result = page.locator('.graphiql-response');
    await expect.poll(() => textOf(result), { timeout: 10_000 }).toContain('"sequence": 1');
    expect(await textOf(result)).toContain('accessKeyId');
    expect(await textOf(result)).not.toContain('"errors"');
    // Stop it (the run button stops a running subscription) before the next tests reload the page.
    await page.locator('.graphiql-execute-button').click();
  });

  test('works with every host but the gateway blocked (a fresh profile, nothing cached)', async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      const offline = await browser.newContext({ viewport: { width: 1600, height: 900 }, colorScheme: 'light' });
      const blocked: string[] = [];
      await offline.route('**/*', (route) => {
        const url = route.request().url();
        if (new URL(url).origin === gw.origin) return route.continue();
        blocked.push(url);
        return route.abort('internetdisconnected');
      });
      const p = await offline.newPage();
      served.length = 0;
      expect((await p.goto(gw.url))?.status()).toBe(200);
      await ready(p);
      // And it runs an operation.
      const listing = p.waitForResponse((r) => r.request().method() === 'POST');
      await p.locator('.graphiql-query-editor .view-line', { hasText: 'query ListTokens' }).click({ position: { x: 2, y: 5 } });
      await p.keyboard.press('Control+Enter');
      expect(((await (await listing).json()) as any).data.instance.authenticationTokens.totalCount).toBe(25);
      await expect.poll(() => textOf(p.locator('.graphiql-response')), { timeout: 10_000 }).toMatch(/atntkn_demo2\d{4}/);
      expect(blocked).toEqual([]);
      // Monaco's workers may load after the answer shows.
      await expect.poll(() => new Set(assetRequests()).size, { timeout: 10_000 }).toBe(7);
    } finally {
      await browser?.close();
    }
  });
});
