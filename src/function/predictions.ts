// Why: a model's raw output (logits or probabilities) becomes what users read: the top-N classes with
// index, WordNet id (ImageNet synsets) and label, and probabilities that sum to 1. Label files are
// read once per model at load time.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog, ModelEntry } from './model-catalog.js';

export interface Label {
  /** WordNet synset id (ImageNet), when the label file has one. */
  wnid?: string;
  label: string;
}

export interface Prediction {
  index: number;
  wnid?: string;
  label: string;
  probability: number;
}

/** Reads a model's label file: `synset` lines are "n01440764 tench, Tinca tinca", `plain` lines a label. */
export async function loadLabels(catalog: Catalog, model: ModelEntry): Promise<Label[]> {
  const file = path.join(catalog.dir, model.labels.file);
  const text = await readFile(file, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.map((line) => {
    if (model.labels.format === 'synset') {
      const m = /^(n\d{8})\s+(.*)$/.exec(line.trim());
      if (!m) throw new Error(`${file}: "${line}" is not a synset line ("n01440764 tench, Tinca tinca")`);
      return { wnid: m[1], label: (m[2] ?? '').trim() };
    }
    return { label: line.trim() };
  });
}

/** Numerically stable softmax (in place on a copy). */
export function softmax(values: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  const out = new Float32Array(values.length);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const e = Math.exp((values[i] ?? 0) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / sum;
  return out;
}

/** The `top` most probable classes, best first. */
export function topPredictions(scores: Float32Array, applySoftmax: boolean, labels: readonly Label[], top: number): Prediction[] {
  const probs = applySoftmax ? softmax(scores) : scores;
  return topIndices(probs, Math.max(1, Math.min(top, probs.length))).map((index) => {
    const l = labels[index];
    return {
      index,
      ...(l?.wnid ? { wnid: l.wnid } : {}),
      label: l?.label ?? String(index),
      probability: Number((probs[index] ?? 0).toFixed(6)),
    };
  });
}

/** Indices of the k largest values, largest first (one pass with a small sorted list; k is usually 1-10). */
function topIndices(values: Float32Array, k: number): number[] {
  if (k >= 32) return Array.from(values.keys()).sort((x, y) => (values[y] as number) - (values[x] as number)).slice(0, k);
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (idx.length === k && v <= (values[idx[k - 1] as number] as number)) continue;
    let pos = idx.length === k ? k - 1 : idx.length;
    while (pos > 0 && (values[idx[pos - 1] as number] as number) < v) pos--;
    idx.splice(pos, 0, i);
    if (idx.length > k) idx.pop();
  }
  return idx;
}
