// Request body size limit (413), before yoga reads the body. A declared Content-Length is
// checked at once; a chunked body is read with a cap and handed on only if it fits.
import type { Plugin } from 'graphql-yoga';
import { graphqlErrorResponse } from './responses.ts';

export function useBodyLimit(maxBytes: number): Plugin {
  const tooLarge = () =>
    graphqlErrorResponse(413, `The request body is larger than ${maxBytes} bytes.`, 'BAD_USER_INPUT', { maxBodyBytes: maxBytes }, { connection: 'close' });
  return {
    onRequest({ request, endResponse }) {
      const declared = request.headers.get('content-length');
      if (declared !== null && Number(declared) > maxBytes) endResponse(tooLarge());
    },
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser || request.method !== 'POST' || request.headers.get('content-length') !== null || !request.body) return;
      setRequestParser(async (req) => {
        const body = await readCapped(req.body!, maxBytes);
        if (body === undefined) return tooLarge();
        return requestParser(new Request(req.url, { method: req.method, headers: req.headers, body }));
      });
    },
  };
}

/** Past this much, an oversized body is cut off (the connection resets) instead of drained. */
const DRAIN_LIMIT = 16 * 1024 * 1024;

async function readCapped(stream: ReadableStream<Uint8Array>, max: number): Promise<string | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    // An oversized body is read to its end (and dropped), up to DRAIN_LIMIT, so the client
    // gets the 413 instead of a reset connection.
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > Math.max(max, DRAIN_LIMIT)) {
        await reader.cancel();
        return undefined;
      }
      if (size <= max) chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return size > max ? undefined : Buffer.concat(chunks).toString('utf8');
}
