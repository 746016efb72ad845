// Why: users already log in to registries with `docker login`; pifaas reuses those saved credentials
// (config.json "auths", or a credential helper named by "credsStore"/"credHelpers") instead of asking
// for a password, and never prints or logs them.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DOCKER_HUB } from './image-ref.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

const configSchema = z.object({
  auths: z.record(z.string(), z.object({ auth: z.string().optional(), identitytoken: z.string().optional() })).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

function keysFor(registry: string): string[] {
  if (registry === DOCKER_HUB) return HUB_KEYS;
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function runHelper(helper: string, serverUrl: string): Promise<RegistryCredentials | null> {
  return new Promise((resolve) => {
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 10_000 }, (err, stdout) => {
      if (err) return resolve(null);
      const parsed = z.object({ Username: z.string(), Secret: z.string() }).safeParse(JSON.parse(stdout || '{}'));
      resolve(parsed.success ? { username: parsed.data.Username, password: parsed.data.Secret } : null);
    });
    child.stdin?.end(serverUrl);
  });
}

/** The saved credentials for a registry, or null when the user never logged in to it. */
export async function loadRegistryCredentials(registry: string): Promise<RegistryCredentials | null> {
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  let text: string;
  try {
    text = await readFile(join(dir, 'config.json'), 'utf8');
  } catch {
    return null;
  }
  const parsed = configSchema.safeParse(JSON.parse(text));
  if (!parsed.success) return null;
  const config = parsed.data;
  const keys = keysFor(registry);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean) ?? config.credsStore;
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (entry?.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  if (helper) return runHelper(helper, keys[0] ?? registry);
  return null;
}
