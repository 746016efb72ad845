// Why: turns untrusted image bytes into the exact float tensor a catalog model expects (resize/crop,
// colour, value range, mean/std, layout), with sharp (libvips) doing decode, orientation, crop and
// reduction in one streaming pass (JPEGs shrink on load), and the enlargement of small photos done
// here, fused with the normalisation (cheaper than libvips' upsizing path; the same pixels). Small
// plain JPEGs are decoded on this thread instead (jpeg-decoder.ts: the same pixels, without libvips'
// thread round trip). Untrusted input is checked first: only real photo formats, a pixel limit
// against decompression bombs, and clear errors for corrupt or truncated files.
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { enlargeRgbPlanes, WEIGHT_BITS } from './enlarge-wasm.js';
import { FunctionError } from './function-error.js';
import { readHeaderInfo } from './image-header.js';
import { decodeJpegRegion, packedRgb, rgbRows, type PixelRegion, type PixelRows } from './jpeg-decoder.js';
import { channelsOf, inputSizeOf, tensorDimsOf, type Preprocessing } from './model-catalog.js';
import type { TensorPool } from './tensor-pool.js';

// Every request carries different bytes: libvips' operation cache would only hold memory.
sharp.cache(false);

/** The formats we accept, by sharp's format name (AVIF decodes through libheif: "heif"). */
const ACCEPTED_FORMATS: Record<string, string> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', gif: 'GIF', tiff: 'TIFF', heif: 'AVIF' };
export const ACCEPTED_FORMAT_LIST = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';

export interface ImageInfo {
  format: string;
  /** Width and height after EXIF orientation. */
  width: number;
  height: number;
  /** A JPEG whose pixels may come from jpeg-decoder.ts (see HeaderInfo.decoderPixels). */
  decoderPixels?: boolean;
}

export interface ImageLimits {
  /** Largest width x height accepted (PIFAAS_MAX_PIXELS). */
  maxPixels: number;
}

/** What sharp (libvips) says of an image's header: format and size after EXIF orientation. */
async function libvipsHeaderInfo(bytes: Buffer): Promise<{ format: string; width: number | undefined; height: number | undefined }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new FunctionError(400, 'not_an_image', `the data is not an image (expected ${ACCEPTED_FORMAT_LIST})`);
  }
  return { format: meta.format, width: meta.autoOrient?.width ?? meta.width, height: meta.autoOrient?.height ?? meta.height };
}

/**
 * Reads the header only: format and size (from the bytes themselves for plain JPEG and PNG, see
 * image-header.ts; else from libvips). Throws a 4xx FunctionError for anything we would not decode.
 */
export async function readImageInfo(bytes: Buffer, limits: ImageLimits): Promise<ImageInfo> {
  const header: { format: string; width?: number; height?: number; decoderPixels?: boolean } = readHeaderInfo(bytes) ?? (await libvipsHeaderInfo(bytes));
  const format = ACCEPTED_FORMATS[header.format];
  if (!format) {
    throw new FunctionError(415, 'unsupported_image_format', `${header.format.toUpperCase()} images are not accepted; send ${ACCEPTED_FORMAT_LIST}`);
  }
  const { width, height } = header;
  if (!width || !height) throw new FunctionError(400, 'bad_image', `the ${format} image has no width or height`);
  if (width * height > limits.maxPixels) {
    throw new FunctionError(
      413,
      'image_too_large',
      `the ${format} image is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels), more than the limit of ${(limits.maxPixels / 1e6).toFixed(1)} megapixels (PIFAAS_MAX_PIXELS); send a smaller image`,
    );
  }
  return { format, width, height, decoderPixels: header.decoderPixels === true };
}

export interface PreparedInput {
  data: Float32Array;
  dims: number[];
  /** Decode + orientation + crop + resize (libvips, one fused pass; or jpeg-decoder.ts + crop). */
  decodeMs: number;
  /** Conversion of the pixels into the normalised float tensor. */
  preprocessMs: number;
}

