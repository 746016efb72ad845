// Top-N selection and softmax: the same classes in the same order as a full sort, probabilities that
// sum to 1, labels and WordNet ids attached.
import { describe, expect, it } from 'vitest';
import { softmax, topPredictions } from '../../src/function/predictions.js';

describe('topPredictions', () => {
  it('returns the k best classes, best first, for any k (checked against a full sort)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 10 - 5;
    const labels = Array.from({ length: 1000 }, (_, i) => ({ wnid: `n${String(i).padStart(8, '0')}`, label: `class ${i}` }));
    for (let t = 0; t < 50; t++) {
      const scores = Float32Array.from({ length: 1000 }, rand);
      for (const k of [1, 2, 5, 10, 31, 32, 1000]) {
        const got = topPredictions(scores, true, labels, k);
        const want = Array.from(scores.keys()).sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0)).slice(0, k);
        expect(got.map((p) => p.index)).toEqual(want);
        expect(got[0]).toMatchObject({ wnid: labels[want[0] ?? 0]?.wnid, label: labels[want[0] ?? 0]?.label });
      }
    }
  });

  it('softmax gives probabilities summing to 1 (and leaves probabilities alone when the model already made them)', () => {
    const p = softmax(Float32Array.from([1000, 1001, 999]));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(p[1]).toBeGreaterThan(p[0] ?? 1);
    const already = Float32Array.from([0.1, 0.7, 0.2]);
    expect(topPredictions(already, false, [{ label: 'a' }, { label: 'b' }, { label: 'c' }], 2)).toEqual([
      { index: 1, label: 'b', probability: 0.7 },
      { index: 2, label: 'c', probability: 0.2 },
    ]);
  });
});
