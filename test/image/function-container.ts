// Why: the image suites check a built function image the way a user would: start a container on the
// test daemon, wait for the of-watchdog health route, and post the tiger photo to it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';

export const TIGER = path.resolve(import.meta.dirname, '../../../shared/testdata/images/tiger.jpg');

export interface Classification {
  engine: string;
  model: string;
  predictions: { label: string; probability: number }[];
}

/** Starts the function container, records its ID in `started`, and returns its address on the daemon's bridge. */
export async function startFunction(docker: Docker, ref: string, started: string[], binds: string[] = [], hostConfig: Docker.HostConfig = {}): Promise<string> {
  const c = await docker.createContainer({ Image: ref, HostConfig: { Binds: binds, ...hostConfig } });
  started.push(c.id);
  await c.start();
  return ((await c.inspect()).NetworkSettings as unknown as { IPAddress: string }).IPAddress;
}

/** Polls /_/health until it answers 200; returns the milliseconds it took. */
export async function waitHealthy(ip: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const ok = await fetch(`http://${ip}:8080/_/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false);
    if (ok) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`http://${ip}:8080/_/health was not 200 within ${timeoutMs / 1000} s`);
}

/** Posts tiger.jpg to the function; returns its HTTP status and answer. */
export async function classifyTiger(ip: string): Promise<{ status: number; answer: Classification }> {
  const res = await fetch(`http://${ip}:8080/`, { method: 'POST', body: await readFile(TIGER), signal: AbortSignal.timeout(180_000) });
  return { status: res.status, answer: (await res.json()) as Classification };
}
