// Why: decoding a small JPEG through sharp costs a round trip through libuv's and libvips' threads,
// and on a small photo the trip costs more than the decode: tiger.jpg (304x166) took 1.1 ms back to
// back and 2.1 ms after 25 ms of idling, against 0.5 and 0.7 ms decoded here (2026-12-05, 2 vCPUs).
// This module decodes on the calling thread with MozJPEG compiled to WebAssembly (@jsquash/jpeg):
// the same decoder library as sharp's libvips build, so the same pixels. It is only a fast path for
// plain JPEGs (image-header.ts says which) small enough not to hold up the event loop. Any message from
// the decoder (libjpeg warns of corrupt or truncated data) or any error answers "undefined", and the
// caller asks libvips, whose answer (pixels or error) then stands.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import mozjpegDecoder, { type MozJPEGModule } from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { wasm, type WasmInstance, type WasmModule } from './wasm-api.js';

/**
 * Largest JPEG (width x height) decoded here, as it holds up the event loop: every photo whose shorter
 * side is at most 256 pixels, up to 1:2 (photos are decoded here only when they need no reduction: for
 * the bundled ImageNet models, a shorter side of at most 224 pixels). Near this size the two decoders cost about the same (on the
 * development VM, after 10 ms idle: 256x512 tiger 1.7 ms here, 2.4 ms through sharp; 256x512 squirrel
 * 2.9 and 2.7 ms; 304x166 tiger 0.8 and 1.7 ms), and beyond it libvips' SIMD decode wins.
 */
export const JPEG_DECODER_MAX_PIXELS = 256 * 512;

export interface PixelRegion {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * 8-bit pixels of an image region where they lie, without a copy: `data` starts at the region's first
 * pixel, whose first three bytes are R, G, B; pixels are `pixelBytes` apart and rows `rowBytes` apart.
 */
export interface PixelRows {
  data: Uint8Array;
  width: number;
  height: number;
  pixelBytes: 3 | 4;
  rowBytes: number;
}

/** Packed 8-bit RGB (w x h) as PixelRows. */
export function rgbRows(px: Uint8Array, w: number, h: number): PixelRows {
  return { data: px, width: w, height: h, pixelBytes: 3, rowBytes: w * 3 };
}

/** Tightly packed RGB (R, G, B, R, ...) of `rows`. */
export function packedRgb(rows: PixelRows): Uint8Array {
  const { data, width, height, pixelBytes, rowBytes } = rows;
  const out = new Uint8Array(width * height * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let i = y * rowBytes, end = i + width * pixelBytes; i < end; i += pixelBytes) {
      out[o++] = data[i] as number;
      out[o++] = data[i + 1] as number;
      out[o++] = data[i + 2] as number;
    }
  }
  return out;
}

let compiled: Promise<WasmModule> | undefined;
let decoder: MozJPEGModule | undefined;
let replacing: Promise<void> | undefined;
/** Set when the decoder writes anything (libjpeg's warnings and errors go to stderr). */
let spoke = false;

/** A new instance of the compiled decoder (instances share its machine code, so a new one is fast at once). */
async function instantiate(): Promise<MozJPEGModule> {
  compiled ??= readFile(createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')).then((bytes) => wasm.compile(bytes));
  const module = await compiled;
  const note = () => {
    spoke = true;
  };
  // Emscripten module options beyond the package's type declaration: its output hooks, and the
  // instantiation from our compiled module (instead of fetching the file, which Node cannot).
  const options = {
    noInitialRun: true,
    print: note,
    printErr: note,
    instantiateWasm: (imports: object, done: (instance: WasmInstance) => void) => {
      const instance = new wasm.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
  };
  return mozjpegDecoder(options as Parameters<typeof mozjpegDecoder>[0]);
}

/**
 * Compiles the decoder and decodes `sample` (a JPEG) once, because V8 compiles each WebAssembly
 * function on its first call (about 15 ms here): a request should not pay for that. Until this
 * resolves, decodeJpegRegion leaves every JPEG to libvips.
 */
export async function startJpegDecoder(sample: Uint8Array): Promise<void> {
  const d = await instantiate();
  d.decode(sample, true);
  decoder ??= d;
}

/** Resolves once a decoder dropped after an error has been replaced (tests wait for it). */
export function jpegDecoderReplaced(): Promise<void> {
  return replacing ?? Promise.resolve();
}

/**
 * After an error libjpeg leaves its allocations behind, so the instance is dropped (with its memory)
 * and a new one made in the background.
 */
function replaceDecoder(): void {
  decoder = undefined;
  replacing ??= instantiate()
    .then(
      (d) => {
        decoder = d;
      },
      () => undefined,
    )
    .finally(() => {
      replacing = undefined;
    });
}

/**
 * Decodes a JPEG and returns the pixels of `region` as the decoder left them (RGBA, not copied), or
 * undefined when libvips must decide: the decoder is not started (yet), the JPEG is larger than
 * JPEG_DECODER_MAX_PIXELS or not `width` x `height`, `region` is not inside it, or the decoder warned
 * or failed. Everything that needs no decoding is checked first.
 */
export function decodeJpegRegion(bytes: Uint8Array, width: number, height: number, region: PixelRegion): PixelRows | undefined {
  if (width * height > JPEG_DECODER_MAX_PIXELS) return undefined;
  const { left, top } = region;
  if (left < 0 || top < 0 || left + region.width > width || top + region.height > height) return undefined;
  const current = decoder;
  if (!current) return undefined;
  spoke = false;
  let image: ReturnType<MozJPEGModule['decode']>;
  try {
    image = current.decode(bytes, true);
  } catch {
    replaceDecoder();
    return undefined;
  }
  if (spoke || !image || image.width !== width || image.height !== height || image.data.length !== width * height * 4) return undefined;
  const rowBytes = width * 4;
  const first = top * rowBytes + left * 4;
  const rgba = image.data;
  return {
    data: new Uint8Array(rgba.buffer, rgba.byteOffset + first, (region.height - 1) * rowBytes + region.width * 4),
    width: region.width,
    height: region.height,
    pixelBytes: 4,
    rowBytes,
  };
}
