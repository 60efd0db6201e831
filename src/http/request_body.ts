/**
 * Reading a JSON request body the way kumod's axum extractors do
 * (http-api.md §0): `Content-Encoding: gzip|deflate` is decompressed first,
 * the size limit (`request_body_limit`) applies to the decompressed bytes
 * (413), `Content-Type` must be `application/json` (415), malformed JSON is
 * 400. Each failure carries its own response.
 *
 * Place on the path: the first step of every endpoint that takes a body.
 * Reads the stream once, stops as soon as the limit is passed, and never
 * keeps more than the limit in memory.
 *
 * @module
 */

/** A request that must be answered with this status and text body. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
  /** The text/plain response this error stands for. */
  getResponse(): Response {
    return new Response(this.message, {
      status: this.status,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
}

/** The fixed 413 text of upstream. */
export const BODY_LIMIT_TEXT = "Failed to buffer the request body: length limit exceeded";

/**
 * The request body bytes, decompressed, at most `limit` bytes.
 *
 * @throws {HttpError} 413 over the limit, 400 on a bad compressed stream,
 * 415 on an unknown `Content-Encoding`
 */
export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  const encoding = (req.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding === "identity" && Number.isFinite(declared) && declared > limit) {
    await req.body?.cancel().catch(() => {});
    throw new HttpError(413, BODY_LIMIT_TEXT);
  }
  let stream = req.body;
  if (stream === null) return new Uint8Array(0);
  if (encoding === "gzip" || encoding === "x-gzip" || encoding === "deflate") {
    stream = stream.pipeThrough(
      new DecompressionStream(encoding === "deflate" ? "deflate" : "gzip"),
    );
  } else if (encoding !== "identity") {
    await stream.cancel().catch(() => {});
    throw new HttpError(415, `Unsupported Content-Encoding "${encoding}"`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, BODY_LIMIT_TEXT);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `Failed to buffer the request body: ${(e as Error).message}`);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Read and parse a JSON body (axum `Json<T>` rules, before the shape check).
 *
 * @throws {HttpError} 415 without `application/json`, 413, 400 on bad JSON
 * @example
 * ```ts
 * const value = await readJsonBody(c.req.raw, 2 * 1024 * 1024);
 * ```
 */
export async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const ct = (req.headers.get("content-type") ?? "").toLowerCase();
  const mime = ct.split(";")[0].trim();
  if (
    !(mime === "application/json" || (mime.startsWith("application/") && mime.endsWith("+json")))
  ) {
    await req.body?.cancel().catch(() => {});
    throw new HttpError(415, "Expected request with `Content-Type: application/json`");
  }
  const bytes = await readBody(req, limit);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "Failed to parse the request body as JSON: invalid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `Failed to parse the request body as JSON: ${(e as Error).message}`);
  }
}
