/**
 * /api/openapi.json describes the two answers that are files rather than JSON documents of a route:
 * the audit export (a stream in one of four formats) and a run's evidence pack, with their query
 * parameters and the errors a client must handle.
 */
import { describe, expect, test } from 'vitest';
import { downloads, routes } from '../../src/api/contract.ts';
import { openApiDocument } from '../../src/api/openapi.ts';

interface Operation {
  operationId: string;
  parameters: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
  responses: Record<string, { description: string; content?: Record<string, { schema?: Record<string, unknown> }> }>;
}
const doc = openApiDocument('test') as { paths: Record<string, Record<string, Operation>> };

describe('the OpenAPI document', () => {
  test('GET /api/audit/export: its query, a binary stream per format, its error answers', () => {
    const op = doc.paths['/api/audit/export']?.['get'];
    expect(op?.operationId).toBe('auditExport');
    const params = Object.fromEntries(op!.parameters.map((p) => [p.name, p]));
    expect(Object.keys(params).sort()).toEqual(['execution', 'format', 'since', 'until']);
    expect(params['format']).toMatchObject({ in: 'query', required: true });
    expect(params['format']!.schema['enum']).toEqual(['jsonl', 'csv', 'ocsf', 'parquet']);
    for (const name of ['since', 'until', 'execution'])
      expect(params[name]).toMatchObject({ in: 'query', required: false });
    const ok = op!.responses['200']!;
    expect(Object.keys(ok.content ?? {}).sort()).toEqual([
      'application/json; charset=utf-8',
      'application/vnd.apache.parquet',
      'application/x-ndjson; charset=utf-8',
      'text/csv; charset=utf-8; header=present',
    ]);
    for (const media of Object.values(ok.content!))
      expect(media.schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(ok).toMatchObject({ headers: { 'Content-Disposition': { required: true } } });
    for (const status of ['400', '401', '403', '429', 'default']) {
      expect(op!.responses[status]?.content?.['application/json']?.schema, status).toBeDefined();
    }
    expect(op!.responses['403']!.description).toContain('exportAudit');
  });

  test('GET /api/executions/{id}/pack: the run id, the pack, and why it may be refused', () => {
    const op = doc.paths['/api/executions/{id}/pack']?.['get'];
    expect(op?.operationId).toBe('executionPack');
    expect(op!.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(op!.responses['200']!.content?.['application/json']?.schema).toMatchObject({ type: 'object' });
    for (const status of ['400', '401', '403', '404', '429', '503', 'default']) {
      expect(op!.responses[status]?.content?.['application/json']?.schema, status).toBeDefined();
    }
  });

  test('every route and every download of the contract is an operation', () => {
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    for (const name of [...Object.keys(routes), ...Object.keys(downloads)]) expect(operations).toContain(name);
  });
});
