// Why: `pifaas build NAME` makes the function's container images for every Pi and the AWS node in one
// command (linux/amd64 + linux/arm64 on onnxruntime-node, linux/arm/v7 on onnxruntime-web), and with
// --push a registry gets them under one multi-platform name. Prints each platform's image size and
// build time (or JSON). The work is in src/image/function-image.ts.
import { Command, Option } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatBytes, formatTable, printResult } from '../cli/output.js';
import { buildFunctionImage, type BuildResult, type BuilderChoice } from '../image/function-image.js';
import { FUNCTION_PLATFORMS, parsePlatforms } from '../image/platforms.js';
import { taskListOptions } from '../cli/task-list.js';

interface BuildFlags {
  platforms: string;
  push?: string;
  insecureRegistry?: boolean;
  model?: string;
  image?: string;
  tag: string;
  baseImage?: string;
  builder: BuilderChoice;
  cache: boolean;
  json?: boolean;
}

function humanSummary(r: BuildResult): string {
  const lines = [
    formatTable(
      ['PLATFORM', 'IMAGE', 'SIZE', 'BUILD TIME', 'ENGINE'],
      r.images.map((i) => [i.platform, i.image, formatBytes(i.size), `${i.seconds.toFixed(1)} s`, `onnxruntime-${i.engine}`]),
    ),
    `model: ${r.model || `${r.models.join(', ')} (picked per request)`}; built with ${r.builder === 'buildx' ? 'docker buildx' : 'the Docker Engine API (BuildKit)'} in ${r.seconds.toFixed(1)} s`,
  ];
  if (r.localTag) lines.push(`${r.localTag} is the image for this Docker's platform: docker run --rm -p 8080:8080 ${r.localTag}`);
  if (r.manifestList) lines.push(`pushed ${r.manifestList.reference} (${r.manifestList.platforms.join(', ')}) ${r.manifestList.digest}`);
  if (r.notice) lines.push(`note: ${r.notice}`);
  return lines.join('\n');
}

export function buildCommand(): Command {
  const cmd = new Command('build')
    .description('build the multi-platform container image of a function (amd64 + arm64 on onnxruntime-node, arm/v7 on onnxruntime-web)')
    .argument('<name>', 'function: faas-resnet or faas-digits')
    .option('--platforms <list>', `comma-separated platforms (${FUNCTION_PLATFORMS.map((p) => p.name).join(', ')})`, FUNCTION_PLATFORMS.map((p) => p.name).join(','))
    .option('--push <registry>', 'push to this registry (HOST[:PORT][/PATH]) under one multi-platform manifest list')
    .option('--insecure-registry', 'the --push registry speaks plain HTTP (loopback registries always may)')
    .option('--model <id>', "model to bake in and serve (default: the function's default when downloaded, else its bundled fallback)")
    .option('--image <repository>', 'local image repository (default pifaas/NAME)')
    .option('--tag <tag>', 'image tag; per-platform images get -amd64, -arm64, -armv7', 'latest')
    .option('--base-image <image>', 'Node.js base image instead of node:20-bookworm-slim (e.g. a mirror of it)')
    .addOption(new Option('--builder <builder>', 'docker buildx when installed, else the Docker Engine API').choices(['auto', 'buildx', 'engine']).default('auto'))
    .option('--no-cache', 'do not reuse cached build steps')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: BuildFlags) => {
      const result = await buildFunctionImage({
        functionName: name,
        model: opts.model,
        platforms: parsePlatforms(opts.platforms),
        repository: opts.image,
        tag: opts.tag,
        push: opts.push,
        insecureRegistry: opts.insecureRegistry,
        baseImage: opts.baseImage,
        noCache: !opts.cache,
        builder: opts.builder,
        taskList: taskListOptions(opts.json),
      });
      printResult(opts, result, humanSummary);
    });
  return withExamples(
    cmd,
    'pifaas build faas-resnet                                   # all three platforms, local images',
    'pifaas build faas-resnet --platforms linux/arm64 --json    # one platform, JSON result',
    'pifaas build faas-digits --push 192.168.1.5:5000 --insecure-registry',
    'pifaas build faas-resnet --model shufflenet-v2-12-int8 --tag shufflenet',
  );
}
