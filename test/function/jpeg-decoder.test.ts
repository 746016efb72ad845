// The function decodes small plain JPEGs itself (jpeg-decoder.ts) instead of through libvips. That is
// only right if the pixels are libvips' own, bit for bit, on every kind of JPEG it takes, and if every
// file libvips refuses (corrupt, truncated) is left to libvips, so that its error still answers.
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readHeaderInfo } from '../../src/function/image-header.js';
import { enlargeRgbToNchw, imageToTensor, readImageInfo } from '../../src/function/image-tensor.js';
import { decodeJpegRegion, JPEG_DECODER_MAX_PIXELS, jpegDecoderReplaced, packedRgb, rgbRows, startJpegDecoder, type PixelRegion, type PixelRows } from '../../src/function/jpeg-decoder.js';
import { findModel, loadCatalog, type Preprocessing } from '../../src/function/model-catalog.js';
import { image, REPO } from './helpers.js';
import path from 'node:path';

/** libvips' RGB pixels of `region` as the function asks for them (failing on decoder warnings), or undefined when it refuses. */
async function libvipsRgb(bytes: Buffer, region: PixelRegion): Promise<Buffer | undefined> {
  try {
    return await sharp(bytes, { failOn: 'warning', autoOrient: true }).extract(region).removeAlpha().toColourspace('srgb').raw().toBuffer();
  } catch {
    return undefined;
  }
}

/** The decoder's pixels of a region, packed as libvips gives them (undefined when it leaves the file to libvips). */
function rgbOf(rows: PixelRows | undefined): Buffer | undefined {
  return rows && Buffer.from(packedRgb(rows));
}

function whole(bytes: Buffer): { width: number; height: number; region: PixelRegion } {
  const h = readHeaderInfo(bytes);
  if (!h) throw new Error('no header');
  return { width: h.width, height: h.height, region: { left: 0, top: 0, width: h.width, height: h.height } };
}

/** Real photo content (tiger.jpg) at a given size, to encode in every way. */
const tiger = (width: number, height: number) => sharp(image('tiger.jpg')).resize(width, height, { fit: 'fill' });

/** Black and white pixels alternating: the largest DCT coefficients a picture can have. */
const checkerboard = () => sharp(Buffer.from(Array.from({ length: 64 * 64 }, (_, i) => ((i % 64) + Math.floor(i / 64)) % 2 * 255)), { raw: { width: 64, height: 64, channels: 1 } }).toColourspace('srgb');

let mobilenet: Preprocessing;
beforeAll(async () => {
  await startJpegDecoder(image('tiger.jpg'));
  mobilenet = findModel(await loadCatalog(path.join(REPO, 'models')), 'mobilenetv2-12-int8').preprocessing;
});

