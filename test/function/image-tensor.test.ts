// The function's own bilinear enlargement (photos smaller than the model's input) must give the
// pixels sharp's `linear` resize gives, and its fused tensor path (WebAssembly) the values of the two-step one.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { enlargeRgbToNchw, pixelsToTensor, resizeBilinear } from '../../src/function/image-tensor.js';
import type { Preprocessing } from '../../src/function/model-catalog.js';
import { image } from './helpers.js';

const IMAGENET: Preprocessing = { color: 'rgb', resize: { kind: 'center-crop', shorterSide: 224, crop: 224 }, range: [0, 1], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW' };

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

  it('the fused RGB path (WebAssembly) gives exactly the two-step values, edges and 1-pixel sides included', () => {
    const cases: Array<[number, number, number, number]> = [[97, 61, 224, 224], [166, 166, 224, 224], [1, 1, 224, 224], [1, 40, 64, 48], [40, 1, 48, 64], [2, 3, 7, 5], [223, 224, 224, 224], [150, 100, 300, 200]];
    for (const [w, h, outW, outH] of cases) {
      const px = new Uint8Array(w * h * 3).map((_, i) => (i * 37 + (i >> 5)) & 255);
      const fused = enlargeRgbToNchw(px, w, h, outW, outH, IMAGENET);
      const twoStep = pixelsToTensor(resizeBilinear(px, w, h, 3, outW, outH), outW, outH, 3, IMAGENET);
      expect(Array.from(fused), `${w}x${h} -> ${outW}x${outH}`).toEqual(Array.from(twoStep));
    }
  });
});
