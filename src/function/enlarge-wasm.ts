// Why: the bilinear enlargement fused with normalisation (image-tensor.ts) is the hot loop of every
// small photo, and in JavaScript each typed-array access pays a detached-buffer check once any
// ArrayBuffer has been transferred (the inference worker threads do that on every request), which
// made it cost about as much as the JPEG decode. The same integer arithmetic in WebAssembly has no
// such checks. The module is small enough to assemble here from named opcodes (no build step, no
// binary blob): one function per pass (the horizontal one for RGB and for RGBA rows), driven from
// JavaScript row by row.
import { wasm, type WasmMemory } from './wasm-api.js';

/** WebAssembly opcodes used below (https://webassembly.github.io/spec/core/binary/instructions.html). */
const OP = {
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  i32Load8u: 0x2d,
  i32Store: 0x36,
  f32Store: 0x38,
  i32Const: 0x41,
  i32LtU: 0x49,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Shl: 0x74,
  i32ShrU: 0x76,
} as const;
const I32 = 0x7f;

/** Unsigned and signed LEB128, as the binary format stores integers. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

const get = (i: number) => [OP.get, i];
const set = (i: number) => [OP.set, i];
const tee = (i: number) => [OP.tee, i];
const i32 = (n: number) => [OP.i32Const, ...sleb(n)];
/** Memory access with a constant byte offset (alignment hint: natural). */
const load8 = (offset = 0) => [OP.i32Load8u, 0, ...uleb(offset)];
const load32 = () => [OP.i32Load, 2, 0];
const store32 = () => [OP.i32Store, 2, 0];
const loadF32 = () => [OP.f32Load, 2, 0];
const storeF32 = () => [OP.f32Store, 2, 0];

/** Bilinear weights in fixed point: 11 bits per axis (image-tensor.ts uses the same). */
export const WEIGHT_BITS = 11;
const ONE = 1 << WEIGHT_BITS;

/**
 * hrow(src, xt, n, dst): one source row interpolated horizontally. src: byte address of the row's
 * first pixel (R, G, B in its first three bytes, pixels `pixelBytes` apart: 3 for RGB, 4 for RGBA);
 * xt: n int32 entries (byte offset of the left pixel << 12 | weight of the right one); dst: three
 * int32 planes of n values (R, G, B) = left * (ONE - f) + right * f.
 */
const HROW_PARAMS = 4;
function hrowBody(pixelBytes: number): number[] {
  const [src, xt, n, dst] = [0, 1, 2, 3];
  const [end, p, a, f, g, plane] = [4, 5, 6, 7, 8, 9];
  /** dst[plane * k] = px[a + c] * g + px[a + c + pixelBytes] * f */
  const channel = (c: number, k: number) => [
    ...get(dst), ...(k ? [...get(plane), ...(k === 2 ? [...i32(1), OP.i32Shl] : []), OP.i32Add] : []),
    ...get(a), ...load8(c), ...get(g), OP.i32Mul,
    ...get(a), ...load8(c + pixelBytes), ...get(f), OP.i32Mul, OP.i32Add,
    ...store32(),
  ];
  return [
    1, 6, I32, // six i32 locals
    ...get(n), ...i32(2), OP.i32Shl, ...tee(plane), ...get(xt), OP.i32Add, ...set(end),
    OP.loop, 0x40,
    ...get(xt), ...load32(), ...tee(p), ...i32(12), OP.i32ShrU, ...get(src), OP.i32Add, ...set(a),
    ...get(p), ...i32(4095), OP.i32And, ...set(f), ...i32(ONE), ...get(f), OP.i32Sub, ...set(g),
    ...channel(0, 0), ...channel(1, 1), ...channel(2, 2),
    ...get(dst), ...i32(4), OP.i32Add, ...set(dst),
    ...get(xt), ...i32(4), OP.i32Add, ...tee(xt), ...get(end), OP.i32LtU, OP.brIf, 0,
    OP.end,
    OP.end,
  ];
}

/**
 * vrow(out, hw, up, lo, lut, fy, n): one output row. up, lo: the two horizontally interpolated rows
 * (three int32 planes of n); v = (up * (ONE - fy) + lo * fy + ONE²/2) >> 22 is the 8-bit value,
 * lut: three float32 tables of 256 (one per channel); out: the row's first float in plane 0, planes
 * hw bytes apart.
 */