describe('the WebAssembly JPEG decoder', () => {
  it('gives libvips’ pixels bit for bit on every kind of plain JPEG, whole and cut out', async () => {
    const kinds: Array<[string, Buffer]> = [
      ['tiger.jpg itself', image('tiger.jpg')],
      ['digit-5.jpg itself', image('digit-5.jpg')],
      ['baseline 4:2:0', await tiger(304, 166).jpeg({ quality: 80 }).toBuffer()],
      ['quality 100', await tiger(200, 150).jpeg({ quality: 100 }).toBuffer()],
      ['quality 5', await tiger(200, 150).jpeg({ quality: 5 }).toBuffer()],
      ['quality 1', await tiger(200, 150).jpeg({ quality: 1 }).toBuffer()],
      ['quality 1, checkerboard', await checkerboard().jpeg({ quality: 1 }).toBuffer()],
      ['progressive', await tiger(250, 180).jpeg({ progressive: true }).toBuffer()],
      ['4:4:4', await tiger(180, 240).jpeg({ chromaSubsampling: '4:4:4' }).toBuffer()],
      ['greyscale, decoded to RGB', await tiger(220, 160).greyscale().jpeg().toBuffer()],
      ['optimised Huffman tables', await tiger(160, 160).jpeg({ optimiseCoding: true, mozjpeg: true }).toBuffer()],
      ['trellis quantisation, other tables', await tiger(160, 200).jpeg({ trellisQuantisation: true, overshootDeringing: true, quantisationTable: 3 }).toBuffer()],
      ['odd size 33x17', await tiger(33, 17).jpeg().toBuffer()],
      ['one pixel', await tiger(1, 1).jpeg().toBuffer()],
      ['tall and thin 7x300', await tiger(7, 300).jpeg().toBuffer()],
      ['largest it takes, 256x512', await tiger(256, 512).jpeg().toBuffer()],
    ];
    for (const [what, bytes] of kinds) {
      const { width, height, region } = whole(bytes);
      expect(readHeaderInfo(bytes)?.decoderPixels, what).toBe(true);
      const ours = rgbOf(decodeJpegRegion(bytes, width, height, region));
      expect(ours, what).toBeDefined();
      expect(ours?.equals((await libvipsRgb(bytes, region)) as Buffer), `${what}: whole image`).toBe(true);
      const inner = { left: Math.floor(width / 3), top: Math.floor(height / 4), width: Math.max(1, Math.floor(width / 2)), height: Math.max(1, Math.floor(height / 2)) };
      const cut = rgbOf(decodeJpegRegion(bytes, width, height, inner));
      expect(cut?.equals((await libvipsRgb(bytes, inner)) as Buffer), `${what}: a region`).toBe(true);
    }
    // Request bodies are often views into larger buffers.
    const photo = image('tiger.jpg');
    const padded = Buffer.alloc(photo.length + 1000, 0xd9);
    photo.copy(padded, 500);
    const { width, height, region } = whole(photo);
    const fromView = rgbOf(decodeJpegRegion(padded.subarray(500, 500 + photo.length), width, height, region));
    expect(fromView?.equals((await libvipsRgb(photo, region)) as Buffer), 'a view into a larger buffer').toBe(true);
  });

  it('the function’s tensor for a small JPEG is the one libvips’ pixels give', async () => {
    const bytes = image('tiger.jpg');
    const info = await readImageInfo(bytes, { maxPixels: 50e6 });
    const region = { left: 69, top: 0, width: 166, height: 166 };
    const expected = enlargeRgbToNchw(rgbRows(new Uint8Array((await libvipsRgb(bytes, region)) as Buffer), 166, 166), 224, 224, mobilenet);
    const got = await imageToTensor(bytes, info, mobilenet, { maxPixels: 50e6 });
    expect(Buffer.from(got.data.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('leaves every damaged JPEG that libvips refuses to libvips (its error answers)', async () => {
    // Damaged entropy-coded data can decode, without a warning from either decoder, to coefficients no
    // encoder writes. Where their inverse DCT overflows, sharp's native build (SIMD) clamps and this
    // one (plain C) wraps around, so parts of that garbage differ (measured on 1,000 damaged files
    // that both decoded: none in 92%, up to 21% of the values in one). Sound files never overflow
    // (the first test, bit for bit, down to quality 1).
    // A fixed pseudo-random sequence: the same damage on every run.
    let seed = 20261205;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let refusedByBoth = 0;
    let decodedByBoth = 0;
    let overflowed = 0;
    const originals = [image('tiger.jpg'), image('digit-5.jpg'), await tiger(200, 120).jpeg({ progressive: true }).toBuffer()];
    for (const [k, original] of originals.entries()) {
      for (let n = 0; n < 150; n++) {
        let bytes = Buffer.from(original);
        if (n % 3 === 0) bytes = bytes.subarray(0, Math.floor(random() * bytes.length));
        else for (let j = 0; j < 1 + (n % 4); j++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        const header = readHeaderInfo(bytes);
        if (!header?.decoderPixels) continue;
        const region = { left: 0, top: 0, width: header.width, height: header.height };
        if (header.width * header.height > JPEG_DECODER_MAX_PIXELS) continue;
        // After a decoder error a fresh instance is made; wait for it, so every file gets its answer here.
        await jpegDecoderReplaced();
        const ours = rgbOf(decodeJpegRegion(bytes, header.width, header.height, region));
        const theirs = await libvipsRgb(bytes, region);
        if (!theirs) {
          expect(ours, `original #${k}, damage #${n}: libvips refuses it`).toBeUndefined();
          refusedByBoth++;
        } else if (ours) {
          decodedByBoth++;
          if (!ours.equals(theirs)) overflowed++;
        }
      }
    }
    // The checks above must have had work to do.
    expect(refusedByBoth).toBeGreaterThan(100);
    expect(decodedByBoth).toBeGreaterThan(20);
    expect(overflowed, 'damaged files decoded with some values apart').toBeLessThan(decodedByBoth / 5);
  });

  it('decodes again after a file it could not decode', async () => {
    const good = image('tiger.jpg');
    const { width, height, region } = whole(good);
    // Bytes turned over in the entropy-coded data: libjpeg stops at a marker it does not know (an error, not a warning).
    const broken = Buffer.from(good);
    for (let i = 2000; i < 2100; i++) broken[i] = (broken[i] as number) ^ 0x5a;
    expect(decodeJpegRegion(broken, width, height, region)).toBeUndefined();
    expect(decodeJpegRegion(good, width, height, region), 'while its replacement is made, libvips decodes').toBeUndefined();
    await jpegDecoderReplaced();
    expect(decodeJpegRegion(good, width, height, region)).toBeDefined();
  });

  it('leaves JPEGs larger than its limit, or not the size their header says, to libvips', async () => {
    const big = await tiger(257, 512).jpeg().toBuffer();
    const b = whole(big);
    expect(decodeJpegRegion(big, b.width, b.height, b.region)).toBeUndefined();
    const small = image('tiger.jpg');
    expect(decodeJpegRegion(small, 300, 166, { left: 0, top: 0, width: 300, height: 166 })).toBeUndefined();
    expect(decodeJpegRegion(small, 304, 166, { left: 200, top: 0, width: 166, height: 166 }), 'a region beyond the image').toBeUndefined();
  });
});
