// Why: writing and verifying the image is etcher-sdk's job (the engine of balenaEtcher): it reads
// .img, .img.xz, .img.gz, .zip and URLs, writes with aligned buffers, and verifies by reading the
// target back against the checksum of what was written. This module wraps one write + verify and
// reports progress per phase, so the CLI can show bars and the bench can time each phase.
// An image-file target is an ImageFile (image-file.ts): etcher-sdk's File with pooled 4 MiB reads
// and a write phase that ends when the data is on disk.
import { Readable } from 'node:stream';
import { sourceDestination, multiWrite } from 'etcher-sdk';
import type { Drive } from 'drivelist';
import { UserError } from '../user-error.js';
import { IMAGE_NUM_BUFFERS, ImageFile } from './image-file.js';
import { PipeGuard } from './pipe-guard.js';

export type WritePhase = 'decompressing' | 'flashing' | 'verifying';

export interface WriteProgress {
  phase: WritePhase;
  /** Bytes of the (decompressed) image done in this phase. */
  done: number;
  total?: number;
}

export interface WriteResult {
  /** Decompressed image size. */
  size: number;
  bytesWritten: number;
  /** Writing, up to the data being on disk for an image-file target. */
  writeSeconds: number;
  verifySeconds: number;
  verified: boolean;
}

export type Target = { kind: 'file'; path: string } | { kind: 'drive'; drive: Drive };

function isUrl(image: string): boolean {
  return /^https?:\/\//.test(image);
}

