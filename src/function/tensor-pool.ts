// Why: every request needs an input tensor as large as the model's input (602 KB for a 224x224 RGB
// model). Allocated fresh, it is zero-filled, page-faulted in as it is written, moved to an inference
// thread and freed only when that thread's garbage collector runs; until then every new tensor is
// fresh memory. On the 2-vCPU development VM (2026-12-05, in-process, tiger.jpg) that made
// preprocessing take 1.9-2.6 ms on each of the first ~50 requests after start instead of 0.3-0.4 ms,
// and the first request 19 ms instead of 9. So the inference threads hand each input back with the
// answer, and a later request writes into it.

/** Whether `tensor` spans all of its own (not shared, not moved away) buffer, so that it may be moved or reused whole. */
export function ownsWholeBuffer(tensor: Float32Array): tensor is Float32Array<ArrayBuffer> {
  return tensor.buffer instanceof ArrayBuffer && tensor.byteOffset === 0 && tensor.byteLength > 0 && tensor.byteLength === tensor.buffer.byteLength;
}

/** Float32 buffers by length, kept for reuse; at most `keep` per length. */
export class TensorPool {
  private readonly free = new Map<number, Float32Array[]>();

  constructor(private readonly keep: number) {}

  /** A tensor of `length` values: a returned one (old values: the caller overwrites every one) or a new one. */
  take(length: number): Float32Array {
    return this.free.get(length)?.pop() ?? new Float32Array(length);
  }

  /** Hands a tensor back for reuse once nothing reads or writes it any more. */
  give(tensor: Float32Array): void {
    // A view into a larger buffer, or a buffer moved elsewhere, is not ours to reuse.
    if (!ownsWholeBuffer(tensor)) return;
    const list = this.free.get(tensor.length) ?? [];
    if (list.length >= this.keep || list.includes(tensor)) return;
    list.push(tensor);
    this.free.set(tensor.length, list);
  }

  /** How many tensors of `length` are ready for reuse. */
  available(length: number): number {
    return this.free.get(length)?.length ?? 0;
  }
}
