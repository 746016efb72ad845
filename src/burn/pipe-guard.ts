// Why: when etcher-sdk's pipeSourceToDestinations fails half-way it leaves streams behind, and they
// kept `pifaas burn` running for ever after it had printed the error (a download that broke off):
//  - each of its progress streams (the card's or image file's write stream, the checksum stream fed
//    from the image, a source read stream) runs a 250 ms timer that stops only when that stream
//    ends or errors, and after a failed read neither happens to the write and checksum streams (nor
//    to MultiDestination's own timer, which stops when the write stream does);
//  - a compressed image's decompressor is piped from the file or download under it, and stream.pipe
//    passes on no errors: when the download broke off under a .xz, the pipe waited for data for ever.
// PipeGuard wraps the stream factories of the source and the destination handed to etcher-sdk: an
// error of any stream under the image's stream (its `sourceStream` chain) fails the image's stream,
// and release() destroys, with an error, every stream created or piped into that is not done yet,
// which stops its timer and closes the socket of a download.
import type { sourceDestination } from 'etcher-sdk';

type Stream = NodeJS.ReadableStream & {
  destroy(error?: Error): void;
  destroyed: boolean;
  errored?: Error | null;
  readableEnded?: boolean;
  writableFinished?: boolean;
  /** Set by etcher-sdk on a stream that transforms another (a decompressor over the file). */
  sourceStream?: Stream;
};

const FACTORIES = ['createReadStream', 'createSparseReadStream', 'createWriteStream', 'createSparseWriteStream'] as const;

export class PipeGuard {
  private readonly streams = new Set<Stream>();

  /** Watches every stream `sd` creates (including those of a verifier reading it back). */
  watch(sd: sourceDestination.SourceDestination): void {
    const target = sd as unknown as Record<(typeof FACTORIES)[number], (...args: unknown[]) => Promise<Stream>>;
    for (const name of FACTORIES) {
      const create = target[name].bind(sd);
      target[name] = async (...args: unknown[]) => this.adopt(await create(...args));
    }
  }

  private adopt(stream: Stream): Stream {
    this.track(stream);
    // A failing file or download under a decompressor fails the decompressor's stream too.
    for (let under = stream.sourceStream; under; under = under.sourceStream) {
      this.track(under);
      under.once('error', (e: Error) => {
        if (!stream.destroyed && !stream.readableEnded) stream.destroy(e);
      });
    }
    return stream;
  }

  private track(stream: Stream): void {
    if (this.streams.has(stream)) return;
    this.streams.add(stream);
    const pipe = stream.pipe.bind(stream);
    stream.pipe = <T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T => {
      this.track(destination as unknown as Stream);
      return pipe(destination, options);
    };
  }

  /** After a failed write: ends every stream left (a finished, ended or errored one is left alone). */
  release(): void {
    for (const stream of this.streams) {
      if (stream.destroyed || stream.errored || stream.writableFinished || stream.readableEnded) continue;
      // Errors from here on have nobody to report to: the write has already failed.
      stream.on('error', () => undefined);
      stream.destroy(new Error('the write was abandoned'));
    }
    this.streams.clear();
  }
}
