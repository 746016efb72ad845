// Why: models/catalog.json is the one description of every model pifaas can serve (file, checksum,
// source, license, how to feed it, how to read its output, which function serves it). The function,
// `pifaas models` and the image build all read it through this schema, so a malformed entry fails
// loudly at start-up instead of producing wrong answers.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const dim = z.union([z.number().int().positive(), z.string().min(1)]);

const resizeSchema = z.discriminatedUnion('kind', [
  /** ImageNet style: scale the shorter side to `shorterSide`, then cut the centre `crop` x `crop`. */
  z.strictObject({ kind: z.literal('center-crop'), shorterSide: z.number().int().positive(), crop: z.number().int().positive() }),
  /** Stretch the whole image to width x height (digits). */
  z.strictObject({ kind: z.literal('fill'), width: z.number().int().positive(), height: z.number().int().positive() }),
]);

export const preprocessingSchema = z.strictObject({
  color: z.enum(['rgb', 'grey']),
  resize: resizeSchema,
  /** Pixel value 0 maps to range[0], 255 to range[1] (before mean/std). */
  range: z.tuple([z.number(), z.number()]),
  mean: z.array(z.number()).optional(),
  std: z.array(z.number()).optional(),
  /** Digit models expect bright ink on a dark background; dark-on-light inputs are inverted. */
  ink: z.enum(['bright']).optional(),
  /** NCHW: [1, C, H, W]; flat: [1, H*W*C] row-major. */
  layout: z.enum(['NCHW', 'flat']),
});

export const modelEntrySchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
  task: z.enum(['imagenet', 'digits']),
  file: z.string().regex(/^[A-Za-z0-9._-]+\.onnx$/),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bundled: z.boolean(),
  source: z.strictObject({ url: z.string().min(1), note: z.string() }),
  license: z.string().min(1),
  heldOutAccuracy: z.number().min(0).max(1).optional(),
  input: z.strictObject({ name: z.string().optional(), type: z.literal('float32'), shape: z.array(dim) }),
  output: z.strictObject({ name: z.string().optional(), shape: z.array(dim) }),
  preprocessing: preprocessingSchema,
  postprocessing: z.strictObject({ softmax: z.boolean() }),
  labels: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/), format: z.enum(['synset', 'plain']) }),
});

export const FUNCTION_NAMES = ['faas-resnet', 'faas-digits'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

const functionEntrySchema = z.strictObject({
  task: z.enum(['imagenet', 'digits']),
  defaultModel: z.string(),
  /** Served instead of defaultModel when that one is neither bundled, cached nor downloadable. */
  fallbackModel: z.string().optional(),
  models: z.array(z.string()).min(1),
});

export const catalogSchema = z
  .strictObject({
    $comment: z.string().optional(),
    schemaVersion: z.literal(1),
    functions: z.strictObject({ 'faas-resnet': functionEntrySchema, 'faas-digits': functionEntrySchema }),
    models: z.array(modelEntrySchema).min(1),
  })
  .superRefine((cat, ctx) => {
    const ids = new Set<string>();
    for (const m of cat.models) {
      if (ids.has(m.id)) ctx.addIssue({ code: 'custom', message: `model id "${m.id}" is listed twice` });
      ids.add(m.id);
    }
    for (const [name, fn] of Object.entries(cat.functions)) {
      for (const id of [fn.defaultModel, ...(fn.fallbackModel ? [fn.fallbackModel] : []), ...fn.models]) {
        const m = cat.models.find((x) => x.id === id);
        if (!m) ctx.addIssue({ code: 'custom', message: `function ${name} names model "${id}", which is not in the catalog` });
        else if (m.task !== fn.task) ctx.addIssue({ code: 'custom', message: `function ${name} (${fn.task}) names ${id}, a ${m.task} model` });
      }
    }
  });

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type Preprocessing = z.infer<typeof preprocessingSchema>;
export type FunctionEntry = z.infer<typeof functionEntrySchema>;
export type CatalogData = z.infer<typeof catalogSchema>;

/** Width and height of the image a preprocessing feeds the model. */
export function inputSizeOf(pre: Preprocessing): [width: number, height: number] {
  return pre.resize.kind === 'center-crop' ? [pre.resize.crop, pre.resize.crop] : [pre.resize.width, pre.resize.height];
}

/** Colour channels of the image a preprocessing feeds the model. */
export function channelsOf(pre: Preprocessing): 1 | 3 {
  return pre.color === 'grey' ? 1 : 3;
}

/** The [1, ...] tensor shape a preprocessing produces. */
export function tensorDimsOf(pre: Preprocessing): number[] {
  const channels = channelsOf(pre);
  const [w, h] = inputSizeOf(pre);
  return pre.layout === 'NCHW' ? [1, channels, h, w] : [1, w * h * channels];
}

export interface Catalog extends CatalogData {
  /** The folder holding catalog.json, the bundled .onnx files and the label files. */
  dir: string;
}

/**
 * The package's models/ folder, found relative to this module (src/function/ or dist/function/ are
 * both two levels below the package root), so it works from a clone, an npm install and an image.
 */
export function defaultModelsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');
}

/** PIFAAS_MODELS_DIR when set, else the package's models/ folder. */
export function modelsDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.PIFAAS_MODELS_DIR ? path.resolve(env.PIFAAS_MODELS_DIR) : defaultModelsDir();
}

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
}

export async function loadCatalog(dir: string = modelsDirFromEnv()): Promise<Catalog> {
  const file = path.join(dir, 'catalog.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CatalogError(`cannot read the model catalog ${file}: ${(e as Error).message} (set PIFAAS_MODELS_DIR to the folder holding catalog.json)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CatalogError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = catalogSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(catalog)'}: ${i.message}`).join('; ');
    throw new CatalogError(`${file} is not a valid model catalog: ${issues}`);
  }
  return { ...parsed.data, dir };
}

export function findModel(catalog: Catalog, id: string): ModelEntry {
  const m = catalog.models.find((x) => x.id === id);
  if (!m) {
    throw new CatalogError(`unknown model "${id}"; known models: ${catalog.models.map((x) => x.id).join(', ')}`);
  }
  return m;
}

export function isFunctionName(name: string): name is FunctionName {
  return (FUNCTION_NAMES as readonly string[]).includes(name);
}
