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

async function readCapped(stream: ReadableStream<Uint8Array>, max: number): Promise<string | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
