import { z } from 'zod';
import { EXPORT_MEDIA } from '../core/audit-export.ts';
import { downloads, routes, streams, type RouteSpec } from './contract.ts';
import { ErrorBodySchema } from './schemas.ts';

type JsonSchema = Record<string, unknown>;

const schemaOf = (s: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

/** Path and query parameters of a route, one OpenAPI parameter per property of their schemas. */
function parametersOf(spec: Pick<RouteSpec, 'params' | 'query'>): JsonSchema[] {
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

/**
 * The error answers a reader of the document must plan for, per operation, beyond 429 and the
 * default (every error has the same body: a code and one sentence).
 */
const ROUTE_ERRORS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  auditExport: {
    '400':
      'A filter that cannot be read: an unknown format, a time that is not ISO 8601, since after until (code USAGE)',
    '401': 'No valid bearer token (code UNAUTHENTICATED)',
    '403': 'The caller may not export the audit log (exportAudit); the refusal is recorded (code FORBIDDEN)',
  },
  executionPack: {
    '400': 'The run spans more records of the log than a pack holds: export that range instead (code USAGE)',
    '401': 'No valid bearer token (code UNAUTHENTICATED)',
    '403':
      "The caller may not export the audit log (exportAudit: the proof holds other runs' records); the refusal is recorded (code FORBIDDEN)",
    '404':
      'The log has no such run, or the registry lacks the runbook version it ran (codes EXECUTION_NOT_FOUND, RUNBOOK_NOT_FOUND)',
    '503': "No signed checkpoint covers the run's end yet: try again within a minute (code SERVER_UNAVAILABLE)",
  },
};

function errorsOf(
  errors: Readonly<Record<string, string>> | undefined,
  error: { content: JsonSchema },
): Record<string, JsonSchema> {
  return Object.fromEntries(
    Object.entries(errors ?? {}).map(([status, description]) => [status, { description, content: error.content }]),
  );
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
        ...errorsOf(ROUTE_ERRORS[name], error),
        '429': rateLimited,
        default: error,
      },
    };
  }
  // Downloads answer a file that streams, not a JSON document: one media type per format.
  for (const [name, d] of Object.entries(downloads)) {
    const path = d.path.replace(/:([a-zA-Z]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path]['get'] = {
      operationId: name,
      summary: d.summary,
      security: [{ bearer: [] }],
      parameters: parametersOf(d),
      responses: {
        '200': {
          description: 'The file, streamed as it is read; a failure part-way cuts the connection (no valid end)',
          headers: {
            'Content-Disposition': {
              required: true,
              description: 'attachment, with a file name saying what and when (mechanic-audit-20260301T120000Z.csv)',
              schema: { type: 'string' },
            },
          },
          content: Object.fromEntries(
            Object.entries(EXPORT_MEDIA).map(([format, m]) => [
              m.type,
              {
                schema: { type: 'string', format: 'binary', description: `format=${format}` },
              },
            ]),
          ),
        },
        ...errorsOf(ROUTE_ERRORS[name], error),
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
