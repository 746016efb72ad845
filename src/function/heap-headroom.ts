// Why: V8 starts marking the whole heap (the start of a major collection) whenever the room left in
// the old generation, before its limit, is smaller than the young generation. A serving function's
// heap is small: about 11 MB with MobileNetV2, and V8 sets the limit at a multiple of that. Under load,
// the young generation grows to its 16 MB maximum. From then on V8 starts marking again as soon as it
// has finished, whatever the function allocates.
//
// Measured on 2 vCPUs, MobileNetV2 at c=4 for 10 s: 47-53 major collections against 28-33
// scavenges. V8's helper threads spent 0.4-0.7 ms of CPU per request on marking, and the inference
// threads ran slower meanwhile.
//
// Holding 16 MB of numbers for the life of the process raises the old generation's size, and with it
// the room V8 leaves before the limit. An array of numbers has no pointers, so marking it costs nothing.
// Held from the process's start, it left one major collection (at start) in 10 s and 0.13-0.28 ms of
// helper CPU per request, in 5 of 5 runs.
//
// It is made right after the function turns ready, in slices between requests: 0-2 major collections
// in 1600 requests sent from that moment on, in 3 of 3 runs. Made while the models loaded, it delayed
// start-up by about 120 ms on the development VM (fresh memory is slow there). Made a second after
// ready, it came after the cycle had begun under load and did not end it (26 major collections in 1600
// requests). Figures for requests/s and latency: docs/performance-history.md.
//
// Node's --max-semi-space-size (a smaller young generation) is not a substitute: it would have to be
// on every node command line, including `pifaas serve`, and with 4 MB the cycle came back in 3 of 6
// runs.

/** As large as the young generation can grow (16 MB on 64-bit Node 20). */
export const HEAP_HEADROOM_BYTES = 16 * 1024 * 1024;

/**
 * The headroom is made in slices of this size, one per turn of the event loop: writing fresh memory is
 * slow on some virtual machines (16 MB took 50-120 ms of CPU on the development VM, about 1 ms per
 * slice), and a request that arrives meanwhile waits for one slice at a time. Each slice is larger
 * than V8's largest ordinary object, so it is a large object of its own, which the collector never
 * moves.
 */
const SLICE_BYTES = 256 * 1024;

const slices: number[][] = [];
let reserving: Promise<void> | undefined;

/**
 * Holds the headroom for the life of the process; once per process, whoever calls. Each slice is a
 * two-number array stretched to its length: V8 keeps such an array as one block of unboxed doubles
 * (the gaps marked as holes), which marking does not look into.
 */
export function reserveHeapHeadroom(): Promise<void> {
  reserving ??= (async () => {
    while (slices.length * SLICE_BYTES < HEAP_HEADROOM_BYTES) {
      const slice = [0.5, 0.5];
      slice.length = SLICE_BYTES / 8;
      slices.push(slice);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return reserving;
}

/** Bytes held so far (in /_/health). */
export function heapHeadroomBytes(): number {
  return slices.length * SLICE_BYTES;
}
