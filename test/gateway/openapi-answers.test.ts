// The committed OpenAPI document lists the answers the server really gives: the errors of the
// layers in front of every route (withTransportErrors), optional bodies, JSON errors, the alarm
// history's limit. (openapi.test.ts keeps the committed document equal to the generated one.)
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Operation {
  operationId: string;
  requestBody?: { required?: boolean; content: Record<string, { schema: { $ref?: string } }> };
  parameters?: {
    name: string;
    in: string;
    description?: string;
    schema: { type?: string; minimum?: number; maximum?: number; description?: string };
  }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}
const doc = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../openapi/openapi.json'), 'utf8'),
) as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { required?: string[] }> };
};
const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ path, method, ...op })),
);
const byId = new Map(operations.map((op) => [op.operationId, op]));

t.test('error answers follow from how each operation is reached', async (t) => {
  t.ok(operations.length > 40, 'the operations were read');
  for (const op of operations) {
    const codes = Object.keys(op.responses);
    t.ok(codes.includes('429'), `${op.operationId}: 429 (connection bound)`);
    t.ok(codes.includes('503'), `${op.operationId}: 503 (shutting down)`);
    if (op.requestBody !== undefined) {
      t.ok(codes.includes('413'), `${op.operationId}: 413 (body over 8 MiB)`);
      t.ok(codes.includes('415'), `${op.operationId}: 415 (not JSON)`);
    } else t.notOk(codes.includes('415'), `${op.operationId}: no 415 without a body`);
    const readsBody = op.method !== 'get' && !op.path.startsWith('/.well-known');
    if (readsBody) t.ok(codes.includes('413'), `${op.operationId}: 413 (its body is read)`);
    for (const [code, answer] of Object.entries(op.responses)) {
      if (Number(code) >= 400) {
        t.same(
          Object.keys(answer.content ?? {}),
          ['application/json'],
          `${op.operationId} ${code}`,
        );
      }
    }
  }
  t.ok('503' in byId.get('getJwks')!.responses, 'getJwks: 503 (Redis unreachable)');
  for (const id of ['commitTransaction', 'rollbackTransaction']) {
    t.equal(byId.get(id)!.responses['204'].content, undefined, `${id}: 204 has no body`);
  }
  t.same(Object.keys(byId.get('getMetrics')!.responses['200'].content!), ['text/plain']);
});

t.test('a body is required only where its schema requires a field', async (t) => {
  const optional = operations.filter((op) => op.requestBody?.required === false);
  t.same(optional.map((op) => op.operationId).sort(), [
    'checkTransactions',
    'createAccessKey',
    'putGroup',
    'receiveMessages',
    'streamReceiveMessages',
    'updateTenant',
  ]);
  for (const op of operations.filter((op) => op.requestBody?.required === true)) {
    const ref = op.requestBody!.content['application/json'].schema.$ref;
    const schema =
      ref === undefined
        ? op.requestBody!.content['application/json'].schema
        : doc.components.schemas[ref.split('/').pop()!];
    t.ok(
      ((schema as { required?: string[] }).required ?? []).length > 0,
      `${op.operationId} requires a field`,
    );
  }
});

t.test('the alarm history limit is described as its bounds have it', async (t) => {
  const limit = byId.get('getAlarmHistory')!.parameters!.find((p) => p.name === 'limit')!;
  t.match(limit.schema, { type: 'integer', minimum: 1, maximum: 999 });
  t.match(limit.description ?? limit.schema.description ?? '', /^1\.\.999, default 200/);
});

t.test('numeric query parameters are integers, as generated clients send them', async (t) => {
  const numeric = [
    ['queryMessages', 'from'],
    ['queryMessages', 'to'],
    ['queryMessages', 'limit'],
    ['listDeadLetters', 'limit'],
    ['getAlarmHistory', 'limit'],
    ['getTenantUsage', 'from'],
    ['getInstanceUsage', 'to'],
  ];
  for (const [operationId, name] of numeric) {
    const parameter = byId.get(operationId)?.parameters?.find((p) => p.name === name);
    t.equal(parameter?.schema.type, 'integer', `${operationId} ${name}`);
  }
});