/** Decodes, resizes and normalises an image into a model's input tensor (taken from `pool` when given). */
export async function imageToTensor(bytes: Buffer, info: ImageInfo, pre: Preprocessing, limits: ImageLimits, pool?: TensorPool): Promise<PreparedInput> {
  const t0 = performance.now();
  // The region of the (oriented) image that becomes the model's input.
  let region: PixelRegion = { left: 0, top: 0, width: info.width, height: info.height };
  const [outW, outH] = inputSizeOf(pre);
  if (pre.resize.kind === 'center-crop') {
    // "Shorter side to shorterSide, centre crop crop", computed as one crop of the original
    // (crop/shorterSide of its shorter side) then one resize: cheaper, same pixels.
    const side = Math.min(info.width, info.height);
    const cropSide = Math.max(1, Math.round((side * pre.resize.crop) / pre.resize.shorterSide));
    region = { left: Math.floor((info.width - cropSide) / 2), top: Math.floor((info.height - cropSide) / 2), width: cropSide, height: cropSide };
  }
  const channels = channelsOf(pre);
  // Enlarging (photos smaller than the model's input, like most thumbnails): the region is decoded and
  // cut out, and the bilinear enlargement is done here, in one pass over the output (libvips'
  // upsizing path costs more than the decode itself on a 224x224 output). Anything else: libvips
  // resizes (lanczos3, JPEG shrink-on-load when the whole image is reduced).
  const enlargeHere = region.width <= outW && region.height <= outH && (region.width < outW || region.height < outH);
  const [rawW, rawH] = enlargeHere ? [region.width, region.height] : [outW, outH];
  // A small plain JPEG that needs no reduction is decoded on this thread (jpeg-decoder.ts), unless
  // its decoder has a doubt; everything else, and every doubt, goes through libvips.
  const noLibvipsResize = rawW === region.width && rawH === region.height;
  const fast = info.decoderPixels && channels === 3 && noLibvipsResize ? decodeJpegRegion(bytes, info.width, info.height, region) : undefined;
  const kernel = enlargeHere && usesEnlargeKernel(pre) && fitsEnlargeKernel(rawW, fast?.pixelBytes ?? 3);
  // The kernel reads the decoder's RGBA where it lies; every other path takes packed pixels.
  const decoded: PixelRows | Uint8Array = fast && kernel ? fast : fast ? packedRgb(fast) : await libvipsPixels(bytes, info, pre, region, [rawW, rawH], limits);
  const t1 = performance.now();
  const out = pool ? pool.take(outW * outH * channels) : new Float32Array(outW * outH * channels);
  let data: Float32Array;
  if (!(decoded instanceof Uint8Array)) data = enlargeRgbToNchw(decoded, outW, outH, pre, out);
  else {
    // A plain Uint8Array view, not the Buffer subclass: keeps the pixel loops monomorphic (faster).
    const px = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
    if (kernel) data = enlargeRgbToNchw(rgbRows(px, rawW, rawH), outW, outH, pre, out);
    else data = pixelsToTensor(enlargeHere ? resizeBilinear(px, rawW, rawH, channels, outW, outH) : px, outW, outH, channels, pre, out);
  }
  return { data, dims: tensorDimsOf(pre), decodeMs: t1 - t0, preprocessMs: performance.now() - t1 };
}

/**
 * libvips decodes the image (failing on any decoder warning), applies its orientation and colour
 * profile, cuts out `region` and resizes it to `size` in one pass: 8-bit pixels, interleaved.
 */
async function libvipsPixels(bytes: Buffer, info: ImageInfo, pre: Preprocessing, region: PixelRegion, size: [number, number], limits: ImageLimits): Promise<Buffer> {
  const [outW, outH] = inputSizeOf(pre);
  const [rawW, rawH] = size;
  let pipeline = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning', autoOrient: true, pages: 1 });
  if (pre.resize.kind === 'center-crop' && region.width > outW && region.height > outH) {
    // Reduction: resize the whole image first, then cut the centre out of the result, so that libvips
    // may decode a JPEG at 1/2, 1/4 or 1/8 scale (shrink-on-load is off after a pre-resize extract).
    const scale = outW / region.width;
    const rw = Math.max(outW, Math.round(info.width * scale));
    const rh = Math.max(outH, Math.round(info.height * scale));
    pipeline = pipeline
      .resize(rw, rh, { fit: 'fill', kernel: 'lanczos3' })
      .extract({ left: Math.floor((rw - outW) / 2), top: Math.floor((rh - outH) / 2), width: outW, height: outH });
  } else {
    if (region.width !== info.width || region.height !== info.height) pipeline = pipeline.extract(region);
    if (rawW !== region.width || rawH !== region.height) {
      // Reduction: libvips' default lanczos3. Enlargement of one side only: bilinear, as torchvision's Resize.
      const enlarging = region.width < outW || region.height < outH;
      pipeline = pipeline.resize(outW, outH, { fit: 'fill', kernel: enlarging ? 'linear' : 'lanczos3' });
    }
  }
  pipeline = pipeline.removeAlpha();
  pipeline = pre.color === 'grey' ? pipeline.greyscale() : pipeline.toColourspace('srgb');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) {
      throw new FunctionError(413, 'image_too_large', `the ${info.format} image is larger than the limit of ${(limits.maxPixels / 1e6).toFixed(1)} megapixels (PIFAAS_MAX_PIXELS)`);
    }
    throw new FunctionError(400, 'bad_image', `the ${info.format} image is corrupt or truncated and cannot be decoded (${msg.split('\n')[0]})`);
  }
  const channels = channelsOf(pre);
  if (raw.info.channels !== channels || raw.info.width !== rawW || raw.info.height !== rawH) {
    throw new FunctionError(400, 'bad_image', `the ${info.format} image decoded to an unexpected shape ${raw.info.width}x${raw.info.height}x${raw.info.channels}`);
  }
  return raw.data;
}

