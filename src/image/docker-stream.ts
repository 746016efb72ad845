// Why: Docker Engine answers builds, pushes and loads with a stream of JSON lines, BuildKit's progress
// inside them as encoded protobuf, and failures reported inside the stream rather than with an HTTP
// status. This turns such a stream into progress lines ("[deps 4/4] RUN ...", command output, push
// status), the "aux" results, and one error carrying the last lines when the operation failed.
import { decodeBuildkitStatus } from './buildkit-trace.js';

export interface DockerStreamResult {
  /** The aux objects of the stream ({ID} of a build, {Tag, Digest, Size} of a push...). */
  aux: Record<string, unknown>[];
  /** The last lines of output, oldest first (kept for error messages). */
  tail: string[];
}

export class DockerStreamError extends Error {
  override readonly name = 'DockerStreamError';
  constructor(
    message: string,
    readonly tail: string[],
  ) {
    super(message);
  }
}

interface StreamEvent {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  aux?: unknown;
  error?: string;
  errorDetail?: { message?: string };
}

const TAIL_LINES = 40;

/**
 * Follows a build/push/load stream to its end. `onLine` gets each human-readable line; rejects with
 * the daemon's error and the output tail.
 */
export function followDockerStream(stream: NodeJS.ReadableStream, onLine?: (line: string) => void): Promise<DockerStreamResult> {
  const tail: string[] = [];
  const aux: Record<string, unknown>[] = [];
  const announced = new Set<string>();
  let failure: string | undefined;
  let buffer = '';
  const say = (line: string) => {
    const t = line.replace(/\s+$/, '');
    if (!t) return;
    tail.push(t);
    if (tail.length > TAIL_LINES) tail.shift();
    onLine?.(t);
  };
  const onTrace = (payload: string) => {
    let status;
    try {
      status = decodeBuildkitStatus(payload);
    } catch {
      return; // a progress message we cannot read is not worth failing the build for
    }
    for (const v of status.vertexes) {
      if (v.started && !announced.has(v.digest) && v.name) {
        announced.add(v.digest);
        say(`${v.cached ? 'CACHED ' : ''}${v.name}`);
      }
      if (v.error) say(`ERROR ${v.name}: ${v.error}`);
    }
    for (const l of status.logs) for (const line of l.text.split(/\r?\n|\r/)) say(line);
  };
  const onEvent = (e: StreamEvent) => {
    if (e.error || e.errorDetail) {
      failure = e.errorDetail?.message ?? e.error ?? 'unknown error';
      return;
    }
    if (e.id === 'moby.buildkit.trace' && typeof e.aux === 'string') return onTrace(e.aux);
    if (e.aux && typeof e.aux === 'object') aux.push(e.aux as Record<string, unknown>);
    if (typeof e.stream === 'string') for (const l of e.stream.split('\n')) say(l);
    else if (e.status) say(`${e.id ? `${e.id}: ` : ''}${e.status}${e.progress ? ` ${e.progress}` : ''}`);
  };
  const onChunk = (chunk: Buffer | string) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        onEvent(JSON.parse(line) as StreamEvent);
      } catch {
        say(line);
      }
    }
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (buffer.trim()) onChunk('\n');
      if (err) reject(new DockerStreamError(err.message, tail));
      else if (failure) reject(new DockerStreamError(failure, tail));
      else resolve({ aux, tail });
    };
    stream.on('data', onChunk);
    stream.on('error', (e: Error) => finish(e));
    stream.on('end', () => finish());
    stream.on('close', () => finish());
  });
}
