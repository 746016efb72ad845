// Why: Docker's memory limits need the memory cgroup, which Raspberry Pi kernels leave off unless
// cmdline.txt says `cgroup_enable=memory cgroup_memory=1`. The firmware reads only the first line of
// cmdline.txt, and a second burn or provision must not add the flags twice. Used by burn (on the card)
// and provision (on a running Pi).

export const CGROUP_FLAGS = ['cgroup_enable=memory', 'cgroup_memory=1'] as const;

/** Parameters the kernel takes several times, one value each (`cgroup_enable=cpuset cgroup_enable=memory`). */
const LIST_PARAMS: Record<string, string> = { cgroup_enable: 'cgroup_disable' };

/**
 * Sets `key=value` parameters on the first line of a kernel command line (the firmware reads only
 * that line; any others are kept as they are, never joined into it). A single-valued parameter
 * replaces its old value (duplicates dropped); a list parameter such as cgroup_enable gets its value
 * added beside the others, and the opposite `cgroup_disable=<same>` is removed. Everything else keeps
 * its order, so a second call changes nothing.
 */
export function setKernelParams(cmdline: string, params: Record<string, string>): string {
  const [first = '', ...rest] = cmdline.split('\n');
  const wanted = Object.entries(params).map(([k, v]) => `${k}=${v}`);
  const undo = new Set(Object.entries(params).flatMap(([k, v]) => (LIST_PARAMS[k] ? [`${LIST_PARAMS[k]}=${v}`] : [])));
  const out: string[] = [];
  const seen = new Set<string>();
  for (const t of first.split(/\s+/).filter(Boolean)) {
    const key = t.includes('=') ? t.slice(0, t.indexOf('=')) : t;
    if (undo.has(t)) continue;
    if (!(key in params)) {
      out.push(t); // not ours: kept as it is (console= may rightly appear twice)
      continue;
    }
    const id = LIST_PARAMS[key] ? t : key; // a list parameter is identified by its value too
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(LIST_PARAMS[key] ? t : `${key}=${params[key]}`);
  }
  for (const w of wanted) {
    const key = w.slice(0, w.indexOf('='));
    if (!seen.has(LIST_PARAMS[key] ? w : key)) out.push(w);
  }
  return [out.join(' '), ...rest].join('\n') + (rest.length ? '' : '\n');
}

/** The memory cgroup flags as parameters. */
function cgroupParams(): Record<string, string> {
  return Object.fromEntries(CGROUP_FLAGS.map((f) => f.split('=') as [string, string]));
}

/** Adds the memory cgroup flags to a cmdline.txt (unchanged if it has them). */
export function addCgroupFlags(cmdline: string): string {
  return setKernelParams(cmdline, cgroupParams());
}

/** The parameters pifaas manages for a host. */
export function pifaasKernelParams(wifiCountry: string | undefined): Record<string, string> {
  const params = cgroupParams();
  if (wifiCountry) params['cfg80211.ieee80211_regdom'] = wifiCountry;
  return params;
}