/** Whether photos smaller than this preprocessing's input are enlarged by the WebAssembly kernel. */
function usesEnlargeKernel(pre: Preprocessing): boolean {
  return pre.color === 'rgb' && pre.layout === 'NCHW';
}

/** The kernel's column table holds a pixel's byte offset in a row in 19 bits. */
function fitsEnlargeKernel(width: number, pixelBytes: number): boolean {
  return width * pixelBytes < 1 << 19;
}

/**
 * Compiles the WebAssembly enlargement kernel and runs it once on a small blank image, for a
 * preprocessing that uses it: the first small photo then does not pay for that (about 6 ms on the
 * development VM).
 */
export function warmUpEnlargement(pre: Preprocessing): void {
  if (!usesEnlargeKernel(pre)) return;
  const [outW, outH] = inputSizeOf(pre);
  const [w, h] = [Math.ceil((outW * 3) / 4), Math.ceil((outH * 3) / 4)];
  enlargeRgbToNchw(rgbRows(new Uint8Array(w * h * 3), w, h), outW, outH, pre);
}

/**
 * Bilinear enlargement of 8-bit interleaved pixels, giving the same pixels as sharp's
 * `resize(outW, outH, { kernel: 'linear' })` did before (libvips' upsizing geometry: source
 * x = x * w / outW - 0.5, edges repeated; rounded back to 8 bits).
 */
export function resizeBilinear(px: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * channels);
  const xs = bilinearAxis(w, outW, channels);
  const ys = bilinearAxis(h, outH, w * channels);
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] as number;
    const r1 = ys.i1[y] as number;
    const fy = ys.f[y] as number;
    for (let x = 0; x < outW; x++) {
      const a = xs.i0[x] as number;
      const b = xs.i1[x] as number;
      const f = xs.f[x] as number;
      for (let c = 0; c < channels; c++) out[o++] = lerp2(px, r0 + a + c, r0 + b + c, r1 + a + c, r1 + b + c, f, fy);
    }
  }
  return out;
}

/** Mean of the outermost ring of pixels: decides whether the background is light (single channel). */
function borderMean(px: Uint8Array, w: number, h: number): number {
  let sum = 0;
  let n = 0;
  for (let x = 0; x < w; x++) {
    sum += (px[x] ?? 0) + (px[(h - 1) * w + x] ?? 0);
    n += 2;
  }
  for (let y = 1; y < h - 1; y++) {
    sum += (px[y * w] ?? 0) + (px[y * w + w - 1] ?? 0);
    n += 2;
  }
  return n ? sum / n : 0;
}

/** value(p) = ((p / 255) * (hi - lo) + lo - mean[c]) / std[c], tabulated for the 256 values of p, per channel. */
function channelTables(pre: Preprocessing, channels: number): Float32Array[] {
  const [lo, hi] = pre.range;
  const lut: Float32Array[] = [];
  for (let c = 0; c < channels; c++) {
    const mean = pre.mean?.[c] ?? 0;
    const std = pre.std?.[c] ?? 1;
    const t = new Float32Array(256);
    for (let p = 0; p < 256; p++) t[p] = ((p / 255) * (hi - lo) + lo - mean) / std;
    lut.push(t);
  }
  return lut;
}

/** Bilinear weights in fixed point: 11 bits per axis, so that the products stay within 31 bits. */
const WEIGHT_ONE = 1 << WEIGHT_BITS;

/** Source offsets and weights of bilinear enlargement along one axis, with libvips' geometry (see resizeBilinear). */
function bilinearAxis(n: number, outN: number, stride: number): { i0: Int32Array; i1: Int32Array; f: Int32Array } {
  const i0 = new Int32Array(outN);
  const i1 = new Int32Array(outN);
  const f = new Int32Array(outN);
  for (let x = 0; x < outN; x++) {
    const s = Math.min(n - 1, Math.max(0, (x * n) / outN - 0.5));
    const i = Math.floor(s);
    i0[x] = i * stride;
    i1[x] = Math.min(n - 1, i + 1) * stride;
    f[x] = Math.round((s - i) * WEIGHT_ONE);
  }
  return { i0, i1, f };
}

