// Why: Ansible inventories name runs of hosts with ranges (`pi[01:04]`, `node-[a:c]`, `w[1:9:2]`);
// pifaas reads the same files, so it expands them exactly as Ansible does (zero padding kept from
// the start value, inclusive ends, optional stride, several ranges multiply).

const RANGE = /\[([^\]:]*):([^\]:]*)(?::([^\]]*))?\]/;

export class HostRangeError extends Error {}

/** Expands every `[start:end(:stride)]` in a host pattern; a name without brackets is returned alone. */
export function expandHostPattern(pattern: string): string[] {
  const m = RANGE.exec(pattern);
  if (!m) {
    if (pattern.includes('[') || pattern.includes(']')) {
      throw new HostRangeError(`"${pattern}" has a bracket but no valid range; write a range as [01:04] or [a:c]`);
    }
    return [pattern];
  }
  const [whole, rawStart = '', rawEnd = '', rawStride] = m;
  const head = pattern.slice(0, m.index);
  const tail = pattern.slice(m.index + whole.length);
  const stride = rawStride === undefined || rawStride === '' ? 1 : Number(rawStride);
  if (!Number.isInteger(stride) || stride < 1) {
    throw new HostRangeError(`"${pattern}": the stride "${rawStride}" must be a positive whole number`);
  }
  if (rawEnd === '') throw new HostRangeError(`"${pattern}": the range has no end value`);
  const start = rawStart === '' ? '0' : rawStart;

  const values: string[] = [];
  if (/^\d+$/.test(start) && /^\d+$/.test(rawEnd)) {
    const from = Number(start);
    const to = Number(rawEnd);
    if (from > to) throw new HostRangeError(`"${pattern}": the range starts after it ends`);
    const width = start.length > 1 && start.startsWith('0') ? start.length : 0;
    for (let i = from; i <= to; i += stride) values.push(String(i).padStart(width, '0'));
  } else if (/^[a-z]$/.test(start) && /^[a-z]$/.test(rawEnd)) {
    const from = start.charCodeAt(0);
    const to = rawEnd.charCodeAt(0);
    if (from > to) throw new HostRangeError(`"${pattern}": the range starts after it ends`);
    for (let c = from; c <= to; c += stride) values.push(String.fromCharCode(c));
  } else {
    throw new HostRangeError(
      `"${pattern}": a range is either numeric ([01:04]) or single lowercase letters ([a:c]), not "${start}:${rawEnd}"`,
    );
  }
  if (values.length > 10_000) throw new HostRangeError(`"${pattern}" expands to more than 10000 hosts`);
  const rest = expandHostPattern(tail);
  return values.flatMap((v) => rest.map((r) => `${head}${v}${r}`));
}
