// Why: the gateway's basic-auth password must survive between pifaas runs and work with faas-cli too,
// so pifaas keeps it where and how faas-cli does: ~/.openfaas/config.yml (or $OPENFAAS_CONFIG/config.yml),
// mode 0600 in a 0700 folder, `auths:` entries of {gateway, auth: basic, token: base64(user:password)}
// keyed by the exact gateway URL. The gateway URL is chosen as faas-cli's priority.go does: --gateway,
// then provider.gateway of stack.yml when it is not the default, then OPENFAAS_URL, then the default.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { UserError } from '../user-error.js';
import { GatewayClient, normalizeGatewayUrl, type GatewayCredentials } from './gateway-client.js';

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8080';
export const OPENFAAS_URL_ENV = 'OPENFAAS_URL';
export const OPENFAAS_CONFIG_ENV = 'OPENFAAS_CONFIG';

const authConfigSchema = z.object({
  gateway: z.string(),
  auth: z.string().optional(),
  token: z.string().optional(),
});
/** faas-cli keeps other top-level keys out of this file, but pifaas preserves anything it finds. */
const configFileSchema = z.looseObject({ auths: z.array(authConfigSchema).nullable().optional() });
type ConfigFile = z.infer<typeof configFileSchema>;

/** The folder faas-cli uses: $OPENFAAS_CONFIG, else ~/.openfaas. */
export function openfaasConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[OPENFAAS_CONFIG_ENV];
  if (override) return override.startsWith('~') ? path.join(homedir(), override.slice(1)) : override;
  return path.join(homedir(), '.openfaas');
}

export function openfaasConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(openfaasConfigDir(env), 'config.yml');
}

async function readConfig(file: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (e) {
    throw new UserError(`${file} is not valid YAML: ${(e as Error).message}`, 'fix or remove the file; `pifaas openfaas install` writes it again', 1, { cause: e });
  }
  const r = configFileSchema.safeParse(raw);
  if (!r.success) throw new UserError(`${file} is not an OpenFaaS CLI config file:\n${z.prettifyError(r.error)}`, 'it should hold `auths:` entries with gateway, auth and token');
  return r.data;
}

/** Encodes credentials the way faas-cli's EncodeAuth does. */
export function encodeBasicAuthToken(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

export function decodeBasicAuthToken(token: string): GatewayCredentials | undefined {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** The basic-auth credentials saved for exactly this gateway URL, if any. */
export async function lookupCredentials(gatewayUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<GatewayCredentials | undefined> {
  const gateway = normalizeGatewayUrl(gatewayUrl);
  const file = openfaasConfigFile(env);
  const cfg = await readConfig(file);
  const entry = (cfg.auths ?? []).find((a) => normalizeGatewayUrl(a.gateway) === gateway);
  if (!entry?.token || (entry.auth && entry.auth !== 'basic')) return undefined;
  const creds = decodeBasicAuthToken(entry.token);
  if (!creds) throw new UserError(`the saved credentials for ${gateway} in ${file} are damaged`, 'run `pifaas openfaas install` again or `faas-cli login` for this gateway');
  return creds;
}

/**
 * Saves (adds or replaces) the basic-auth credentials of one gateway, keeping every other entry.
 * The file is written to a temporary name with mode 0600 and renamed, so it is never readable by
 * others and never half-written.
 */
export async function saveCredentials(gatewayUrl: string, creds: GatewayCredentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const gateway = normalizeGatewayUrl(gatewayUrl);
  const dir = openfaasConfigDir(env);
  const file = openfaasConfigFile(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const cfg = await readConfig(file);
  const entry = { gateway, auth: 'basic', token: encodeBasicAuthToken(creds.username, creds.password) };
  const auths = (cfg.auths ?? []).filter((a) => normalizeGatewayUrl(a.gateway) !== gateway);
  auths.push(entry);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, stringify({ ...cfg, auths }), { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return file;
}

export interface GatewaySelection {
  /** --gateway */
  flag?: string;
  /** provider.gateway of stack.yml */
  stackGateway?: string;
  /** The swarm an inventory describes (its manager's gateway), used when nothing above names one. */
  inventoryGateway?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * faas-cli's getGatewayURL: flag, then a non-default stack.yml gateway, then OPENFAAS_URL; pifaas
 * adds the inventory's manager before falling back to the default.
 */
export function resolveGatewayUrl(sel: GatewaySelection): string {
  const env = sel.env ?? process.env;
  const chosen =
    sel.flag && sel.flag !== DEFAULT_GATEWAY_URL
      ? sel.flag
      : sel.stackGateway && normalizeGatewayUrl(sel.stackGateway) !== DEFAULT_GATEWAY_URL
        ? sel.stackGateway
        : env[OPENFAAS_URL_ENV] || sel.inventoryGateway || DEFAULT_GATEWAY_URL;
  return normalizeGatewayUrl(chosen);
}

/** A client for the chosen gateway with the credentials saved for it (if any). */
export async function connectGateway(sel: GatewaySelection = {}): Promise<GatewayClient> {
  const url = resolveGatewayUrl(sel);
  const credentials = await lookupCredentials(url, sel.env);
  return new GatewayClient({ url, credentials });
}