/** Bilinear mix of the 8-bit values at a0, b0 (upper row) and a1, b1 (lower row), in integers, rounded. */
function lerp2(px: Uint8Array, a0: number, b0: number, a1: number, b1: number, fx: number, fy: number): number {
  const gx = WEIGHT_ONE - fx;
  const top = (px[a0] as number) * gx + (px[b0] as number) * fx;
  const bottom = (px[a1] as number) * gx + (px[b1] as number) * fx;
  return (top * (WEIGHT_ONE - fy) + bottom * fy + (WEIGHT_ONE * WEIGHT_ONE) / 2) >> (2 * WEIGHT_BITS);
}

/**
 * resizeBilinear then pixelsToTensor for the common case (RGB, NCHW), fused: the same values without
 * the intermediate image, computed by the WebAssembly kernel (enlarge-wasm.ts): each source row used is
 * interpolated horizontally once, then each output row mixes its two rows and writes the three planes.
 * The source may be packed RGB or RGBA rows inside a larger image (the JPEG decoder's own output).
 */
export function enlargeRgbToNchw(src: PixelRows, outW: number, outH: number, pre: Preprocessing, out: Float32Array = new Float32Array(outW * outH * 3)): Float32Array {
  if (out.length !== outW * outH * 3) throw new RangeError(`the output tensor holds ${out.length} values, not ${outW * outH * 3}`);
  const { data, width: w, height: h, pixelBytes, rowBytes } = src;
  if (!fitsEnlargeKernel(w, pixelBytes)) throw new RangeError(`a ${w}-pixel row is too wide for the enlargement kernel`);
  // Per output column: the left source pixel's byte offset << 12 | the right one's weight. The last
  // column's pixel is taken as the right one of its left neighbour (weight one): the same value, and
  // the right pixel is then always one pixel after the left one (a 1-pixel-wide row gets weight 0).
  const { i0, f } = bilinearAxis(w, outW, pixelBytes);
  const xt = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    const atEnd = w > 1 && i0[x] === (w - 1) * pixelBytes;
    xt[x] = (atEnd ? (w - 2) * pixelBytes : (i0[x] as number)) * 4096 + (atEnd ? WEIGHT_ONE : (f[x] as number));
  }
  const used = data.subarray(0, (h - 1) * rowBytes + w * pixelBytes);
  enlargeRgbPlanes(used, pixelBytes, xt, bilinearAxis(h, outH, rowBytes), outW, outH, channelTables(pre, 3) as [Float32Array, Float32Array, Float32Array], out);
  return out;
}

/**
 * 8-bit pixels (interleaved channels) into the model's float tensor: value range, mean/std, ink
 * polarity, layout. Every value of `out` is written (a reused tensor keeps nothing of its past).
 */
export function pixelsToTensor(px: Uint8Array, w: number, h: number, channels: number, pre: Preprocessing, out: Float32Array = new Float32Array(w * h * channels)): Float32Array {
  const hw = w * h;
  if (out.length !== hw * channels) throw new RangeError(`the output tensor holds ${out.length} values, not ${hw * channels}`);
  const lut = channelTables(pre, channels);
  const [l0, l1, l2] = lut as [Float32Array, Float32Array | undefined, Float32Array | undefined];
  if (channels === 1) {
    const invert = pre.ink === 'bright' && borderMean(px, w, h) > 127;
    for (let i = 0; i < hw; i++) out[i] = l0[invert ? 255 - (px[i] as number) : (px[i] as number)] as number;
    return out;
  }
  if (pre.layout === 'NCHW' && channels === 3 && l1 && l2) {
    // One sequential pass over the interleaved pixels, writing the three planes.
    for (let i = 0, j = 0; i < hw; i++, j += 3) {
      out[i] = l0[px[j] as number] as number;
      out[hw + i] = l1[px[j + 1] as number] as number;
      out[2 * hw + i] = l2[px[j + 2] as number] as number;
    }
    return out;
  }
  for (let i = 0; i < hw * channels; i++) {
    const c = i % channels;
    const dst = pre.layout === 'NCHW' ? c * hw + Math.floor(i / channels) : i;
    out[dst] = (lut[c] as Float32Array)[px[i] as number] as number;
  }
  return out;
}
