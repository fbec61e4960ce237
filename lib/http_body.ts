/** Reading a response body into memory without letting a hostile or broken server fill it. */

/**
 * The whole body of `res`, or the error `tooLarge()` gives as soon as more than `maxBytes` arrived (the rest
 * is not read: the connection is cancelled).
 */
export async function readBodyCapped(
  res: Response,
  maxBytes: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? new ReadableStream<Uint8Array>()) {
    size += chunk.length;
    if (size > maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
