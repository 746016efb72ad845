// How onnxruntime-node runs spread over threads: a run alone goes to a session with all cores (on the
// event loop when it is short), runs side by side to sessions with a share of them; warm-up runs every
// one of them. All give the same answers, and the layout and the run counts are reported.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inputDimsOf } from '../../src/function/classifier.js';
import { usableCores } from '../../src/function/cpu-quota.js';
import { imageToTensor, readImageInfo } from '../../src/function/image-tensor.js';
import { loadEngine, nodeSessionOptions } from '../../src/function/inference-engine.js';
import { defaultModelsDir, loadCatalog } from '../../src/function/model-catalog.js';
import { TensorPool } from '../../src/function/tensor-pool.js';
import { image } from './helpers.js';

const CORES = usableCores();

async function mobilenetInput(file: string): Promise<{ bytes: Uint8Array; data: Float32Array; dims: number[] }> {
  const catalog = await loadCatalog(defaultModelsDir());
  const entry = catalog.models.find((m) => m.id === 'mobilenetv2-12-int8');
  if (!entry) throw new Error('mobilenetv2-12-int8 is not in the catalog');
  const photo = image(file);
  const limits = { maxPixels: 50e6 };
  const t = await imageToTensor(photo, await readImageInfo(photo, limits), entry.preprocessing, limits);
  expect(t.dims).toEqual(inputDimsOf(entry));
  return { bytes: await readFile(path.join(catalog.dir, entry.file)), data: t.data, dims: t.dims };
}

function top1(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
  return best;
}

/** `alone` says tiger (292), and every run in `others` gives the same scores (sampled), to 3 decimals. */
function expectTigerLike(alone: Float32Array, others: Float32Array[]): void {
  expect(top1(alone)).toBe(292);
  for (const scores of others) {
    expect(top1(scores)).toBe(292);
    for (let i = 0; i < scores.length; i += 97) expect(scores[i]).toBeCloseTo(alone[i] as number, 3);
  }
}

