// Why: a function may serve from several processes (serving-processes.ts), and each must know what
// the others are doing: max_inflight counts the requests of every process, and a run may take all
// cores only while no other process is serving a request. Each process writes its own count of
// requests in flight into its slot of one small shared file (4 bytes, pwrite) and reads every slot
// when it needs the others' (one pread): no lock, no message between processes, a few microseconds.
// A function in one process keeps the same board in memory.
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';

const SLOT_BYTES = 4;

export class InflightBoard {
  private readonly bytes: Buffer;
  private readonly one = Buffer.alloc(SLOT_BYTES);
  private ownCount = 0;

  private constructor(
    /** This process's slot. */
    readonly slot: number,
    /** Processes sharing the board. */
    readonly slots: number,
    private readonly fd: number | undefined,
  ) {
    this.bytes = Buffer.alloc(slots * SLOT_BYTES);
  }

  /** The board of a function that serves from one process. */
  static inMemory(): InflightBoard {
    return new InflightBoard(0, 1, undefined);
  }

  /** Writes an empty board for `slots` processes at `file` (the serving processes' parent does this). */
  static create(file: string, slots: number): void {
    writeFileSync(file, Buffer.alloc(slots * SLOT_BYTES), { mode: 0o600 });
  }

  /** Opens a board made by create() as process `slot` of `slots`. */
  static open(file: string, slot: number, slots: number): InflightBoard {
    if (!Number.isInteger(slots) || slots < 1 || !Number.isInteger(slot) || slot < 0 || slot >= slots) {
      throw new Error(`serving process ${slot} of ${slots} does not exist`);
    }
    return new InflightBoard(slot, slots, openSync(file, 'r+'));
  }

  /** Requests in flight in this process. */
  get own(): number {
    return this.ownCount;
  }

  enter(): void {
    this.write(++this.ownCount);
  }

  leave(): void {
    this.write(--this.ownCount);
  }

  /** Requests in flight in every process (this one's as counted here, the others' as last written). */
  get total(): number {
    return this.ownCount + this.others;
  }

  /** Requests in flight in the other processes. */
  get others(): number {
    if (this.fd === undefined) return 0;
    readSync(this.fd, this.bytes, 0, this.bytes.length, 0);
    let n = 0;
    for (let i = 0; i < this.slots; i++) if (i !== this.slot) n += Math.max(0, this.bytes.readInt32LE(i * SLOT_BYTES));
    return n;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }

  private write(count: number): void {
    if (this.fd === undefined) return;
    this.one.writeInt32LE(count);
    writeSync(this.fd, this.one, 0, SLOT_BYTES, this.slot * SLOT_BYTES);
  }
}
