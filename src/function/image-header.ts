// Why: before decoding, the function must know an image's format and size (the crop region, the
// pixel limit, faas-digits' model choice). Asking sharp costs a whole libvips call per request, a trip
// through libuv's and libvips' threads: 0.2 ms alone and 0.5-0.9 ms of CPU per request under load on
// 2 vCPUs, where MobileNetV2's inference takes 2.2 ms (measured 2026-12-05). For JPEG and PNG, what
// most requests carry, a few header bytes say it. This module reads them only where the answer is
// certain to be libvips' own: a sound header and no EXIF data (whose orientation libvips would apply,
// swapping width and height). Anything else, including every doubt, answers "unknown" and sharp decides.
export interface HeaderInfo {
  /** sharp's format name. */
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /**
   * JPEG only: libvips' sRGB pixels are the JPEG decoder's own, so another build of the same decoder
   * gives the same pixels (see jpeg-decoder.ts): 8-bit Huffman-coded (baseline, extended or
   * progressive), 1 or 3 components, and no APP2 segment (no ICC profile for sharp to apply, no
   * multi-picture data).
   */
  decoderPixels?: boolean;
}

/** JPEG start-of-frame markers (SOF0-SOF15 except DHT, JPG and DAC), which carry the frame size. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * Walks a JPEG's marker segments up to the first scan (all libjpeg reads before decoding, and all
 * libvips takes metadata from). Unknown on any APP1 segment (EXIF, or XMP: left to libvips), a
 * second frame header, a zero size (the height comes later, in a DNL marker) or any irregularity.
 */
function jpegHeader(b: Buffer): HeaderInfo | undefined {
  let size: { width: number; height: number } | undefined;
  let decoderPixels = true;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1] as number;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xda) return size ? { format: 'jpeg', ...size, decoderPixels } : undefined;
    // Markers without a length (SOI, EOI, RSTn, TEM) do not belong before the first scan.
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9) || marker === 0xe1) return undefined;
    const length = b.readUInt16BE(i + 2);
    if (length < 2 || i + 2 + length > b.length) return undefined;
    if (isStartOfFrame(marker)) {
      if (size || length < 8) return undefined;
      const height = b.readUInt16BE(i + 5);
      const width = b.readUInt16BE(i + 7);
      if (width === 0 || height === 0) return undefined;
      size = { width, height };
      const components = b[i + 9];
      if (marker > 0xc2 || b[i + 4] !== 8 || (components !== 1 && components !== 3)) decoderPixels = false;
    }
    if (marker === 0xe2) decoderPixels = false;
    i += 2 + length;
  }
  return undefined;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Valid bit depths per PNG colour type. */
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * A PNG's IHDR (length, size, bit depth and colour type as libspng checks them; its checksum is left to
 * the decoder, which refuses a damaged one: zlib.crc32 needs Node 20.15 and pifaas runs on 20.9, its
 * arm/v7 test image on 20.11), then every chunk's header up to IEND: unknown if any carries EXIF data
 * or the chunk list is broken.
 */
function pngHeader(b: Buffer): HeaderInfo | undefined {
  if (b.length < 33 || b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const depth = b[24] as number;
  const colour = b[25] as number;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) return undefined;
  if (!PNG_DEPTHS[colour]?.includes(depth) || b[26] !== 0 || b[27] !== 0 || (b[28] as number) > 1) return undefined;
  let i = 33;
  while (i + 12 <= b.length) {
    const length = b.readUInt32BE(i);
    const type = b.toString('latin1', i + 4, i + 8);
    if (type === 'IEND') return { format: 'png', width, height };
    // eXIf, and the older zxIf/exIf of some writers: orientation that libvips may apply.
    if (/xif$/i.test(type)) return undefined;
    if (length > 0x7fffffff) return undefined;
    i += 12 + length;
  }
  return undefined;
}

/** Format and size from a JPEG or PNG header, or undefined whenever sharp must be asked. */
export function readHeaderInfo(bytes: Buffer): HeaderInfo | undefined {
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return jpegHeader(bytes);
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return pngHeader(bytes);
  return undefined;
}
