// Why: secrets (sudo password, key passphrase) come from the inventory, the environment or a prompt,
// never from argv. This asks on the terminal without echoing, one question at a time, and says no
// (undefined) when there is no terminal to ask on (CI, pipes).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

let queue: Promise<unknown> = Promise.resolve();

export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks for a secret on the terminal (input hidden); undefined without a terminal. */
export function promptSecret(question: string): Promise<string | undefined> {
  if (!canPrompt()) return Promise.resolve(undefined);
  const ask = () =>
    new Promise<string>((resolve) => {
      let muted = false;
      const output = new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (!muted) process.stderr.write(chunk);
          cb();
        },
      });
      const rl = createInterface({ input: process.stdin, output, terminal: true });
      rl.question(question, (answer) => {
        rl.close();
        process.stderr.write('\n');
        resolve(answer);
      });
      muted = true;
    });
  const next = queue.then(ask, ask);
  queue = next.catch(() => undefined);
  return next;
}

/** Asks a yes/no question on the terminal; false without a terminal. */
export function promptYesNo(question: string): Promise<boolean> {
  if (!canPrompt()) return Promise.resolve(false);
  const ask = () =>
    new Promise<boolean>((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      rl.question(`${question} [y/N] `, (answer) => {
        rl.close();
        resolve(/^y(es)?$/i.test(answer.trim()));
      });
    });
  const next = queue.then(ask, ask);
  queue = next.catch(() => undefined);
  return next;
}
