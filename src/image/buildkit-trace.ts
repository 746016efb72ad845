// Why: with BuildKit, the Docker Engine API reports build progress as base64 protobuf messages
// (moby.buildkit.v1.StatusResponse in "moby.buildkit.trace" aux lines). pifaas shows the step being
// run and the failing step's output from them; only four small message types are read, so this is a
// minimal protobuf wire-format reader rather than a protobuf dependency.

export interface TraceVertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error?: string;
}

export interface TraceLog {
  vertex: string;
  /** 1 stdout, 2 stderr. */
  stream: number;
  text: string;
}

export interface BuildkitStatus {
  vertexes: TraceVertex[];
  logs: TraceLog[];
}

/** Fields of one protobuf message: field number -> values (varints as numbers, length-delimited as bytes). */
function readFields(buf: Uint8Array): Map<number, Array<number | Uint8Array>> {
  const fields = new Map<number, Array<number | Uint8Array>>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new Error('truncated field');
      value = buf.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      pos += 8;
      continue;
    } else if (wire === 5) {
      pos += 4;
      continue;
    } else throw new Error(`unsupported wire type ${wire}`);
    const list = fields.get(field) ?? [];
    list.push(value);
    fields.set(field, list);
  }
  return fields;
}

const text = (v: number | Uint8Array | undefined) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : '');
const first = (f: Map<number, Array<number | Uint8Array>>, n: number) => f.get(n)?.[0];

/** Decodes the aux payload (base64) of a "moby.buildkit.trace" message. */
export function decodeBuildkitStatus(base64: string): BuildkitStatus {
  const top = readFields(Buffer.from(base64, 'base64'));
  const vertexes = (top.get(1) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array).map((raw) => {
    const f = readFields(raw);
    const error = text(first(f, 7));
    return {
      digest: text(first(f, 1)),
      name: text(first(f, 3)),
      cached: first(f, 4) === 1,
      started: f.has(5),
      completed: f.has(6),
      ...(error ? { error } : {}),
    };
  });
  const logs = (top.get(3) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array).map((raw) => {
    const f = readFields(raw);
    const stream = first(f, 3);
    return { vertex: text(first(f, 1)), stream: typeof stream === 'number' ? stream : 1, text: text(first(f, 4)) };
  });
  return { vertexes, logs };
}
