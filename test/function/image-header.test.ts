// The function reads the format and size of plain JPEGs and PNGs from their headers instead of asking
// libvips (image-header.ts). Whatever it reads must be exactly what libvips says, on real photos, on
// every kind of JPEG and PNG sharp writes, and on damaged files; files with EXIF data (whose
// orientation libvips applies) must be left to libvips, and the function must still see them turned.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readHeaderInfo } from '../../src/function/image-header.js';
import { readImageInfo } from '../../src/function/image-tensor.js';
import { bombPng, DIGITS, image, PHOTOS } from './helpers.js';

/** What libvips says: format and size after orientation, or undefined when it cannot read the header. */
async function libvipsSays(bytes: Buffer): Promise<{ format: string; width: number; height: number } | undefined> {
  try {
    const m = await sharp(bytes, { limitInputPixels: false }).metadata();
    return { format: m.format, width: m.autoOrient.width, height: m.autoOrient.height };
  } catch {
    return undefined;
  }
}

/** The header reader's answer without its JPEG decoder flag (checked on its own below). */
function sizeOf(bytes: Buffer): { format: string; width: number; height: number } | undefined {
  const info = readHeaderInfo(bytes);
  return info && { format: info.format, width: info.width, height: info.height };
}

/** A 40x20 image to encode in every way. */
const base = () => sharp({ create: { width: 40, height: 20, channels: 3, background: '#336699' } });

describe('image headers read without libvips', () => {
  it('give libvips’ answer for the real photos, and leave the one with EXIF data to libvips', async () => {
    const files = [...PHOTOS.map((p) => p.file), ...DIGITS.map((d) => d.file)];
    for (const file of files) {
      const bytes = image(file);
      const ours = sizeOf(bytes);
      if (file === 'squirrel.jpg') {
        expect(ours, 'squirrel.jpg carries EXIF data').toBeUndefined();
        continue;
      }
      expect(ours, file).toEqual(await libvipsSays(bytes));
    }
  });

  it('give libvips’ answer for every kind of JPEG and PNG; EXIF and XMP are left to libvips', async () => {
    const read: Array<[string, Buffer]> = [
      ['baseline JPEG', await base().jpeg().toBuffer()],
      ['progressive JPEG', await base().jpeg({ progressive: true }).toBuffer()],
      ['4:4:4 JPEG', await base().jpeg({ chromaSubsampling: '4:4:4' }).toBuffer()],
      ['greyscale JPEG', await base().greyscale().jpeg().toBuffer()],
      ['CMYK JPEG', await base().toColourspace('cmyk').jpeg().toBuffer()],
      ['JPEG with an ICC profile', await base().jpeg().withIccProfile('p3').toBuffer()],
      ['RGB PNG', await base().png().toBuffer()],
      ['RGBA PNG', await base().ensureAlpha(0.5).png().toBuffer()],
      ['16-bit PNG', await base().toColourspace('rgb16').png().toBuffer()],
      ['palette PNG', await base().png({ palette: true }).toBuffer()],
      ['interlaced PNG', await base().png({ progressive: true }).toBuffer()],
      ['greyscale PNG', await base().greyscale().png().toBuffer()],
    ];
    for (const [what, bytes] of read) {
      const ours = sizeOf(bytes);
      expect(ours, what).toBeDefined();
      expect(ours, what).toEqual(await libvipsSays(bytes));
    }
    const leftToLibvips: Array<[string, Buffer]> = [
      ['JPEG turned by EXIF', await base().jpeg().withMetadata({ orientation: 6 }).toBuffer()],
      ['JPEG with XMP', await base().jpeg().withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>').toBuffer()],
      ['PNG turned by EXIF', await base().png().withMetadata({ orientation: 6 }).toBuffer()],
      ['PNG with EXIF', await base().png().withExif({ IFD0: { Copyright: 'pifaas' } }).toBuffer()],
      ['WebP', await base().webp().toBuffer()],
      ['GIF', await base().gif().toBuffer()],
    ];
    for (const [what, bytes] of leftToLibvips) expect(readHeaderInfo(bytes), what).toBeUndefined();
  });

  it('say which JPEGs libvips decodes to the decoder’s own pixels (no colour profile, 1 or 3 components, 8 bits)', async () => {
    const flag = async (img: ReturnType<typeof sharp>) => readHeaderInfo(await img.toBuffer())?.decoderPixels;
    expect(await flag(base().jpeg())).toBe(true);
    expect(await flag(base().jpeg({ progressive: true, optimiseCoding: true }))).toBe(true);
    expect(await flag(base().jpeg({ chromaSubsampling: '4:4:4' }))).toBe(true);
    expect(await flag(base().greyscale().jpeg())).toBe(true);
    expect(await flag(base().toColourspace('cmyk').jpeg()), 'CMYK: libvips converts with a profile').toBe(false);
    expect(await flag(base().jpeg().withIccProfile('p3')), 'ICC profile: libvips applies it').toBe(false);
    expect(await flag(base().png()), 'not a JPEG').toBeUndefined();
  });

  it('the function still sees images turned by EXIF orientation as libvips turns them', async () => {
    for (const bytes of [await base().jpeg().withMetadata({ orientation: 6 }).toBuffer(), await base().png().withMetadata({ orientation: 8 }).toBuffer()]) {
      const info = await readImageInfo(bytes, { maxPixels: 50e6 });
      expect({ width: info.width, height: info.height }).toEqual({ width: 20, height: 40 });
    }
  });

  it('damaged files: an answer is only ever libvips’ own (or libvips cannot read the header at all)', async () => {
    // A fixed pseudo-random sequence: the same damage on every run.
    let seed = 20261205;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let answered = 0;
    let compared = 0;
    for (const file of ['tiger.jpg', 'coffee.png', 'digit-5.jpg', 'digit-0.png']) {
      const original = image(file);
      for (let n = 0; n < 120; n++) {
        let bytes = Buffer.from(original);
        if (n % 3 === 0) bytes = bytes.subarray(0, Math.floor(random() * bytes.length));
        else for (let k = 0; k < 1 + (n % 4); k++) bytes[Math.floor(random() * Math.min(bytes.length, n % 3 === 1 ? 300 : bytes.length))] = Math.floor(random() * 256);
        const ours = sizeOf(bytes);
        if (!ours) continue;
        answered++;
        const theirs = await libvipsSays(bytes);
        if (!theirs) continue;
        compared++;
        expect(ours, `${file}, damage #${n}`).toEqual(theirs);
      }
    }
    // The check above must have had work to do.
    expect(answered).toBeGreaterThan(100);
    expect(compared).toBeGreaterThan(100);
  });

  it('a decompression bomb is still refused from its header alone', async () => {
    const bomb = await bombPng(20000, 20000);
    expect(readHeaderInfo(bomb)).toEqual({ format: 'png', width: 20000, height: 20000 });
    await expect(readImageInfo(bomb, { maxPixels: 50e6 })).rejects.toMatchObject({ status: 413, code: 'image_too_large' });
  });
});