const VROW_PARAMS = 7;
function vrowBody(): number[] {
  const [out, hw, up, lo, lut, fy, n] = [0, 1, 2, 3, 4, 5, 6];
  const [gy, end, plane] = [7, 8, 9];
  const value = (k: number) => [
    ...get(up), ...(k ? [...get(plane), ...(k === 2 ? [...i32(1), OP.i32Shl] : []), OP.i32Add] : []), ...load32(), ...get(gy), OP.i32Mul,
    ...get(lo), ...(k ? [...get(plane), ...(k === 2 ? [...i32(1), OP.i32Shl] : []), OP.i32Add] : []), ...load32(), ...get(fy), OP.i32Mul,
    OP.i32Add, ...i32((ONE * ONE) / 2), OP.i32Add, ...i32(2 * WEIGHT_BITS), OP.i32ShrU,
  ];
  const channel = (k: number) => [
    ...get(out), ...(k ? [...get(hw), ...(k === 2 ? [...i32(1), OP.i32Shl] : []), OP.i32Add] : []),
    ...value(k), ...i32(2), OP.i32Shl, ...get(lut), OP.i32Add, ...(k ? [...i32(1024 * k), OP.i32Add] : []), ...loadF32(),
    ...storeF32(),
  ];
  return [
    1, 3, I32, // three i32 locals
    ...i32(ONE), ...get(fy), OP.i32Sub, ...set(gy),
    ...get(n), ...i32(2), OP.i32Shl, ...tee(plane), ...get(up), OP.i32Add, ...set(end),
    OP.loop, 0x40,
    ...channel(0), ...channel(1), ...channel(2),
    ...get(out), ...i32(4), OP.i32Add, ...set(out),
    ...get(lo), ...i32(4), OP.i32Add, ...set(lo),
    ...get(up), ...i32(4), OP.i32Add, ...tee(up), ...get(end), OP.i32LtU, OP.brIf, 0,
    OP.end,
    OP.end,
  ];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

function assemble(): Uint8Array {
  const funcType = (params: number) => [0x60, ...uleb(params), ...Array<number>(params).fill(I32), 0];
  const code = (body: number[]) => [...uleb(body.length), ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec([funcType(HROW_PARAMS), funcType(VROW_PARAMS)])), // types
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])), // import env.memory (min 1 page)
    ...section(3, vec([[0], [0], [1]])), // functions: hrow3, hrow4, vrow
    ...section(7, vec([[...name('hrow3'), 0x00, 0], [...name('hrow4'), 0x00, 1], [...name('vrow'), 0x00, 2]])), // exports
    ...section(10, vec([code(hrowBody(3)), code(hrowBody(4)), code(vrowBody())])), // code
  ]);
}

type Hrow = (src: number, xt: number, n: number, dst: number) => void;
interface Kernel {
  memory: WasmMemory;
  hrow3: Hrow;
  hrow4: Hrow;
  vrow: (out: number, hw: number, up: number, lo: number, lut: number, fy: number, n: number) => void;
}

let kernel: Kernel | undefined;
function getKernel(): Kernel {
  if (!kernel) {
    const memory = new wasm.Memory({ initial: 1 });
    const instance = new wasm.Instance(new wasm.Module(assemble()), { env: { memory } });
    kernel = { memory, ...(instance.exports as unknown as Omit<Kernel, 'memory'>) };
  }
  return kernel;
}

/**
 * Bilinear enlargement of 8-bit pixels to outW x outH, each value mapped through its channel's table,
 * into `out` as three planes (NCHW). px: from the first pixel to the end of the last row used, pixels
 * `pixelBytes` apart (RGB: 3; RGBA: 4, the alpha byte unread); xt: per output column, the byte offset
 * of the left source pixel << 12 | its right neighbour's weight; ys: per output row, the byte offsets
 * of the upper and lower source rows and the lower row's weight.
 */
export function enlargeRgbPlanes(
  px: Uint8Array,
  pixelBytes: 3 | 4,
  xt: Int32Array,
  ys: { i0: Int32Array; i1: Int32Array; f: Int32Array },
  outW: number,
  outH: number,
  luts: [Float32Array, Float32Array, Float32Array],
  out: Float32Array,
): void {
  const k = getKernel();
  const hrow = pixelBytes === 4 ? k.hrow4 : k.hrow3;
  const hw = outW * outH;
  const align = (n: number) => (n + 15) & ~15;
  // Memory layout: tables, source pixels, the two cached rows, then the output planes.
  const lutAt = 0;
  const xtAt = lutAt + 3 * 1024;
  const pxAt = align(xtAt + xt.byteLength);
  let upAt = align(pxAt + px.byteLength + 8);
  let loAt = upAt + outW * 12;
  const outAt = loAt + outW * 12;
  const need = outAt + hw * 12;
  if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / 65536));
  const mem = k.memory.buffer;
  new Float32Array(mem, lutAt, 256).set(luts[0]);
  new Float32Array(mem, lutAt + 1024, 256).set(luts[1]);
  new Float32Array(mem, lutAt + 2048, 256).set(luts[2]);
  new Int32Array(mem, xtAt, outW).set(xt);
  new Uint8Array(mem, pxAt, px.length).set(px);
  let upperRow = -1;
  let lowerRow = -1;
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] as number;
    const r1 = ys.i1[y] as number;
    if (upperRow !== r0) {
      if (lowerRow === r0) {
        [upAt, loAt] = [loAt, upAt];
        lowerRow = -1;
      } else hrow(pxAt + r0, xtAt, outW, upAt);
      upperRow = r0;
    }
    if (lowerRow !== r1) {
      hrow(pxAt + r1, xtAt, outW, loAt);
      lowerRow = r1;
    }
    k.vrow(outAt + y * outW * 4, hw * 4, upAt, loAt, lutAt, ys.f[y] as number, outW);
  }
  out.set(new Float32Array(mem, outAt, hw * 3));
}
