// Why: turns untrusted image bytes into the exact float tensor a catalog model expects (resize/crop,
// colour, value range, mean/std, layout), with sharp (libvips) doing decode, orientation, crop and
// resize in one streaming pass. Untrusted input is checked first: only real photo formats, a pixel
// limit against decompression bombs, and clear errors for corrupt or truncated files.
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { FunctionError } from './function-error.js';
import type { Preprocessing } from './model-catalog.js';

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
}

export interface ImageLimits {
  /** Largest width x height accepted (PIFAAS_MAX_PIXELS). */
  maxPixels: number;
}

/** Reads the header only: format and size. Throws a 4xx FunctionError for anything we would not decode. */
export async function readImageInfo(bytes: Buffer, limits: ImageLimits): Promise<ImageInfo> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new FunctionError(400, 'not_an_image', `the data is not an image (expected ${ACCEPTED_FORMAT_LIST})`);
  }
  const format = ACCEPTED_FORMATS[meta.format];
  if (!format) {
    throw new FunctionError(415, 'unsupported_image_format', `${meta.format.toUpperCase()} images are not accepted; send ${ACCEPTED_FORMAT_LIST}`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new FunctionError(400, 'bad_image', `the ${format} image has no width or height`);
  if (width * height > limits.maxPixels) {
    throw new FunctionError(
      413,
      'image_too_large',
      `the ${format} image is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels), more than the limit of ${(limits.maxPixels / 1e6).toFixed(1)} megapixels (PIFAAS_MAX_PIXELS); send a smaller image`,
    );
  }
  return { format, width, height };
}

export interface PreparedInput {
  data: Float32Array;
  dims: number[];
  /** libvips decode + orientation + crop + resize (one fused pass). */
  decodeMs: number;
  /** Conversion of the pixels into the normalised float tensor. */
  preprocessMs: number;
}

/** Decodes, resizes and normalises an image into a model's input tensor. */
export async function imageToTensor(bytes: Buffer, info: ImageInfo, pre: Preprocessing, limits: ImageLimits): Promise<PreparedInput> {
  const t0 = performance.now();
  let pipeline = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning', autoOrient: true, pages: 1 });
  // The region of the (oriented) image that becomes the model's input.
  let region = { left: 0, top: 0, width: info.width, height: info.height };
  let outW: number;
  let outH: number;
  if (pre.resize.kind === 'center-crop') {
    // "Shorter side to shorterSide, centre crop crop", computed as one crop of the original
    // (crop/shorterSide of its shorter side) then one resize: cheaper, same pixels.
    const side = Math.min(info.width, info.height);
    const cropSide = Math.max(1, Math.round((side * pre.resize.crop) / pre.resize.shorterSide));
    region = { left: Math.floor((info.width - cropSide) / 2), top: Math.floor((info.height - cropSide) / 2), width: cropSide, height: cropSide };
    outW = outH = pre.resize.crop;
  } else {
    outW = pre.resize.width;
    outH = pre.resize.height;
  }
  if (region.width !== info.width || region.height !== info.height) pipeline = pipeline.extract(region);
  if (region.width !== outW || region.height !== outH) {
    // Reduction: libvips' default lanczos3 (JPEGs also shrink on load). Enlargement (small photos):
    // bilinear, as torchvision's Resize, at a third of lanczos3's cost on a 224x224 output.
    const enlarging = region.width < outW || region.height < outH;
    pipeline = pipeline.resize(outW, outH, { fit: 'fill', kernel: enlarging ? 'linear' : 'lanczos3' });
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
  const t1 = performance.now();
  const channels = pre.color === 'grey' ? 1 : 3;
  if (raw.info.channels !== channels || raw.info.width !== outW || raw.info.height !== outH) {
    throw new FunctionError(400, 'bad_image', `the ${info.format} image decoded to an unexpected shape ${raw.info.width}x${raw.info.height}x${raw.info.channels}`);
  }
  const data = pixelsToTensor(raw.data, outW, outH, channels, pre);
  const dims = pre.layout === 'NCHW' ? [1, channels, outH, outW] : [1, outW * outH * channels];
  return { data, dims, decodeMs: t1 - t0, preprocessMs: performance.now() - t1 };
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

/** 8-bit pixels (interleaved channels) into the model's float tensor: value range, mean/std, ink polarity, layout. */
export function pixelsToTensor(px: Uint8Array, w: number, h: number, channels: number, pre: Preprocessing): Float32Array {
  const [lo, hi] = pre.range;
  const hw = w * h;
  const out = new Float32Array(hw * channels);
  // value(p) = ((p / 255) * (hi - lo) + lo - mean[c]) / std[c], tabulated for the 256 values of p.
  const lut: Float32Array[] = [];
  for (let c = 0; c < channels; c++) {
    const mean = pre.mean?.[c] ?? 0;
    const std = pre.std?.[c] ?? 1;
    const t = new Float32Array(256);
    for (let p = 0; p < 256; p++) t[p] = ((p / 255) * (hi - lo) + lo - mean) / std;
    lut.push(t);
  }
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
