// BuildKit progress as the Docker Engine API sends it: the base64 payloads below were captured from
// Debian's dockerd 20.10 building `RUN echo hello-from-step && echo to-stderr >&2`.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeBuildkitStatus } from '../../src/image/buildkit-trace.js';
import { DockerStreamError, followDockerStream } from '../../src/image/docker-stream.js';

const RUN_STARTED =
  'CtUBCkdzaGEyNTY6NTM5MTRhMWNiM2M0NDFmM2ZiNzE1NDUzNDkyYTZjYWI5MjlmMjljOTNjMWQ3Njg2NjA5NjRhZGNhYmIyNDMxMhJHc2hhMjU2OmYzN2EwYzA4NjFmODI3ZTIzYmNmMTUwMjYzODgwZDYyMjBmNzk3NDIzMDBhOGY3MjNlODEzNzk0OWZmNTllMDgaNFsyLzJdIFJVTiBlY2hvIGhlbGxvLWZyb20tc3RlcCAmJiBlY2hvIHRvLXN0ZGVyciA+JjIqCwiO84nYBhCE5Ih5';
const LOG_STDOUT = 'GmsKR3NoYTI1Njo1MzkxNGExY2IzYzQ0MWYzZmI3MTU0NTM0OTJhNmNhYjkyOWYyOWM5M2MxZDc2ODY2MDk2NGFkY2FiYjI0MzEyEgwIjvOJ2AYQmZ/XugIYASIQaGVsbG8tZnJvbS1zdGVwCg==';
const LOG_STDERR = 'GmUKR3NoYTI1Njo1MzkxNGExY2IzYzQ0MWYzZmI3MTU0NTM0OTJhNmNhYjkyOWYyOWM5M2MxZDc2ODY2MDk2NGFkY2FiYjI0MzEyEgwIjvOJ2AYQ+6POugIYAiIKdG8tc3RkZXJyCg==';
const FROM_CACHED =
  'CuEBCkdzaGEyNTY6ZjM3YTBjMDg2MWY4MjdlMjNiY2YxNTAyNjM4ODBkNjIyMGY3OTc0MjMwMGE4ZjcyM2U4MTM3OTQ5ZmY1OWUwOBp6WzEvMl0gRlJPTSBkb2NrZXIuaW8vbGlicmFyeS9ub2RlOjIwLWJvb2t3b3JtLXNsaW1Ac2hhMjU2OjNiMmFhZDBiODhmYzVkMTM4Mzk4Yjc5ZTJmNWViOWQyNDg0YWNmYmFlNzFmNDNkZGU5YzcyNjJlNzM3YTVlOTcgASoLCI7zidgGEJvG5nYyCwiO84nYBhDBpOh2';

const trace = (aux: string) => JSON.stringify({ id: 'moby.buildkit.trace', aux });

function streamOf(lines: string[], chunkSize = 7): PassThrough {
  const s = new PassThrough();
  const text = `${lines.join('\n')}\n`;
  // Split across arbitrary chunk boundaries, as a socket would.
  setImmediate(() => {
    for (let i = 0; i < text.length; i += chunkSize) s.write(text.slice(i, i + chunkSize));
    s.end();
  });
  return s;
}

describe('BuildKit trace decoding', () => {
  it('reads a started step, its stdout and stderr lines, and a cached step', () => {
    const started = decodeBuildkitStatus(RUN_STARTED);
    expect(started.vertexes).toEqual([
      expect.objectContaining({ name: '[2/2] RUN echo hello-from-step && echo to-stderr >&2', started: true, completed: false, cached: false }),
    ]);
    expect(decodeBuildkitStatus(LOG_STDOUT).logs).toEqual([expect.objectContaining({ stream: 1, text: 'hello-from-step\n' })]);
    expect(decodeBuildkitStatus(LOG_STDERR).logs).toEqual([expect.objectContaining({ stream: 2, text: 'to-stderr\n' })]);
    const cached = decodeBuildkitStatus(FROM_CACHED).vertexes[0];
    expect(cached).toMatchObject({ cached: true, completed: true });
    expect(cached?.name).toMatch(/^\[1\/2\] FROM docker.io\/library\/node:20-bookworm-slim@sha256:/);
  });

  it('refuses truncated input instead of reading past it', () => {
    expect(() => decodeBuildkitStatus(Buffer.from(RUN_STARTED, 'base64').subarray(0, 40).toString('base64'))).toThrow(/truncated/);
  });
});

describe('followDockerStream', () => {
  it('turns a build stream into step names and command output, once each, and keeps aux results', async () => {
    const lines: string[] = [];
    const result = await followDockerStream(
      streamOf([trace(RUN_STARTED), trace(RUN_STARTED), trace(LOG_STDOUT), trace(LOG_STDERR), JSON.stringify({ id: 'moby.image.id', aux: { ID: 'sha256:abc' } }), JSON.stringify({ stream: 'Successfully tagged x:1\n' })]),
      (l) => lines.push(l),
    );
    expect(lines).toEqual(['[2/2] RUN echo hello-from-step && echo to-stderr >&2', 'hello-from-step', 'to-stderr', 'Successfully tagged x:1']);
    expect(result.aux).toEqual([{ ID: 'sha256:abc' }]);
  });

  it('rejects with the daemon error and the last output lines', async () => {
    const failing = followDockerStream(
      streamOf([trace(LOG_STDOUT), JSON.stringify({ errorDetail: { message: 'executor failed running [/bin/sh -c false]: exit code: 1' }, error: 'executor failed' })]),
    );
    await expect(failing).rejects.toBeInstanceOf(DockerStreamError);
    await expect(failing).rejects.toMatchObject({ message: 'executor failed running [/bin/sh -c false]: exit code: 1', tail: ['hello-from-step'] });
  });

  it('reports push status lines and the pushed digest', async () => {
    const lines: string[] = [];
    const r = await followDockerStream(
      streamOf([JSON.stringify({ status: 'Pushed', id: '634358fbde75' }), JSON.stringify({ progressDetail: {}, aux: { Tag: 'latest-amd64', Digest: 'sha256:563a', Size: 1368 } })]),
      (l) => lines.push(l),
    );
    expect(lines).toEqual(['634358fbde75: Pushed']);
    expect(r.aux).toEqual([{ Tag: 'latest-amd64', Digest: 'sha256:563a', Size: 1368 }]);
  });
});
