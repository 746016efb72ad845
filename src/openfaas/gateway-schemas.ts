// Why: the OpenFaaS gateway is a network boundary, so every payload pifaas sends or receives is checked
// against a zod schema written from OpenFaaS's published OpenAPI spec (openfaas/faas api-docs/
// spec.openapi.yml) and faas-provider's Go types (FunctionDeployment, FunctionStatus, LogEntry).
// Providers differ in small ways (faas-swarm omits zero counters, older releases say created_at,
// faas-netes adds namespaces and usage); the schemas accept what real providers send.
import { z } from 'zod';

/** FunctionResources: Kubernetes-style quantities on faas-netes, bytes / nano-CPUs on faas-swarm. */
export const functionResourcesSchema = z.object({
  memory: z.string().optional(),
  cpu: z.string().optional(),
});
export type FunctionResources = z.infer<typeof functionResourcesSchema>;

const stringMap = z.record(z.string(), z.string());

/** Request body of POST and PUT /system/functions. */
export const functionDeploymentSchema = z.object({
  service: z.string().min(1),
  image: z.string().min(1),
  namespace: z.string().optional(),
  envProcess: z.string().optional(),
  envVars: stringMap.optional(),
  constraints: z.array(z.string()).optional(),
  secrets: z.array(z.string()).optional(),
  labels: stringMap.nullable().optional(),
  annotations: stringMap.nullable().optional(),
  limits: functionResourcesSchema.nullable().optional(),
  requests: functionResourcesSchema.nullable().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
});
export type FunctionDeployment = z.infer<typeof functionDeploymentSchema>;

/** One element of GET /system/functions and the body of GET /system/function/{name}. */
export const functionStatusSchema = z
  .object({
    name: z.string(),
    image: z.string(),
    namespace: z.string().optional(),
    envProcess: z.string().optional(),
    envVars: stringMap.nullable().optional(),
    constraints: z.array(z.string()).nullable().optional(),
    secrets: z.array(z.string()).nullable().optional(),
    labels: stringMap.nullable().optional(),
    annotations: stringMap.nullable().optional(),
    limits: functionResourcesSchema.nullable().optional(),
    requests: functionResourcesSchema.nullable().optional(),
    readOnlyRootFilesystem: z.boolean().optional(),
    // faas-provider marks the counters omitempty: a missing counter means zero.
    invocationCount: z.number().default(0),
    replicas: z.number().default(0),
    availableReplicas: z.number().default(0),
    createdAt: z.string().optional(),
    created_at: z.string().optional(),
  })
  .transform(({ created_at, ...s }) => ({ ...s, createdAt: s.createdAt ?? created_at }));
export type FunctionStatus = z.infer<typeof functionStatusSchema>;

export const functionListSchema = z.array(functionStatusSchema);

const versionInfoSchema = z.object({
  commit_message: z.string().optional(),
  sha: z.string().optional(),
  release: z.string().optional(),
});

/** GET /system/info. */
export const gatewayInfoSchema = z.object({
  provider: z
    .object({
      provider: z.string(),
      orchestration: z.string(),
      version: versionInfoSchema.nullable().optional(),
    })
    .nullable()
    .optional(),
  version: versionInfoSchema.nullable().optional(),
  arch: z.string().optional(),
});
export type GatewayInfo = z.infer<typeof gatewayInfoSchema>;

/** Request body of DELETE /system/functions (the namespace travels as a query parameter). */
export const deleteFunctionRequestSchema = z.object({ functionName: z.string().min(1) });

/** Request body of POST /system/scale-function/{name}. */
export const scaleServiceRequestSchema = z.object({
  serviceName: z.string().min(1),
  replicas: z.number().int().min(0),
  namespace: z.string().optional(),
});

/** One line of the application/x-ndjson stream of GET /system/logs. */
export const logEntrySchema = z.object({
  name: z.string(),
  namespace: z.string().default(''),
  instance: z.string().default(''),
  timestamp: z.string(),
  text: z.string(),
});
export type LogEntry = z.infer<typeof logEntrySchema>;

/** GET /system/namespaces: faas-netes lists the function namespaces; faas-swarm answers []. */
export const namespaceListSchema = z.array(z.string()).nullable().transform((v) => v ?? []);
