// The function's own bilinear enlargement (photos smaller than the model's input) must give the
// pixels sharp's `linear` resize gives, and its fused tensor path (WebAssembly) the values of the
// two-step one; a reused input tensor must come out as a new one would.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { enlargeRgbToNchw, imageToTensor, pixelsToTensor, readImageInfo, resizeBilinear } from '../../src/function/image-tensor.js';
import { rgbRows } from '../../src/function/jpeg-decoder.js';
import type { Preprocessing } from '../../src/function/model-catalog.js';
import { TensorPool } from '../../src/function/tensor-pool.js';
import { image } from './helpers.js';

const IMAGENET: Preprocessing = { color: 'rgb', resize: { kind: 'center-crop', shorterSide: 224, crop: 224 }, range: [0, 1], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW' };

/** Where two tensors first differ ('none' if nowhere): a short failure message for 150,000 values. */
function firstDifference(a: Float32Array, b: Float32Array): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  const i = a.findIndex((v, k) => v !== b[k]);
  return i < 0 ? 'none' : `value ${i}: ${a[i]} against ${b[i]}`;
}

describe('bilinear enlargement', () => {
  it('matches sharp (libvips) linear resize on a real photo, within one level', async () => {
    // tiger.jpg is 304x166: its centre square is enlarged to 224x224.
    const region = { left: 69, top: 0, width: 166, height: 166 };
    const src = await sharp(image('tiger.jpg')).extract(region).raw().toBuffer();
    const expected = await sharp(image('tiger.jpg')).extract(region).resize(224, 224, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    const ours = resizeBilinear(new Uint8Array(src), 166, 166, 3, 224, 224);
    expect(ours.length).toBe(expected.length);
    let worst = 0;
    let off = 0;
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs((ours[i] as number) - (expected[i] as number));
      worst = Math.max(worst, d);
      if (d) off++;
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(off / ours.length).toBeLessThan(0.05);
  });

  it('the fused RGB path (WebAssembly) gives exactly the two-step values, edges and 1-pixel sides included, from RGB and from RGBA rows inside a larger image', () => {
    const cases: Array<[number, number, number, number]> = [[97, 61, 224, 224], [166, 166, 224, 224], [1, 1, 224, 224], [1, 40, 64, 48], [40, 1, 48, 64], [2, 3, 7, 5], [223, 224, 224, 224], [150, 100, 300, 200]];
    for (const [w, h, outW, outH] of cases) {
      const px = new Uint8Array(w * h * 3).map((_, i) => (i * 37 + (i >> 5)) & 255);
      const twoStep = pixelsToTensor(resizeBilinear(px, w, h, 3, outW, outH), outW, outH, 3, IMAGENET);
      expect(firstDifference(enlargeRgbToNchw(rgbRows(px, w, h), outW, outH, IMAGENET), twoStep), `${w}x${h} -> ${outW}x${outH}`).toBe('none');
      // The same pixels as the region at (5, 3) of a wider and taller RGBA image (as the JPEG decoder
      // leaves them), every other byte there distinct.
      const rowBytes = (w + 9) * 4;
      const rgba = new Uint8Array(rowBytes * (h + 7)).map((_, i) => (i * 11 + 101) & 255);
      const first = 3 * rowBytes + 5 * 4;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgba.set(px.subarray((y * w + x) * 3, (y * w + x) * 3 + 3), first + y * rowBytes + x * 4);
      const fromRgba = enlargeRgbToNchw({ data: rgba.subarray(first), width: w, height: h, pixelBytes: 4, rowBytes }, outW, outH, IMAGENET);
      expect(firstDifference(fromRgba, twoStep), `${w}x${h} -> ${outW}x${outH}, RGBA rows`).toBe('none');
    }
  });
});

describe('reused input tensors', () => {
  const MNIST: Preprocessing = { color: 'grey', resize: { kind: 'fill', width: 28, height: 28 }, range: [0, 255], ink: 'bright', layout: 'NCHW' };
  const DIGITS: Preprocessing = { color: 'grey', resize: { kind: 'fill', width: 8, height: 8 }, range: [0, 16], ink: 'bright', layout: 'flat' };
  const NHWC: Preprocessing = { ...IMAGENET, layout: 'flat' };

  it('every path writes every value: a tensor full of old values comes out as a new one', async () => {
    const limits = { maxPixels: 50e6 };
    // tiger.jpg (304x166): enlarged by the WebAssembly kernel; squirrel.jpg: reduced by libvips; then grey paths and the interleaved layout.
    const cases: Array<[string, Preprocessing]> = [['tiger.jpg', IMAGENET], ['squirrel.jpg', IMAGENET], ['tiger.jpg', NHWC], ['digit-4.png', MNIST], ['digit-5.jpg', DIGITS], ['kitten.png', MNIST]];
    for (const [file, pre] of cases) {
      const photo = image(file);
      const info = await readImageInfo(photo, limits);
      const fresh = await imageToTensor(photo, info, pre, limits);
      const pool = new TensorPool(1);
      pool.give(new Float32Array(fresh.data.length).fill(Number.NaN));
      const reused = await imageToTensor(photo, info, pre, limits, pool);
      expect(pool.available(fresh.data.length), file).toBe(0);
      expect(Array.from(reused.data), `${file} ${pre.resize.kind} ${pre.layout}`).toEqual(Array.from(fresh.data));
    }
  });

  it('a tensor of the wrong size is refused, not half written', () => {
    const px = new Uint8Array(10 * 10 * 3);
    expect(() => enlargeRgbToNchw(rgbRows(px, 10, 10), 20, 20, IMAGENET, new Float32Array(20 * 20 * 3 - 1))).toThrow(/holds 1199 values, not 1200/);
    expect(() => pixelsToTensor(px, 10, 10, 3, IMAGENET, new Float32Array(301))).toThrow(/holds 301 values, not 300/);
  });
});

describe('TensorPool', () => {
  it('gives back what it was given, by length, and keeps at most its limit', () => {
    const pool = new TensorPool(2);
    const a = new Float32Array(8);
    const b = new Float32Array(8);
    const c = new Float32Array(8);
    pool.give(a);
    pool.give(a); // twice the same: kept once
    pool.give(b);
    pool.give(c); // over the limit: left to the garbage collector
    expect(pool.available(8)).toBe(2);
    expect(pool.available(4)).toBe(0);
    expect([pool.take(8), pool.take(8)]).toEqual(expect.arrayContaining([a, b]));
    const d = pool.take(8);
    expect(d).not.toBe(c);
    expect(d).toHaveLength(8);
    expect(pool.take(4)).toHaveLength(4);
  });

  it('refuses views into larger buffers and buffers moved to another thread', () => {
    const pool = new TensorPool(4);
    pool.give(new Float32Array(new ArrayBuffer(64), 16, 8));
    pool.give(new Float32Array(new ArrayBuffer(64), 0, 8));
    const moved = new Float32Array(8);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(moved, [moved.buffer]);
    port1.close();
    port2.close();
    expect(moved.byteLength).toBe(0);
    pool.give(moved);
    expect(pool.available(8)).toBe(0);
    expect(pool.available(0)).toBe(0);
  });
});
