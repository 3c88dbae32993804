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
        description:
          'Multi-tenant serverless message queue. Tenant plane (/v1): AWS SigV4 with the ' +
          'tenant access key (region = WHARF_REGION, service `mq`) or a bearer token from ' +
          'POST /v1/tokens. Operator plane (/admin/v1): the operator bearer token. Every error ' +
          'answer is an ErrorBody and every answer carries x-request-id.',
      },
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
        { name: 'instances' },
        { name: 'topics' },
        { name: 'groups' },
        { name: 'messages', description: 'Publish, receive, ack, visibility' },
        { name: 'query', description: 'Query, trace, statistics, replay, dead letters' },
        { name: 'alarms', description: 'Alarms on backlog, age, dead letters, publish rate' },
        { name: 'tokens' },
        { name: 'transactions', description: 'Commit, roll back, check-back of half messages' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  };
}
