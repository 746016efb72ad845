// Why: every long command (build, push, deploy, openfaas install) draws its listr2 task list the same
// way; one place decides where it draws and when it stays silent.
import { ListrLogger, ProcessOutput } from 'listr2';

/**
 * listr2 options for pifaas: task lists draw on stderr (stdout stays clean for --json and pipes),
 * a spinner tree on a terminal, plain lines otherwise, nothing with --json.
 */
export function taskListOptions(json: boolean | undefined) {
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  return {
    concurrent: false,
    renderer: 'default' as const,
    fallbackRenderer: 'simple' as const,
    rendererOptions: { logger },
    fallbackRendererOptions: { logger },
    silentRendererCondition: Boolean(json),
  };
}
