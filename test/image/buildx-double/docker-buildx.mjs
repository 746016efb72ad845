// Why: the docker buildx plugin is not packaged for Debian 12 and cannot be downloaded on the test
// machines, so `pifaas build --builder buildx` would never run. This is a Docker CLI plugin that
// follows buildx's published command-line contract for the commands pifaas uses, and does the work
// with what does run here: the daemon's built-in BuildKit through Debian's docker client (20.10, which
// never routes `docker build` to a buildx plugin), `docker push`, and `docker manifest`.
//
//   docker-buildx docker-cli-plugin-metadata              plugin metadata (Docker CLI plugin contract)
//   docker buildx version
//   docker buildx build [--platform P] [-f FILE] [--build-arg K=V]... [-t TAG]... [--load] [--push]
//                       [--no-cache] [--pull] [--progress MODE] [--provenance=false] CONTEXT
//   docker buildx imagetools create [-t TARGET]... [--dry-run] SOURCE...
//
// Semantics are those of buildx's default builder (the "docker" driver): --load (also the default)
// puts the image in the daemon's image store, --push additionally pushes every tag to its registry,
// and a multi-platform --platform list is refused for it ("docker exporter does not currently support
// exporting manifest lists"). Flags outside the list above are refused the way buildx (cobra) refuses
// an unknown flag, so a wrong command line fails here as it would with the real plugin.
//
// Every call is appended as one JSON line {argv, dockerHost} to $PIFAAS_BUILDX_DOUBLE_LOG.
// $PIFAAS_BUILDX_DOUBLE_DOCKER is the docker client doing the work (default /usr/bin/docker).
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import path from 'node:path';

const DOCKER = process.env.PIFAAS_BUILDX_DOUBLE_DOCKER || '/usr/bin/docker';
const VERSION = 'v0.0.0-pifaas-double';

const argv = process.argv.slice(2);
if (process.env.PIFAAS_BUILDX_DOUBLE_LOG) {
  appendFileSync(process.env.PIFAAS_BUILDX_DOUBLE_LOG, `${JSON.stringify({ argv, dockerHost: process.env.DOCKER_HOST ?? null })}\n`);
}

/** Fails the way buildx does: "ERROR: ..." on stderr, exit 1. */
function fail(message, usage) {
  process.stderr.write(`ERROR: ${message}\n`);
  if (usage) process.stderr.write(`See '${usage} --help'.\n`);
  process.exit(1);
}

