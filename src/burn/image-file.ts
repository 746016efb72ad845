// Why: etcher-sdk's plain File, used for an image file, made `pifaas burn --output` run at half of
// `dd bs=4M`. As a source it reads every 1 MiB chunk into a freshly allocated Buffer: a 1 GiB image
// is 1 GiB of short-lived external memory, and V8's major GCs (marking, sweeping) took a third of
// the CPU in a profile. As a target it writes through an fs.WriteStream and never flushes, so its
// "write" time was page-cache time while dd's conv=fsync is disk time.
// ImageFile is the same etcher-sdk File, tuned for image files on a local filesystem, within
// etcher-sdk's own model (what its BlockDevice does for drives):
//  - it declares an alignment, so etcher-sdk's pipeline reads into its pool of reusable, lockable
//    aligned buffers (AlignedReadableState) instead of allocating, in 4 MiB chunks like dd bs=4M;
//  - as a target its write stream takes those buffers' read locks while writing them (as
//    etcher-sdk's BlockWriteStream does), writes what the pipe has queued with one pwritev, starts
//    the disk writeback while it is still copying (fdatasync in the background every 32 MiB, so
//    flushing overlaps copying), and finishes only when the data is on disk, like dd conv=fsync;
//  - as a target it truncates an existing file, so a smaller image leaves no stale tail behind.
// Because its buffers are reused, an ImageFile source may only feed a destination whose write
// stream takes the buffer locks (an ImageFile target, or etcher-sdk's BlockDevice); image-writer
// pairs them so.
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { sourceDestination } from 'etcher-sdk';
import { isAlignedLockableBuffer } from 'etcher-sdk/build/aligned-lockable-buffer.js';
import { BlockReadStream, ProgressBlockReadStream } from 'etcher-sdk/build/block-read-stream.js';
import { makeClassEmitProgressEvents } from 'etcher-sdk/build/source-destination/progress.js';

/** Read chunk size: dd's bs=4M. */
export const IMAGE_CHUNK_SIZE = 4 * 1024 ** 2;
/** Buffers in etcher-sdk's read pool for an image file: 8 x 4 MiB. */
export const IMAGE_NUM_BUFFERS = 8;
/** Page-aligned buffers (any local filesystem's block size divides it). */
const ALIGNMENT = 4096;
/** Start a background flush once this much has been written since the last one started. */
const WRITEBACK_EVERY = 32 * 1024 ** 2;

type ReadStreamOptions = NonNullable<Parameters<sourceDestination.File['createReadStream']>[0]>;

export class ImageFile extends sourceDestination.File {
  /** performance.now() when a write stream of this target had all its data on disk. */
  writtenAt?: number;

  override getAlignment(): number {
    return ALIGNMENT;
  }

  protected override getOpenFlags(): number {
    return super.getOpenFlags() | (this.oWrite ? fsConstants.O_TRUNC : 0);
  }

  /** As File.createReadStream, in IMAGE_CHUNK_SIZE chunks (pooled when the caller passes an alignment). */
  override async createReadStream({ emitProgress = false, start = 0, end, alignment, numBuffers }: ReadStreamOptions = {}): Promise<NodeJS.ReadableStream> {
    await this.open();
    const { size } = await this.getMetadata();
    // As File: a size of 0 is a special file (/dev/zero), read to `end` as asked.
    if (size) end = end === undefined ? size - 1 : Math.min(end, size - 1);
    const Stream = emitProgress ? ProgressBlockReadStream : BlockReadStream;
    return new Stream({ source: this, alignment, start, end, numBuffers, chunkSize: IMAGE_CHUNK_SIZE });
  }

  override async createWriteStream({ highWaterMark }: { highWaterMark?: number } = {}): Promise<NodeJS.WritableStream> {
    const stream = new ProgressImageFileWriteStream(this.fileHandle, highWaterMark, (at: number) => (this.writtenAt = at));
    stream.on('finish', () => stream.emit('done'));
    return stream;
  }
}

/** Sequential positional writer for an ImageFile target (etcher-sdk's BlockWriteStream contract). */
class ImageFileWriteStream extends Writable {
  /** Read by etcher-sdk's progress events (bytes and position). */
  bytesWritten = 0;
  private flushStartedAt = 0;
  private flushing?: Promise<void>;
  private flushError?: Error;

  constructor(
    private readonly file: FileHandle,
    highWaterMark: number | undefined,
    private readonly onDurable: (at: number) => void,
  ) {
    super({ objectMode: true, highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeChunks([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.writeChunks(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush().then(() => callback(), callback);
  }

  private async writeChunks(buffers: Buffer[]): Promise<void> {
    if (this.flushError) throw this.flushError;
    // rlock() takes the lock synchronously when the buffer is free: etcher-sdk's reader may reuse a
    // pooled buffer as soon as nobody holds it, so the locks are taken before anything awaits.
    const unlocks = await Promise.all(buffers.map((b) => (isAlignedLockableBuffer(b) ? b.rlock() : undefined)));
    let position = this.bytesWritten;
    try {
      let pending = buffers;
      while (pending.length) {
        const { bytesWritten } = await this.file.writev(pending, position);
        if (bytesWritten === 0) throw new Error(`short write at offset ${position}`);
        position += bytesWritten;
        pending = skipBytes(pending, bytesWritten);
      }
    } finally {
      for (const unlock of unlocks) unlock?.();
    }
    this.bytesWritten = position;
    this.startWriteback();
  }

  /** One background fdatasync at a time: the disk drains dirty pages while we go on copying. */
  private startWriteback(): void {
    if (this.flushing || this.bytesWritten - this.flushStartedAt < WRITEBACK_EVERY) return;
    this.flushStartedAt = this.bytesWritten;
    this.flushing = this.file
      .datasync()
      .catch((e: Error) => {
        this.flushError ??= e;
      })
      .finally(() => {
        this.flushing = undefined;
      });
  }

  private async flush(): Promise<void> {
    await this.flushing;
    if (this.flushError) throw this.flushError;
    await this.file.datasync();
    this.onDurable(performance.now());
  }
}

const ProgressImageFileWriteStream = makeClassEmitProgressEvents(ImageFileWriteStream, 'bytesWritten', 'bytesWritten');

/** The buffers left after the first `n` bytes of `buffers` were written. */
function skipBytes(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && n >= (buffers[i] as Buffer).length) n -= (buffers[i++] as Buffer).length;
  const rest = buffers.slice(i);
  if (n > 0 && rest.length) rest[0] = (rest[0] as Buffer).subarray(n);
  return rest;
}
