// Why: `pifaas models` shows which models exist, which are on this machine (bundled or in the XDG
// cache), downloads remote ones with a progress bar and checksum check (`pull`, with a mirror for
// air-gapped sites), and re-checks the checksums of what is there (`verify`).
import { Command, Option } from 'commander';
import { createByteProgress } from '../cli/byte-progress.js';
import { withExamples } from '../cli/command-help.js';
import { formatBytes, formatTable, printResult } from '../cli/output.js';
import { CatalogError, findModel, loadCatalog, type Catalog, type ModelEntry } from '../function/model-catalog.js';
import { locateModel, modelCacheDir, ModelDownloadError, pullModel, sha256File, type PullResult } from '../function/model-store.js';
import { UserError } from '../user-error.js';

async function catalogOrUserError(): Promise<Catalog> {
  try {
    return await loadCatalog();
  } catch (e) {
    if (e instanceof CatalogError) throw new UserError(e.message, 'reinstall pifaas, or point PIFAAS_MODELS_DIR at a folder with a valid catalog.json');
    throw e;
  }
}

function modelOrUserError(catalog: Catalog, id: string): ModelEntry {
  try {
    return findModel(catalog, id);
  } catch (e) {
    throw new UserError((e as Error).message, 'run `pifaas models list` to see the model ids');
  }
}

function listCommand(): Command {
  const cmd = new Command('list')
    .description('list the models in the catalog and whether each is bundled, cached or still remote')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }) => {
      const catalog = await catalogOrUserError();
      const models = [];
      for (const m of catalog.models) {
        const loc = await locateModel(catalog, m);
        const functions = Object.entries(catalog.functions)
          .filter(([, f]) => f.models.includes(m.id))
          .map(([name, f]) => `${name}${f.defaultModel === m.id ? ' (default)' : ''}${f.fallbackModel === m.id ? ' (fallback)' : ''}`);
        models.push({
          id: m.id,
          task: m.task,
          bytes: m.bytes,
          sha256: m.sha256,
          license: m.license,
          status: loc ? (loc.where === 'cache' ? 'cached' : 'bundled') : 'remote',
          path: loc?.path ?? null,
          functions,
          source: m.source.url,
        });
      }
      printResult(opts, { catalog: catalog.dir, cache: modelCacheDir(), models }, (d) =>
        [
          formatTable(
            ['ID', 'TASK', 'SIZE', 'STATUS', 'LICENSE', 'FUNCTIONS'],
            d.models.map((m) => [m.id, m.task, formatBytes(m.bytes), m.status, m.license, m.functions.join(', ')]),
          ),
          '',
          `bundled: ${d.catalog}`,
          `cache:   ${d.cache}`,
          ...(d.models.some((m) => m.status === 'remote') ? ['remote models: pifaas models pull ID'] : []),
        ].join('\n'),
      );
    });
  return withExamples(cmd, 'pifaas models list', 'pifaas models list --json | jq -r ".models[] | select(.status == \\"remote\\") | .id"');
}

function pullCommand(): Command {
  const cmd = new Command('pull')
    .description('download models into the cache ($XDG_CACHE_HOME/pifaas/models), checking size and sha256')
    .argument('<ids...>', 'model ids from `pifaas models list`')
    .addOption(new Option('--mirror <url>', 'base URL serving the catalog file names, for air-gapped sites').env('PIFAAS_MODEL_MIRROR'))
    .option('--json', 'print the results as JSON (no progress bar)')
    .action(async (ids: string[], opts: { mirror?: string; json?: boolean }) => {
      const catalog = await catalogOrUserError();
      const models = ids.map((id) => modelOrUserError(catalog, id));
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const results: PullResult[] = [];
      try {
        for (const m of models) {
          const bar = createByteProgress({ label: `${m.id}`, total: m.bytes, silent: Boolean(opts.json) });
          let started = false;
          try {
            const r = await pullModel(catalog, m, {
              ...(opts.mirror ? { mirror: opts.mirror } : {}),
              signal: abort.signal,
              onProgress: (done, total) => {
                started = true;
                bar.update(done, total);
              },
            });
            results.push(r);
          } catch (e) {
            if (e instanceof ModelDownloadError) {
              const hint =
                e.kind === 'checksum' || e.kind === 'size'
                  ? 'the server does not have the catalog\'s file; check the mirror (--mirror / PIFAAS_MODEL_MIRROR) or the catalog entry'
                  : e.kind === 'filesystem'
                    ? 'check that the cache folder is writable, or set XDG_CACHE_HOME'
                    : 'check the network connection, or download the file elsewhere and serve it from a mirror: pifaas models pull ID --mirror http://HOST/models';
              throw new UserError(`${e.message}; nothing was written to the cache`, hint);
            }
            throw e;
          } finally {
            if (started) bar.stop();
          }
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      printResult(opts, { models: results }, (d) =>
        d.models
          .map((r) => (r.downloaded ? `${r.model}: downloaded ${formatBytes(r.bytes)}, sha256 ok -> ${r.path}` : `${r.model}: already ${r.where === 'bundled' ? 'bundled' : 'cached'} at ${r.path}`))
          .join('\n'),
      );
    });
  return withExamples(
    cmd,
    'pifaas models pull resnet50-v1-12-int8',
    'pifaas models pull resnet50-v2-7 --mirror http://fileserver.lan/onnx   # serves resnet50-v2-7.onnx',
  );
}

function verifyCommand(): Command {
  const cmd = new Command('verify')
    .description('recompute the sha256 of the bundled and cached model files and compare with the catalog')
    .argument('[ids...]', 'model ids (default: every model present)')
    .option('--json', 'print the results as JSON')
    .action(async (ids: string[], opts: { json?: boolean }) => {
      const catalog = await catalogOrUserError();
      const models = ids.length ? ids.map((id) => modelOrUserError(catalog, id)) : catalog.models;
      const results = [];
      for (const m of models) {
        const loc = await locateModel(catalog, m);
        if (!loc) {
          if (ids.length) throw new UserError(`${m.id} is neither bundled nor cached`, `pifaas models pull ${m.id}`);
          continue;
        }
        const sha = await sha256File(loc.path);
        results.push({ id: m.id, path: loc.path, ok: sha === m.sha256, sha256: sha, expected: m.sha256 });
      }
      printResult(opts, { models: results }, (d) => d.models.map((r) => `${r.ok ? 'ok ' : 'BAD'} ${r.id}  ${r.path}${r.ok ? '' : `  sha256 ${r.sha256}, catalog ${r.expected}`}`).join('\n'));
      const bad = results.filter((r) => !r.ok);
      if (bad.length) {
        throw new UserError(`${bad.map((r) => r.id).join(', ')}: sha256 does not match the catalog`, 'delete the file and run `pifaas models pull ID` again (bundled files: reinstall pifaas)');
      }
    });
  return withExamples(cmd, 'pifaas models verify', 'pifaas models verify mobilenetv2-12-int8 --json');
}

export function modelsCommand(): Command {
  const cmd = new Command('models').description('list, download and verify the ONNX models the functions serve');
  cmd.addCommand(listCommand());
  cmd.addCommand(pullCommand());
  cmd.addCommand(verifyCommand());
  return withExamples(cmd, 'pifaas models list', 'pifaas models pull resnet50-v1-12-int8');
}
