// What serving processes share and how many there are: the in-flight board (a small file that every
// process reads and writes at its own slot) and the count the parent starts (serving-processes.ts).
// The processes themselves run in process.test.ts.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InflightBoard } from '../../src/function/inflight-board.js';
import { servingProcessCount } from '../../src/function/serving-processes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pifaas-board-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('in-flight board', () => {
  it('each process sees the requests in flight in the others, and counts its own', async () => {
    const file = path.join(dir, 'inflight');
    InflightBoard.create(file, 3);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const boards = [0, 1, 2].map((slot) => InflightBoard.open(file, slot, 3));
    const [a, b, c] = boards as [InflightBoard, InflightBoard, InflightBoard];
    expect([a.total, b.others, c.own]).toEqual([0, 0, 0]);
    a.enter();
    a.enter();
    b.enter();
    expect([a.own, a.others, a.total]).toEqual([2, 1, 3]);
    expect([b.own, b.others]).toEqual([1, 2]);
    expect([c.own, c.others, c.total]).toEqual([0, 3, 3]);
    a.leave();
    b.leave();
    expect(c.others).toBe(1);
    a.leave();
    expect([a.total, b.total, c.total]).toEqual([0, 0, 0]);
    for (const x of boards) x.close();
  });

  it('in one process: its own count only, in memory', () => {
    const board = InflightBoard.inMemory();
    board.enter();
    expect([board.own, board.others, board.total, board.slots]).toEqual([1, 0, 1, 1]);
    board.leave();
    expect(board.total).toBe(0);
  });

  it('a slot that does not exist is refused', () => {
    const file = path.join(dir, 'two');
    InflightBoard.create(file, 2);
    expect(() => InflightBoard.open(file, 2, 2)).toThrow('serving process 2 of 2 does not exist');
    expect(() => InflightBoard.open(file, Number.NaN, 2)).toThrow(/does not exist/);
  });
});

describe('how many serving processes', () => {
  it('PIFAAS_PROCESSES with onnxruntime-node; one by default and with onnxruntime-web', () => {
    expect(servingProcessCount({})).toBe(1);
    expect(servingProcessCount({ PIFAAS_INFERENCE_CONCURRENCY: '4' })).toBe(1);
    expect(servingProcessCount({ PIFAAS_PROCESSES: '3' })).toBe(3);
    expect(servingProcessCount({ PIFAAS_ENGINE: 'node', PIFAAS_PROCESSES: ' 2 ' })).toBe(2);
    expect(servingProcessCount({ PIFAAS_ENGINE: 'web', PIFAAS_PROCESSES: '2' })).toBe(1);
    expect(servingProcessCount({ PIFAAS_ENGINE: ' WEB ', PIFAAS_PROCESSES: '2' })).toBe(1);
  });

  it('a value that is not a whole number from 1 to 64 gives one process, which refuses the configuration', () => {
    for (const v of ['two', '0', '-1', '1.5', '65']) expect(servingProcessCount({ PIFAAS_PROCESSES: v })).toBe(1);
  });
});
