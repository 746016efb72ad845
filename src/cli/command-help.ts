// Why: every command's --help ends with worked examples in the same format.
import type { Command } from 'commander';

/** Appends an "Examples:" block to a command's --help. */
export function withExamples(cmd: Command, ...examples: string[]): Command {
  cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  return cmd;
}