describe('onnxruntime-node sessions', () => {
  it('set the intra-op thread count to the cores there are, not to onnxruntime\'s count of physical cores', () => {
    expect(nodeSessionOptions()).toMatchObject({ intraOpNumThreads: CORES, extra: { session: { intra_op: { allow_spinning: '0' } } } });
    expect(nodeSessionOptions(true, 1)).toMatchObject({ intraOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '1' } } } });
  });

  it('warm up, then give a run alone and runs side by side the same scores, and report their threads', async () => {
    const { bytes, data, dims } = await mobilenetInput('tiger.jpg');
    const engine = await loadEngine('node');
    const session = await engine.createSession(bytes);
    try {
      const warm = await session.warmUp(dims);
      expect(warm).toHaveLength(1000);
      const share = Math.max(1, Math.floor(CORES / engine.parallelRuns));
      // A short run alone goes on the event loop where shared sessions take the overlapping ones.
      const aloneOn = engine.parallelRuns > 1 ? 'event loop' : 'inference thread';
      expect(session.threads).toEqual({ alone: CORES, aloneOn, sideBySide: { runs: engine.parallelRuns, threads: engine.parallelRuns > 1 ? share : CORES } });

      const alone = await session.run(data.slice(), dims, { alone: true });
      expect(session.runs).toEqual(aloneOn === 'event loop' ? { eventLoop: 1, inferenceThreads: 0, allCores: 1 } : { eventLoop: 0, inferenceThreads: 1, allCores: 1 });
      // A caller that has other requests in flight gets an inference thread even for a run alone.
      const notAlone = await session.run(data.slice(), dims, { alone: false });
      const together = await Promise.all(Array.from({ length: engine.parallelRuns * 2 }, () => session.run(data.slice(), dims, { alone: true })));
      expect(session.runs.inferenceThreads).toBe(aloneOn === 'event loop' ? 1 + engine.parallelRuns * 2 - 1 : 2 + engine.parallelRuns * 2);
      // All cores: the run alone and the first of those sent together (it starts with nothing else
      // running); on one core every run, each on the solo session in turn.
      expect(session.runs.allCores).toBe(aloneOn === 'event loop' ? 2 : 2 + engine.parallelRuns * 2);
      expectTigerLike(alone, [notAlone, ...together]);
    } finally {
      await session.release();
    }
  });

  it('a run alone longer than the event loop may be held for goes to an inference thread (decided at warm-up), with the same scores', async () => {
    const { bytes, data, dims } = await mobilenetInput('tiger.jpg');
    for (const inlineRunMaxMs of [0, 0.001]) {
      const engine = await loadEngine('node', { inlineRunMaxMs });
      const session = await engine.createSession(bytes);
      try {
        await session.warmUp(dims);
        expect(session.threads.aloneOn).toBe('inference thread');
        const scores = await session.run(data.slice(), dims, { alone: true });
        expect(top1(scores)).toBe(292);
        expect(session.runs).toEqual({ eventLoop: 0, inferenceThreads: 1, allCores: 1 });
      } finally {
        await session.release();
      }
    }
  });

  it('in one of several serving processes: one run at a time, on all cores when alone and on this process\'s share otherwise, with the same scores', async () => {
    const { bytes, data, dims } = await mobilenetInput('tiger.jpg');
    const engine = await loadEngine('node', { processes: 2 });
    expect(engine.parallelRuns).toBe(1);
    const session = await engine.createSession(bytes);
    try {
      await session.warmUp(dims);
      expect(session.threads).toEqual({ alone: CORES, aloneOn: 'event loop', sideBySide: { runs: 2, threads: Math.max(1, Math.floor(CORES / 2)) } });
      expect(session.runs).toEqual({ eventLoop: 0, inferenceThreads: 0, allCores: 0 });
      let waitedForArrivals = 0;
      const ranOnEventLoop = () => waitedForArrivals++;
      const alone = await session.run(data.slice(), dims, { alone: true, ranOnEventLoop });
      const shared = await session.run(data.slice(), dims, { alone: false, ranOnEventLoop });
      expect(session.runs).toEqual({ eventLoop: 2, inferenceThreads: 0, allCores: 1 });
      // Only a run alone makes the classifier look for requests that arrived meanwhile.
      expect(waitedForArrivals).toBe(1);
      // Several at once (the classifier queues them; here the event loop runs them in turn).
      const together = await Promise.all(Array.from({ length: 3 }, () => session.run(data.slice(), dims, { alone: false })));
      expect(session.runs).toEqual({ eventLoop: 5, inferenceThreads: 0, allCores: 1 });
      expectTigerLike(alone, [shared, ...together]);
    } finally {
      await session.release();
    }
    // Runs that may not hold the event loop go to inference threads, alone or not.
    const threaded = await (await loadEngine('node', { processes: 2, inlineRunMaxMs: 0 })).createSession(bytes);
    try {
      await threaded.warmUp(dims);
      expect(threaded.threads.aloneOn).toBe('inference thread');
      expect(top1(await threaded.run(data.slice(), dims, { alone: true }))).toBe(292);
      expect(top1(await threaded.run(data.slice(), dims, { alone: false }))).toBe(292);
      expect(threaded.runs).toEqual({ eventLoop: 0, inferenceThreads: 2, allCores: 1 });
    } finally {
      await threaded.release();
    }
  });

  for (const choice of ['node', 'web'] as const) {
    it(`count no warm-up run, hand each input back for the next request (${choice} engine), and a reused one gives the same scores`, async () => {
      const { bytes, data, dims } = await mobilenetInput('tiger.jpg');
      const engine = await loadEngine(choice);
      const session = await engine.createSession(bytes);
      try {
        await session.warmUp(dims);
        // /_/health counts the runs requests asked for; warm-up's are not among them.
        expect(session.runs).toEqual({ eventLoop: 0, inferenceThreads: 0, allCores: 0 });
        const pool = new TensorPool(4);
        const input = data.slice();
        const first = await session.run(input, dims, { pool });
        expect(session.runs.eventLoop + session.runs.inferenceThreads).toBe(1);
        expect(pool.available(data.length)).toBe(1);
        const again = pool.take(data.length);
        expect(again.byteLength).toBe(data.byteLength);
        if (choice === 'node') expect(input.byteLength).toBe(0); // moved to the inference thread; `again` is its memory, moved back
        again.set(data);
        const second = await session.run(again, dims, { pool });
        expect(top1(first)).toBe(292);
        expect(Array.from(second)).toEqual(Array.from(first));
        // Side by side: every input comes back.
        await Promise.all(Array.from({ length: engine.parallelRuns + 1 }, () => session.run(data.slice(), dims, { pool })));
        expect(pool.available(data.length)).toBe(Math.min(4, 1 + engine.parallelRuns + 1));
      } finally {
        await session.release();
      }
    });
  }
});

