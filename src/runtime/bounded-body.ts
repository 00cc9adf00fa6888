/**
 * Reads a request body as UTF-8 text, but never more than `maxBytes` of it: the stream is read
 * chunk by chunk and cancelled as soon as it passes the cap, whether or not the request declared a
 * Content-Length. `request.text()` buffers the whole body first, so a chunked upload of 96 MB was
 * held in memory before its size was checked (an isolate has 128 MB for every session in it).
 */
export type BoundedText = { ok: true; text: string } | { ok: false; tooLarge: true };

export async function readBoundedText(request: Request, maxBytes: number): Promise<BoundedText> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    // Refused unread; cancelling tells the runtime the rest need not arrive.
    await request.body?.cancel();
    return { ok: false, tooLarge: true };
  }
  if (request.body === null) return { ok: true, text: "" };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return { ok: false, tooLarge: true };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { ok: true, text: new TextDecoder().decode(bytes) };
}
