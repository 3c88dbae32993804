// The OpenAPI document's frame: info, security schemes, tags. Paths and components come from
// the route schemas through @fastify/swagger; each shared schema's `$id` names its component.
import type { SwaggerOptions } from '@fastify/swagger';

export const API_VERSION = '1.0.0';

export function openapiDocument(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Wharf',
        version: API_VERSION,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        description:
          'Multi-tenant serverless message queue. Tenant plane (/v1): AWS SigV4 with the ' +
          'tenant access key (region = WHARF_REGION, service `mq`) or a bearer token from ' +
          'POST /v1/tokens. Operator plane (/admin/v1): the operator bearer token. Every error ' +
          'answer is an ErrorBody and every answer carries x-request-id; 429 and 503 carry ' +
          'retry-after. Besides the answers each operation lists, any request may be answered ' +
          '404 NotFound (no such path), 405 MethodNotAllowed (a method the path does not take; ' +
          '`allow` lists those it does), 414 UriTooLong, 431 HeadersTooLarge or 500 Internal.',
      },
      // the gateway that serves this document (GET /openapi.json); clients set their endpoint
      servers: [{ url: '/', description: 'the Wharf gateway serving this document' }],
      components: {
        securitySchemes: {
          sigv4: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description:
              'AWS Signature Version 4: `AWS4-HMAC-SHA256 Credential=<AccessKeyId>/<yyyymmdd>/' +
              '<region>/mq/aws4_request, SignedHeaders=…, Signature=…` with `x-amz-date`.',
          },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A tenant token from POST /v1/tokens.',
          },
          operator: {
            type: 'http',
            scheme: 'bearer',
            description: 'WHARF_ADMIN_TOKEN, or an operator JWT with `role: admin`.',
          },
        },
      },
      tags: [
        { name: 'service', description: 'Health, readiness, metrics, keys' },
        { name: 'operator', description: 'Tenants and access keys (operator plane)' },
        { name: 'instances', description: 'Instances: the namespaces of topics and groups' },
        { name: 'topics', description: 'Topics and their queues' },
        { name: 'groups', description: 'Consumer groups and their delivery settings' },
        { name: 'messages', description: 'Publish, receive, ack, visibility' },
        { name: 'query', description: 'Query, trace, statistics, replay, dead letters' },
        { name: 'alarms', description: 'Alarms on backlog, age, dead letters, publish rate' },
        { name: 'tokens', description: 'Tenant bearer tokens' },
        { name: 'transactions', description: 'Commit, roll back, check-back of half messages' },
      ],
    },
    transformObject: (document) =>
      'openapiObject' in document
        ? optionalEmptyBodies(document.openapiObject)
        : document.swaggerObject,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  };
}

interface JsonSchema {
  $ref?: string;
  required?: string[];
  [keyword: string]: unknown;
}
interface OpenApiObject {
  paths?: Record<
    string,
    Record<
      string,
      { requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> } }
    >
  >;
  components?: { schemas?: Record<string, JsonSchema> };
}

/** Keywords that could make `{}` invalid without `required`. */
const CONSTRAINING = ['minProperties', 'anyOf', 'oneOf', 'allOf', 'not', 'if', 'dependentRequired'];

/**
 * @fastify/swagger marks every request body required. The gateway reads an absent body as `{}`
 * (plugins/body.ts decodeJsonBody), so a body whose schema requires no field may be left out:
 * those are marked optional.
 */
function optionalEmptyBodies<D>(openapiObject: D): D {
  const document = openapiObject as OpenApiObject;
  const components = document.components?.schemas ?? {};
  const resolve = (schema: JsonSchema | undefined): JsonSchema | undefined =>
    schema?.$ref?.startsWith('#/components/schemas/')
      ? resolve(components[schema.$ref.slice('#/components/schemas/'.length)])
      : schema;
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const body = operation.requestBody;
      if (body?.content === undefined) continue;
      const schemas = Object.values(body.content).map((media) => resolve(media.schema));
      const acceptsEmpty = schemas.every(
        (schema) =>
          schema !== undefined &&
          schema.type === 'object' &&
          (schema.required ?? []).length === 0 &&
          !CONSTRAINING.some((keyword) => keyword in schema),
      );
      if (acceptsEmpty) body.required = false;
    }
  }
  return openapiObject;
}
