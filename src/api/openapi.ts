import { z } from 'zod';
import { routes, streams, type RouteSpec } from './contract.ts';
import { ErrorBodySchema } from './schemas.ts';

type JsonSchema = Record<string, unknown>;

const schemaOf = (s: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

/** Path and query parameters of a route, one OpenAPI parameter per property of their schemas. */
function parametersOf(spec: RouteSpec): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, s] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
    if (!s) continue;
    const js = schemaOf(s, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(js.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema });
    }
  }
  return out;
}

/** The OpenAPI 3.1 document of the API, generated from the contract (served at /api/openapi.json). */
export function openApiDocument(version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const error = {
    description: 'One sentence naming the problem',
    content: { 'application/json': { schema: schemaOf(ErrorBodySchema, 'output') } },
  };
  // Every route and stream shares the caller's budget (per principal and per address).
  const rateLimited = {
    description: 'Too many requests (code RATE_LIMITED): wait the seconds in Retry-After',
    headers: { 'Retry-After': { required: true, schema: { type: 'integer', minimum: 1 } } },
    content: error.content,
  };
  for (const [name, spec] of Object.entries(routes) as [string, RouteSpec][]) {
    const path = spec.path.replace(/:([a-zA-Z]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][spec.method.toLowerCase()] = {
      operationId: name,
      summary: spec.summary,
      security: [{ bearer: [] }],
      parameters: parametersOf(spec),
      ...(spec.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(spec.body, 'input') } } } }
        : {}),
      responses: {
        [String(spec.status)]: {
          description: 'OK',
          content: { 'application/json': { schema: schemaOf(spec.response, 'output') } },
        },
        '429': rateLimited,
        default: error,
      },
    };
  }
  for (const [name, s] of Object.entries(streams)) {
    const path = s.path.replace(/:([a-zA-Z]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path]['get'] = {
      operationId: `stream_${name}`,
      summary: s.summary,
      security: [{ bearer: [] }],
      parameters: [
        ...(path.includes('{id}') ? [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }] : []),
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'Server-sent events: one `audit` event per audit record',
          content: { 'text/event-stream': {} },
        },
        '429': rateLimited,
        default: error,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'mechanic API', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
