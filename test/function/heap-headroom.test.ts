// The heap headroom is 16 MB of V8's own heap (what V8's collection limits count), made once per
// process in slices. What it is for (no endless major collections under load) is tested on a real
// function process in process.test.ts.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { HEAP_HEADROOM_BYTES, heapHeadroomBytes, reserveHeapHeadroom } from '../../src/function/heap-headroom.js';

describe('heap headroom', () => {
  it('holds 16 MB in the old generation, made once whoever asks', { timeout: 20_000 }, async () => {
    // Every slice is a large object: the large-object spaces hold the headroom, whatever else V8 frees
    // meanwhile elsewhere in the heap.
    const largeObjects = () =>
      v8
        .getHeapSpaceStatistics()
        .filter((s) => s.space_name === 'large_object_space' || s.space_name === 'new_large_object_space')
        .reduce((sum, s) => sum + s.space_used_size, 0);
    expect(heapHeadroomBytes()).toBe(0);
    expect(largeObjects()).toBeLessThan(HEAP_HEADROOM_BYTES);
    const first = reserveHeapHeadroom();
    expect(reserveHeapHeadroom()).toBe(first);
    await first;
    expect(heapHeadroomBytes()).toBe(HEAP_HEADROOM_BYTES);
    expect(HEAP_HEADROOM_BYTES).toBe(16 * 1024 * 1024);
    expect(largeObjects()).toBeGreaterThanOrEqual(HEAP_HEADROOM_BYTES);
    await reserveHeapHeadroom();
    expect(heapHeadroomBytes()).toBe(HEAP_HEADROOM_BYTES);
  });
});
