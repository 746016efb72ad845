// Every command a user can reach, groups included, answers --help with at least one example of a
// whole command line, as the project's standard asks.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';

/** The --help text of a command as a user sees it (commander's text plus what was added after it). */
function helpText(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

function allCommands(cmd: Command, path: string[] = []): Array<[string, Command]> {
  return cmd.commands.flatMap((c) => [[[...path, c.name()].join(' '), c] as [string, Command], ...allCommands(c, [...path, c.name()])]);
}

describe('pifaas --help', () => {
  it('every command and command group shows examples that start with pifaas', async () => {
    const program = await buildProgram([]);
    const commands = allCommands(program);
    expect(commands.length, 'every command was loaded').toBeGreaterThan(20);
    const without = commands.filter(([, c]) => !/\nExamples:\n {2}\$ (sudo )?pifaas /.test(helpText(c))).map(([name]) => name);
    expect(without).toEqual([]);
    expect(helpText(program)).toMatch(/\nExamples:\n {2}\$ pifaas serve faas-resnet/);
  });
});
