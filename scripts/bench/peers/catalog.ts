// The peer rows a benchmark compares against, in table order: where each server listens, which
// process to sample for CPU, and which driver factory and config measure it. RabbitMQ quorum comes
// first: it is the like-for-like durable peer and the ratio baseline.
import { siblingModule } from '../lib/child-runner.js';
import type { ComparisonEntry } from '../lib/comparison.js';

export type PeerEntry = ComparisonEntry;

const rabbitmq = { processName: 'beam.smp', host: '127.0.0.1', port: 5672 };
const nats = { processName: 'nats-server', host: '127.0.0.1', port: 4222 };
const redis = { processName: 'redis-server', host: '127.0.0.1', port: 6379 };

export const PEERS: readonly PeerEntry[] = [
  {
    id: 'rabbitmq-quorum',
    module: siblingModule(import.meta.url, 'rabbitmq'),
    factory: 'createRabbitMqDriver',
    config: { queueType: 'quorum' },
    server: rabbitmq,
  },
  {
    id: 'rabbitmq-classic',
    module: siblingModule(import.meta.url, 'rabbitmq'),
    factory: 'createRabbitMqDriver',
    config: { queueType: 'classic' },
    server: rabbitmq,
  },
  {
    id: 'jetstream',
    module: siblingModule(import.meta.url, 'jetstream'),
    factory: 'createJetStreamDriver',
    config: { publisher: 'client' },
    server: nats,
  },
  {
    id: 'jetstream-raw',
    module: siblingModule(import.meta.url, 'jetstream'),
    factory: 'createJetStreamDriver',
    config: { publisher: 'raw' },
    server: nats,
  },
  {
    id: 'redis-streams',
    module: siblingModule(import.meta.url, 'redis-streams'),
    factory: 'createRedisStreamsDriver',
    config: {},
    server: redis,
  },
];
