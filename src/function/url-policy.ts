// Why: {"url": "..."} makes the function fetch from the network on a caller's behalf, a classic
// server-side request forgery hole (cloud metadata at 169.254.169.254, the Docker socket proxy, the
// OpenFaaS gateway's admin API on the cluster network). So URL input is OFF unless the operator lists
// what may be fetched in PIFAAS_URL_ALLOW, and the check is made on the address each connection
// actually goes to, after DNS, so a public name that resolves to a private address is refused too.
import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import { HttpGetError } from './bounded-get.js';

export interface UrlPolicy {
  /** False when PIFAAS_URL_ALLOW is empty: URL input answers 403. */
  readonly enabled: boolean;
  readonly description: string;
  /** Throws HttpGetError('refused-url') when the URL's host may not be fetched at all. */
  checkUrl(url: URL): void;
  /** DNS lookup that only returns addresses this policy allows for that host name. */
  lookup: LookupFunction;
}

/** Addresses that are never "public": loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved. */
function nonPublicRanges(): net.BlockList {
  const b = new net.BlockList();
  for (const [addr, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const) {
    b.addSubnet(addr, prefix, 'ipv4');
  }
  for (const [addr, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
    ['64:ff9b::', 96],
  ] as const) {
    b.addSubnet(addr, prefix, 'ipv6');
  }
  return b;
}

const NON_PUBLIC = nonPublicRanges();

function family(address: string): 'ipv4' | 'ipv6' {
  return net.isIPv4(address) ? 'ipv4' : 'ipv6';
}

/** IPv4-mapped IPv6 (::ffff:10.0.0.1) is checked as the IPv4 address it carries. */
function unmap(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] ?? address;
}

export function isPublicAddress(address: string): boolean {
  const a = unmap(address);
  return !NON_PUBLIC.check(a, family(a));
}

/**
 * Parses PIFAAS_URL_ALLOW, a comma-separated list of:
 *  - host names: `images.example.com` (exact), `*.example.com` (any subdomain): fetched whatever they resolve to;
 *  - IP addresses or CIDR ranges: `127.0.0.1`, `10.1.0.0/16`: hosts whose addresses fall inside;
 *  - `*`: any host whose addresses are all public (never loopback, private, link-local, ...).
 * Empty or unset: URL input is disabled.
 */
export function parseUrlPolicy(value: string | undefined): UrlPolicy {
  const entries = (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const exactHosts = new Set<string>();
  const suffixes: string[] = [];
  const ranges = new net.BlockList();
  let anyPublic = false;
  let hasRanges = false;
  for (const e of entries) {
    if (e === '*') anyPublic = true;
    else if (e.includes('/')) {
      const [addr = '', bits = ''] = e.split('/');
      const prefix = Number(bits);
      if (!net.isIP(addr) || !Number.isInteger(prefix)) throw new Error(`PIFAAS_URL_ALLOW: "${e}" is not a valid CIDR range`);
      ranges.addSubnet(addr, prefix, family(addr));
      hasRanges = true;
    } else if (net.isIP(e.replace(/^\[|\]$/g, ''))) {
      const addr = e.replace(/^\[|\]$/g, '');
      ranges.addAddress(addr, family(addr));
      hasRanges = true;
    } else if (e.startsWith('*.')) suffixes.push(e.slice(1));
    else if (/^[a-z0-9.-]+$/.test(e)) exactHosts.add(e);
    else throw new Error(`PIFAAS_URL_ALLOW: "${e}" is not a host name, *.domain, IP address, CIDR range or *`);
  }
  const enabled = entries.length > 0;
  const hostListed = (host: string) => exactHosts.has(host) || suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  const addressAllowed = (host: string, address: string) => {
    if (hostListed(host)) return true;
    const a = unmap(address);
    if (hasRanges && ranges.check(a, family(a))) return true;
    return anyPublic && isPublicAddress(a);
  };
  const lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: typeof options === 'object' ? options.family : undefined }, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const allowed = addresses.filter((a) => addressAllowed(hostname.toLowerCase(), a.address));
      if (allowed.length === 0) {
        const shown = addresses.map((a) => a.address).join(', ');
        callback(new HttpGetError('refused-url', `${hostname} resolves to ${shown}, which PIFAAS_URL_ALLOW does not allow (private and loopback addresses need an explicit entry)`), '', 0);
        return;
      }
      if (typeof options === 'object' && options.all) (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, allowed);
      else callback(null, allowed[0]?.address ?? '', allowed[0]?.family ?? 4);
    });
  };
  return {
    enabled,
    description: enabled ? entries.join(',') : '(disabled)',
    checkUrl(url) {
      if (!enabled) throw new HttpGetError('refused-url', 'URL input is disabled on this function; send the image itself, or have the operator set PIFAAS_URL_ALLOW');
      const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
      if (hostListed(host)) return;
      if (net.isIP(host)) {
        if (addressAllowed(host, host)) return;
        throw new HttpGetError('refused-url', `fetching from ${host} is not allowed by PIFAAS_URL_ALLOW`);
      }
      if (!anyPublic && !hasRanges) throw new HttpGetError('refused-url', `fetching from ${host} is not allowed by PIFAAS_URL_ALLOW (${entries.join(',')})`);
      // A name not listed: its resolved addresses decide, at connect time (lookup).
    },
    lookup,
  };
}
