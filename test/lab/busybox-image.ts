// Why: lab tests need a container image, and no registry can be reached here. This builds a tiny
// one from Debian's busybox-static (a rootfs with /bin/busybox and its applets) and imports it into
// a node's Docker through the Engine API (`docker import`), e.g. over the SSH-forwarded socket.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LocalOperator } from '../../src/operator/local-operator.js';

export const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'httpd', 'wget', 'nslookup', 'hostname', 'cat', 'echo', 'mkdir', 'sleep', 'ls', 'ip', 'nc'];

/** A tar of a root filesystem holding busybox-static and a few applet links. */
export async function busyboxRootfsTar(): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pifaas-busybox-'));
  try {
    const op = new LocalOperator();
    await op.run(
      `mkdir -p ${dir}/rootfs/bin ${dir}/rootfs/tmp ${dir}/rootfs/www ${dir}/rootfs/etc && cp ${BUSYBOX} ${dir}/rootfs/bin/busybox && ` +
        APPLETS.map((a) => `ln -s busybox ${dir}/rootfs/bin/${a}`).join(' && '),
    );
    return (await op.run(`tar -C ${dir}/rootfs -c .`)).stdoutBytes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `docker import` of a rootfs tar as REPO:TAG on one node. */
export async function importImage(docker: Docker, tar: Buffer, repo: string, tag: string): Promise<void> {
  const stream = (await docker.importImage(Readable.from([tar]) as never, { repo, tag })) as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = out?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(failed?.error));
      else resolve();
    });
  });
}