/** An error of the connection an image was being downloaded over (it ended early, was reset or timed out). */
function isBrokenTransfer(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return ['ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code) || /^aborted$|socket hang up|premature close/i.test((e as Error).message);
}

/** An image's content (inside its archive, if any), and how to close it and the file or download under it. */
interface OpenedImage {
  source: sourceDestination.SourceDestination;
  close(): Promise<void>;
}

/**
 * Opens an image (path or http(s) URL), looking inside .xz/.gz/.bz2/.zip. `pooled`: a local file is
 * read into etcher-sdk's reusable buffers; only for a destination that takes their locks.
 */
async function openImage(image: string, { pooled = false } = {}): Promise<OpenedImage> {
  const outer = isUrl(image)
    ? new sourceDestination.Http({ url: image })
    : new (pooled ? ImageFile : sourceDestination.File)({ path: image });
  try {
    await outer.open();
    const inner = await outer.getInnerSource();
    // etcher-sdk goes by the content: a .xz file that does not start as one would be written as it
    // is. (Not for a URL: a server may send a .gz with Content-Encoding: gzip, which is undone.)
    const archive = /\.(xz|gz|bz2|zip)$/i.exec(image)?.[1]?.toLowerCase();
    if (inner === outer && archive && !isUrl(image)) {
      throw new UserError(`${image} is not what its name says: it does not start as a .${archive} file does`, 'is it the image you meant? download it again and check its SHA-256');
    }
    const meta = await inner.getMetadata();
    if (meta.size !== undefined && meta.size % 512 !== 0) {
      // A compressed image states its content's size in its own header or trailer (gzip's last 4 bytes).
      throw meta.isCompressed
        ? new UserError(`${image} says its content is ${meta.size} bytes, which is no disk image's size (not a multiple of 512): the archive looks truncated or damaged`, 'download it again and check its SHA-256')
        : new UserError(`${image} is not a disk image: its size (${meta.size} bytes) is not a multiple of 512`, 'pass a Raspberry Pi OS .img, .img.xz, .img.gz or .zip');
    }
    // Closing the content closes what is under it, except for a .zip: etcher-sdk's ZipSource never
    // counts itself open, so its close() does nothing. Both are closed (a second close is a no-op).
    return {
      source: inner,
      close: async () => {
        await inner.close().catch(() => undefined);
        await outer.close();
      },
    };
  } catch (e) {
    // Nothing stays open on a refused image (the inner source, if any, was never opened).
    await outer.close().catch(() => undefined);
    if (e instanceof UserError) throw e;
    const msg = (e as Error).message;
    // liblzma reads a file only after etcher-sdk found it starts as an .xz (it goes by the content).
    // xz keeps its index, which gives the image's size, at its end: liblzma says "File format not
    // recognized" when the end is no xz ending (cut off, or followed by other bytes) and "Data is
    // corrupt" when it is damaged.
    if (/^LZMA_/.test((e as Error).name)) {
      throw new UserError(`${image} is truncated or damaged: it starts as an .xz file, but its end (the index of what it holds) is missing or damaged`, 'download it again and check its SHA-256');
    }
    if (isUrl(image)) {
      const response = (e as { response?: { status?: number; data?: unknown } }).response;
      // etcher-sdk retries a refused HEAD as a streamed GET and leaves that answer's body unread: its
      // connection stays busy (and the process running) until the server drops it, a minute for some.
      if (response?.data instanceof Readable) response.data.destroy();
      const status = response?.status;
      throw new UserError(
        `cannot download image ${image}: ${status ? `the server answered HTTP ${status}` : msg}`,
        status ? 'check the URL given to --image' : 'check the URL and this machine\'s network, or download the image first and pass the file',
      );
    }
    throw new UserError(
      /ENOENT/.test(msg) ? `image ${image} does not exist` : `cannot read image ${image}: ${msg}`,
      /ENOENT/.test(msg) ? 'check the path given to --image' : 'is the download complete? compare its SHA-256 with the one published next to it, or download it again',
    );
  }
}

export interface WriteOptions {
  verify?: boolean;
  onProgress?: (p: WriteProgress) => void;
  /** For tests: replaces the destination etcher-sdk writes to (e.g. a card that flips a byte). */
  destination?: sourceDestination.SourceDestination;
}

export async function writeImage(image: string, target: Target, opts: WriteOptions = {}): Promise<WriteResult> {
  const verify = opts.verify ?? true;
  const destination =
    opts.destination ??
    (target.kind === 'file'
      ? new ImageFile({ path: target.path, write: true })
      : new sourceDestination.BlockDevice({ drive: target.drive, write: true, direct: true, unmountOnSuccess: false }));
  const imageFileTarget = destination instanceof ImageFile ? destination : undefined;
  const opened = await openImage(image, { pooled: imageFileTarget !== undefined });
  const source = opened.source;
  const failures: string[] = [];
  // Streams etcher-sdk leaves behind when the write fails would keep the process running.
  const guard = new PipeGuard();
  guard.watch(source);
  guard.watch(destination);
  let piped = false;
  const started = performance.now();
  let verifyStarted: number | undefined;
  let phase: WritePhase | undefined;
  let result: multiWrite.PipeSourceToDestinationsResult;
  try {
    phase = 'flashing';
    opts.onProgress?.({ phase, done: 0, total: (await source.getMetadata()).size });
    result = await multiWrite.pipeSourceToDestinations({
      source,
      destinations: [destination],
      verify,
      numBuffers: imageFileTarget ? IMAGE_NUM_BUFFERS : 32,
      onFail: (_d, err) => failures.push(err.message),
      onProgress: (p) => {
        if (p.type === 'verifying' && verifyStarted === undefined) verifyStarted = performance.now();
        if (p.type === 'finished') return;
        if (p.type !== phase) {
          phase = p.type;
          opts.onProgress?.({ phase: p.type, done: 0, total: p.size });
        }
        opts.onProgress?.({ phase: p.type, done: p.type === 'verifying' ? p.position : (p.bytesWritten ?? p.position), total: p.size });
      },
    });
    piped = true;
  } catch (e) {
    const msg = (e as Error).message;
    if (isUrl(image) && isBrokenTransfer(e)) {
      throw new UserError(`writing ${image} failed: the download broke off (${msg})`, 'run the same command again (it starts over), or download the image first and pass the file');
    }
    throw new UserError(
      `writing ${image} failed: ${msg}`,
      // zlib's own errors (Z_DATA_ERROR: "invalid stored block lengths", "incorrect data check") say nothing of gzip.
      /xz|lzma|gzip|zlib|inflate|unexpected end|zip|corrupt/i.test(msg) || /^Z_/.test(String((e as { code?: unknown }).code))
        ? 'the image file looks damaged or truncated: download it again and check its SHA-256'
        : 'check the card and the reader; try another card if it happens again',
    );
  } finally {
    if (!piped || failures.length) guard.release();
    // etcher-sdk closes both only when the pipe completes; on a failure the card must not stay open either.
    await Promise.all([opened.close(), destination.close()].map((closing) => closing.catch(() => undefined)));
  }
  const ended = performance.now();
  if (failures.length) {
    const what = target.kind === 'file' ? target.path : target.drive.device;
    throw new UserError(
      `${verify ? 'verification' : 'writing'} of ${what} failed: ${failures.join('; ')}`,
      target.kind === 'drive' ? 'the card did not keep what was written: it may be fake or worn out; use another card' : 'check the disk holding the output file',
    );
  }
  const size = result.sourceMetadata.size ?? result.bytesWritten;
  // An ImageFile target knows when its data was on disk; otherwise the first 'verifying' progress
  // event (etcher-sdk emits it up to 250 ms into the verify pass) marks the end of writing.
  const writeEnded = imageFileTarget?.writtenAt ?? verifyStarted ?? ended;
  return {
    size,
    bytesWritten: result.bytesWritten,
    writeSeconds: (writeEnded - started) / 1000,
    verifySeconds: verify ? (ended - writeEnded) / 1000 : 0,
    verified: verify,
  };
}
