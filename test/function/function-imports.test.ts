// The function image installs only the function's own dependencies: src/function/ may import node
// builtins, onnxruntime-node, onnxruntime-web, sharp, @jsquash/jpeg, zod and prom-client, never CLI-side modules
// (commander, listr2, cli-progress, ssh2, dockerode, ...) nor code outside src/function/.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

const ALLOWED = new Set(['onnxruntime-node', 'onnxruntime-web', 'sharp', '@jsquash/jpeg', 'zod', 'prom-client']);

/** The package a specifier names: "@scope/name" or "name", without a path inside it. */
const packageOf = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

describe('src/function dependencies', () => {
  it('imports only builtins, the inference engines, sharp, @jsquash/jpeg and zod, and nothing outside src/function', async () => {
    const dir = path.join(REPO, 'src', 'function');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('main.ts');
    const offending: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(dir, f), 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)'([^']+)'/g)) {
        const spec = m[1] ?? '';
        const ok = spec.startsWith('node:') || (spec.startsWith('./') && !spec.includes('..')) || ALLOWED.has(packageOf(spec));
        if (!ok) offending.push(`${f}: ${spec}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
