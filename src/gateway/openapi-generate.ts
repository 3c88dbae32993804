// Produces the OpenAPI document from the route schemas without Redis or a broker: the app is
// built with inert dependencies (routes only touch them when called) and never listens.
// `npm run openapi` writes it to openapi/openapi.json; a test keeps the committed copy current.
import { pino } from 'pino';
import type { BrokerClient } from '../cluster/index.js';
import type { MetaStore } from '../meta/index.js';
import { buildApp } from './app.js';

export async function generateOpenApiDocument(): Promise<Record<string, unknown>> {
  const app = await buildApp({
    meta: {} as MetaStore,
    brokers: {} as BrokerClient,
    logger: pino({ level: 'silent' }),
    config: { region: 'local', docs: false },
  });
  await app.ready();
  const document = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return document;
}

/** The document as committed: stable key order from the routes, two-space JSON, newline. */
export function serializeDocument(document: Record<string, unknown>): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
