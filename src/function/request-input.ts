// Why: callers send images every way HTTP allows: raw bytes (curl --data-binary), base64 text
// (base64 x.png | faas-cli invoke), JSON {"image": base64} or {"url": ...}, OpenWhisk's {"value": ...},
// and browser forms (multipart/form-data). This module turns any of them into image bytes plus the
// per-request options (top, model), or a 4xx FunctionError saying what was wrong.
import { z } from 'zod';
import { boundedGet, HttpGetError } from './bounded-get.js';
import { FunctionError } from './function-error.js';
import type { UrlPolicy } from './url-policy.js';

export type InputKind = 'raw' | 'base64' | 'json-image' | 'json-url' | 'multipart';

export interface ImageRequest {
  image: Buffer;
  kind: InputKind;
  /** From ?top= or the JSON/form field "top" (validated by the caller). */
  top?: string;
  model?: string;
}

export interface UrlFetchLimits {
  policy: UrlPolicy;
  timeoutMs: number;
  maxBytes: number;
}

/** Fields of a JSON request (or OpenWhisk's "value"); other keys are ignored. */
const jsonRequestSchema = z.looseObject({
  image: z.string().optional(),
  url: z.string().optional(),
  top: z.union([z.number(), z.string()]).optional(),
  model: z.string().optional(),
  /** OpenWhisk web actions with raw HTTP: the body, base64 for binary content. */
  __ow_body: z.string().optional(),
});
export type JsonRequest = z.infer<typeof jsonRequestSchema>;

const ACCEPTED_TYPES = 'image bytes (image/*, application/octet-stream), base64 text (text/plain), application/json or multipart/form-data';

export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** True when every byte is a base64 character or whitespace (a binary image never is). */
function isBase64Text(buf: Buffer): boolean {
  if (buf.length === 0) return false;
  for (const c of buf) {
    const ok =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x3d || c === 0x2d || c === 0x5f || c === 0x0a || c === 0x0d || c === 0x20 || c === 0x09;
    if (!ok) return false;
  }
  return true;
}

/** Decodes base64 (standard or URL-safe, optional data: URL prefix, whitespace ignored) strictly. */
export function decodeBase64(text: string, what: string): Buffer {
  let s = text.trim();
  const dataUrl = /^data:[^,]*;base64,/i.exec(s);
  if (dataUrl) s = s.slice(dataUrl[0].length);
  s = s.replace(/\s+/g, '');
  if (s.length === 0) throw new FunctionError(400, 'bad_base64', `${what} is empty`);
  const bad = /[^A-Za-z0-9+/=_-]/.exec(s);
  if (bad) {
    throw new FunctionError(400, 'bad_base64', `${what} is not valid base64: unexpected character ${JSON.stringify(bad[0])} at offset ${bad.index}`);
  }
  if (!/^[^=]*={0,2}$/.test(s) || s.length % 4 === 1 || (s.includes('=') && s.length % 4 !== 0)) {
    throw new FunctionError(400, 'bad_base64', `${what} is not valid base64: wrong length or padding`);
  }
  const out = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (out.length === 0) throw new FunctionError(400, 'bad_base64', `${what} decodes to nothing`);
  return out;
}

async function fetchImageUrl(raw: string, limits: UrlFetchLimits, signal: AbortSignal | undefined): Promise<Buffer> {
  try {
    const res = await boundedGet(raw, {
      maxBytes: limits.maxBytes,
      timeoutMs: limits.timeoutMs,
      maxRedirects: 3,
      checkUrl: (u) => limits.policy.checkUrl(u),
      lookup: limits.policy.lookup,
      ...(signal ? { signal } : {}),
      headers: { accept: 'image/*' },
    });
    if (!res.body || res.body.length === 0) throw new FunctionError(400, 'url_empty', `${new URL(raw).host} sent an empty body`);
    return res.body;
  } catch (e) {
    if (e instanceof FunctionError) throw e;
    if (!(e instanceof HttpGetError)) throw e;
    switch (e.kind) {
      case 'bad-url':
        throw new FunctionError(400, 'bad_url', e.message);
      case 'refused-url':
        throw new FunctionError(403, 'url_not_allowed', e.message);
      case 'too-large':
        throw new FunctionError(413, 'url_too_large', `${e.message} (PIFAAS_MAX_BODY_BYTES)`);
      case 'timeout':
        throw new FunctionError(408, 'url_timeout', e.message);
      case 'status':
        throw new FunctionError(400, 'url_status', e.message);
      case 'aborted':
        throw new FunctionError(503, 'cancelled', e.message);
      default:
        throw new FunctionError(400, 'url_unreachable', `cannot fetch the image URL: ${e.message}`);
    }
  }
}

