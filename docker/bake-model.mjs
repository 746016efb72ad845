// Why: an image carries the model(s) it serves, so a node never downloads weights at start-up. This
// step (in the Dockerfiles' model stage, on the build platform) copies the chosen models and their
// label files out of models/ and refuses to build when a file's size or sha256 differs from
// models/catalog.json: a truncated or swapped model must fail the build, not give wrong answers later.
//
//   node bake-model.mjs --function faas-resnet --models "mobilenetv2-12-int8" --from /src/models --to /out/models
//   node bake-model.mjs --function faas-digits --models "" ...   (every model of the function)
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function fail(message) {
  process.stderr.write(`bake-model: ${message}\n`);
  process.exit(1);
}

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1] ?? '';
for (const key of ['function', 'from', 'to']) if (!args[key]) fail(`missing --${key}`);

const catalogFile = join(args.from, 'catalog.json');
if (!existsSync(catalogFile)) fail(`${catalogFile} is missing: the build context must hold models/catalog.json`);
const catalog = JSON.parse(readFileSync(catalogFile, 'utf8'));
const fn = catalog.functions?.[args.function];
if (!fn) fail(`unknown function "${args.function}"; the catalog has: ${Object.keys(catalog.functions ?? {}).join(', ')}`);

mkdirSync(args.to, { recursive: true });
const baked = [];
let ids = [...new Set((args.models ?? '').split(/[\s,]+/).filter(Boolean))];
if (ids.length === 0) {
  // No model named: the function serves all of its models and picks one per request (faas-digits);
  // an ImageNet function must be told which of its (large) models to bake.
  if (fn.task !== 'digits') fail(`name the model to bake for ${args.function} (--build-arg MODEL=...; one of ${fn.models.join(', ')})`);
  ids = fn.models;
}
for (const id of ids) {
  const model = catalog.models.find((m) => m.id === id);
  if (!model) fail(`unknown model "${id}"; the catalog has: ${catalog.models.map((m) => m.id).join(', ')}`);
  if (!fn.models.includes(id)) fail(`${args.function} does not serve "${id}"; it serves: ${fn.models.join(', ')}`);
  const file = join(args.from, model.file);
  if (!existsSync(file)) {
    fail(`${model.file} (model ${id}) is not in the build context; download it first: pifaas models pull ${id}`);
  }
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== model.bytes || sha256 !== model.sha256) {
    fail(
      `${model.file} does not match the catalog: ${bytes.length} bytes, sha256 ${sha256}; ` +
        `expected ${model.bytes} bytes, sha256 ${model.sha256}. Download it again (pifaas models pull ${id}).`,
    );
  }
  copyFileSync(file, join(args.to, model.file));
  const labels = join(args.from, model.labels.file);
  if (!existsSync(labels)) fail(`the label file ${model.labels.file} of ${id} is not in the build context`);
  copyFileSync(labels, join(args.to, model.labels.file));
  baked.push(`${id} (${model.file}, ${statSync(file).size} bytes, sha256 ok)`);
}
copyFileSync(catalogFile, join(args.to, 'catalog.json'));
// Model licences and sources travel with the weights.
if (existsSync(join(args.from, 'PROVENANCE.md'))) copyFileSync(join(args.from, 'PROVENANCE.md'), join(args.to, 'PROVENANCE.md'));
writeFileSync(join(args.to, 'baked-models.txt'), `${baked.join('\n')}\n`);
process.stdout.write(`bake-model: ${baked.join('; ')}\n`);
