// Why: the project's TypeScript libs (ES2023, no DOM) declare none of the WebAssembly JS API, and
// the function uses a little of it (enlarge-wasm.ts, jpeg-decoder.ts): declared here, once.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
/** A compiled module: every instance made from it shares its machine code. */
export type WasmModule = object;
export interface WasmInstance {
  exports: object;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
  compile(bytes: Uint8Array): Promise<WasmModule>;
}
export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