/** Turns a parsed JSON request (or OpenWhisk value) into image bytes. */
export async function imageFromJson(value: unknown, limits: UrlFetchLimits, signal?: AbortSignal): Promise<ImageRequest> {
  const parsed = jsonRequestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FunctionError(400, 'bad_json_fields', `the JSON body must be an object like {"image": "<base64>"} or {"url": "https://..."}${issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : ''}`);
  }
  const v = parsed.data;
  const opts = { ...(v.top !== undefined ? { top: String(v.top) } : {}), ...(v.model !== undefined ? { model: v.model } : {}) };
  if (v.image !== undefined && v.url !== undefined) throw new FunctionError(400, 'bad_json_fields', 'send either "image" or "url", not both');
  if (v.image !== undefined) return { image: decodeBase64(v.image, 'the "image" field'), kind: 'json-image', ...opts };
  if (v.url !== undefined) {
    if (!limits.policy.enabled) {
      throw new FunctionError(403, 'url_input_disabled', 'URL input is disabled on this function; send the image bytes or base64 instead (operators: set PIFAAS_URL_ALLOW to enable it)');
    }
    return { image: await fetchImageUrl(v.url, limits, signal), kind: 'json-url', ...opts };
  }
  if (v.__ow_body !== undefined) return { image: decodeBase64(v.__ow_body, 'the "__ow_body" field'), kind: 'base64', ...opts };
  throw new FunctionError(400, 'bad_json_fields', 'the JSON body has neither "image" (base64) nor "url"');
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new FunctionError(400, 'bad_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
}

async function imageFromMultipart(body: Buffer, contentType: string, limits: UrlFetchLimits, signal?: AbortSignal): Promise<ImageRequest> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (e) {
    throw new FunctionError(400, 'bad_multipart', `the multipart/form-data body cannot be parsed: ${(e as Error).message}`);
  }
  const text = (key: string) => {
    const v = form.get(key);
    return typeof v === 'string' ? v : undefined;
  };
  const opts = { ...(text('top') !== undefined ? { top: text('top') } : {}), ...(text('model') !== undefined ? { model: text('model') } : {}) };
  for (const [, value] of form) {
    if (typeof value !== 'string') {
      const bytes = Buffer.from(await value.arrayBuffer());
      if (bytes.length === 0) throw new FunctionError(400, 'empty_body', `the uploaded file "${value.name}" is empty`);
      return { image: bytes, kind: 'multipart', ...opts };
    }
  }
  if (text('image') !== undefined || text('url') !== undefined) {
    return { ...(await imageFromJson({ image: text('image'), url: text('url') }, limits, signal)), kind: 'multipart', ...opts };
  }
  throw new FunctionError(400, 'bad_multipart', 'the form has no file field (and no "image" or "url" field)');
}

/**
 * Extracts the image from a request body of any accepted form. `contentType` is the request's
 * Content-Type header; query parameters are handled by the caller.
 */
export async function readImageRequest(body: Buffer, contentType: string | undefined, limits: UrlFetchLimits, signal?: AbortSignal): Promise<ImageRequest> {
  const type = mediaType(contentType);
  if (body.length === 0) {
    throw new FunctionError(400, 'empty_body', 'the request body is empty; send an image, e.g. curl --data-binary @photo.jpg URL');
  }
  if (type === 'application/json' || type.endsWith('+json')) return imageFromJson(parseJson(body), limits, signal);
  if (type === 'multipart/form-data') return imageFromMultipart(body, contentType ?? '', limits, signal);
  if (type === 'text/plain') {
    return { image: decodeBase64(body.toString('latin1'), 'the text/plain body'), kind: 'base64' };
  }
  const binaryTypes = type === '' || type === 'application/octet-stream' || type === 'application/x-www-form-urlencoded' || type.startsWith('image/');
  if (!binaryTypes) {
    throw new FunctionError(415, 'unsupported_content_type', `Content-Type ${type} is not accepted; send ${ACCEPTED_TYPES}`);
  }
  // No JSON content type but a JSON body (curl -d '{"url": ...}' sends x-www-form-urlencoded).
  if (body[0] === 0x7b /* { */ && type !== 'application/octet-stream' && !type.startsWith('image/')) return imageFromJson(parseJson(body), limits, signal);
  if (isBase64Text(body) || body.subarray(0, 5).toString('latin1') === 'data:') return { image: decodeBase64(body.toString('latin1'), 'the body'), kind: 'base64' };
  return { image: body, kind: 'raw' };
}
