// Why: Docker's memory limits need the memory cgroup, which Raspberry Pi kernels leave off unless
// cmdline.txt says `cgroup_enable=memory cgroup_memory=1`. cmdline.txt must stay one line (the
// firmware reads only the first), and a second burn must not add the flags twice.

export const CGROUP_FLAGS = ['cgroup_enable=memory', 'cgroup_memory=1'] as const;

/**
 * Sets `key=value` parameters on a kernel command line: an existing parameter with the same key is
 * replaced, a missing one is appended; everything else keeps its order. The result is one line.
 */
export function setKernelParams(cmdline: string, params: Record<string, string>): string {
  // The firmware reads only the first line; anything after it is dropped.
  const tokens = (cmdline.split('\n')[0] ?? '').split(/\s+/).filter(Boolean);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const t of tokens) {
    const key = t.includes('=') ? t.slice(0, t.indexOf('=')) : t;
    if (key in params) {
      if (seen.has(key)) continue; // drop duplicates of a key we manage
      seen.add(key);
      out.push(`${key}=${params[key]}`);
    } else out.push(t);
  }
  for (const [k, v] of Object.entries(params)) if (!seen.has(k)) out.push(`${k}=${v}`);
  return `${out.join(' ')}\n`;
}

/** The parameters pifaas manages for a host. */
export function pifaasKernelParams(wifiCountry: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const f of CGROUP_FLAGS) {
    const [k, v] = f.split('=') as [string, string];
    params[k] = v;
  }
  if (wifiCountry) params['cfg80211.ieee80211_regdom'] = wifiCountry;
  return params;
}