/** Runs the docker client with the plugin's stdio; resolves to its exit code. */
function docker(args, extraEnv = {}, stdout = 'inherit') {
  return new Promise((resolve) => {
    const child = spawn(DOCKER, args, { stdio: ['ignore', stdout, 'inherit'], env: { ...process.env, ...extraEnv } });
    let out = '';
    child.stdout?.on('data', (d) => (out += d.toString()));
    child.on('error', (e) => {
      process.stderr.write(`ERROR: cannot run ${DOCKER}: ${e.message}\n`);
      resolve({ code: 1, out });
    });
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/**
 * Parses flags the way cobra does: --flag value, --flag=value, -f value; booleans take no value
 * (or =true/=false). `spec` maps each flag name (and its shorthand) to ['string' | 'array' | 'bool', key].
 */
function parseFlags(args, spec, command) {
  const opts = {};
  const positional = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const def = spec[name];
    if (!def) fail(`unknown ${name.startsWith('--') ? 'flag' : 'shorthand flag'}: ${name.startsWith('--') ? name : `'${name.slice(1)}' in ${a}`}`, command);
    const [kind, key] = def;
    if (kind === 'bool') {
      opts[key] = eq > 0 ? a.slice(eq + 1) !== 'false' : true;
      continue;
    }
    let value;
    if (eq > 0) value = a.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i];
    else fail(`flag needs an argument: ${name}`, command);
    if (kind === 'array') (opts[key] ??= []).push(value);
    else opts[key] = value;
  }
  return { opts, positional };
}

async function build(args) {
  const { opts, positional } = parseFlags(
    args,
    {
      '--platform': ['array', 'platform'],
      '--file': ['string', 'file'],
      '-f': ['string', 'file'],
      '--build-arg': ['array', 'buildArg'],
      '--tag': ['array', 'tag'],
      '-t': ['array', 'tag'],
      '--load': ['bool', 'load'],
      '--push': ['bool', 'push'],
      '--no-cache': ['bool', 'noCache'],
      '--pull': ['bool', 'pull'],
      '--progress': ['string', 'progress'],
      '--provenance': ['string', 'provenance'],
    },
    'docker buildx build',
  );
  if (positional.length !== 1) fail(`"docker buildx build" requires exactly 1 argument.`, 'docker buildx build');
  const context = positional[0];
  const platforms = (opts.platform ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  if (platforms.length > 1) fail('docker exporter does not currently support exporting manifest lists');
  const progress = opts.progress ?? 'auto';
  if (!['auto', 'plain', 'tty', 'quiet', 'rawjson'].includes(progress)) fail(`invalid progress mode "${progress}"`);
  // The docker driver (without the containerd image store) cannot attach attestations.
  if (opts.provenance !== undefined && !['false', '0'].includes(opts.provenance)) fail('Attestation is not supported for the docker driver.');
  const tags = opts.tag ?? [];
  if (opts.push && tags.length === 0) fail('tag is needed when pushing to registry');
  for (const kv of opts.buildArg ?? []) if (!kv.includes('=') && process.env[kv] === undefined) fail(`build-arg ${kv} has no value and is not in the environment`);

  const dockerArgs = [
    'build',
    ...(platforms.length ? ['--platform', platforms[0]] : []),
    ...(opts.file ? ['--file', path.resolve(opts.file)] : []),
    ...(opts.buildArg ?? []).flatMap((kv) => ['--build-arg', kv]),
    ...tags.flatMap((t) => ['--tag', t]),
    ...(opts.noCache ? ['--no-cache'] : []),
    ...(opts.pull ? ['--pull'] : []),
    '--progress',
    progress === 'quiet' || progress === 'rawjson' ? 'plain' : progress,
    context,
  ];
  // BuildKit's progress goes to stderr, as with buildx.
  const built = await docker(dockerArgs, { DOCKER_BUILDKIT: '1' });
  if (built.code !== 0) process.exit(built.code);
  if (opts.push) {
    for (const tag of tags) {
      const pushed = await docker(['push', tag], {}, 'pipe');
      process.stderr.write(pushed.out);
      if (pushed.code !== 0) fail(`failed to push ${tag}`);
    }
  }
}

async function imagetoolsCreate(args) {
  const { opts, positional } = parseFlags(
    args,
    { '--tag': ['array', 'tag'], '-t': ['array', 'tag'], '--dry-run': ['bool', 'dryRun'], '--progress': ['string', 'progress'] },
    'docker buildx imagetools create',
  );
  const targets = opts.tag ?? [];
  if (positional.length === 0) fail('no sources specified');
  if (targets.length === 0 && !opts.dryRun) fail('no repositories specified, please set a reference in tag or source');
  for (const target of targets) {
    // A list left over from an earlier run would make `manifest create` refuse; buildx just overwrites.
    await docker(['manifest', 'rm', target], {}, 'pipe');
    const created = await docker(['manifest', 'create', '--insecure', target, ...positional], {}, 'pipe');
    if (created.code !== 0) fail(`failed to create ${target}`);
    if (opts.dryRun) {
      const shown = await docker(['manifest', 'inspect', '--insecure', target]);
      await docker(['manifest', 'rm', target], {}, 'pipe');
      process.exit(shown.code);
    }
    const pushed = await docker(['manifest', 'push', '--insecure', '--purge', target], {}, 'pipe');
    if (pushed.code !== 0) fail(`failed to push ${target}`);
    process.stderr.write(`#1 pushing ${target} ${pushed.out.trim()}\n#1 DONE\n`);
  }
}

async function main() {
  let args = argv;
  if (args[0] === 'docker-cli-plugin-metadata') {
    process.stdout.write(
      `${JSON.stringify({ SchemaVersion: '0.1.0', Vendor: 'pifaas test double', Version: VERSION, ShortDescription: 'Docker Buildx (test double)', URL: 'https://github.com/docker/buildx' })}\n`,
    );
    return;
  }
  // The docker CLI calls a plugin with its own name first (`docker-buildx buildx build ...`).
  if (args[0] === 'buildx') args = args.slice(1);
  const [command, ...rest] = args;
  if (command === 'version') {
    process.stdout.write(`github.com/docker/buildx ${VERSION} 0000000000000000000000000000000000000000\n`);
  } else if (command === 'build' || command === 'b') {
    await build(rest);
  } else if (command === 'imagetools' && rest[0] === 'create') {
    await imagetoolsCreate(rest.slice(1));
  } else {
    fail(`unknown command "${args.join(' ')}" for "docker buildx" (this test double knows version, build and imagetools create)`);
  }
}

await main();
