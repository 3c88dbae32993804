// The telemetry room's face: the process logger and the gateway's Prometheus metrics.

/** pino logger: JSON lines, or readable lines in a terminal. */
export { createLogger, REDACT_PATHS, type Logger, type LoggerConfig } from './logger.js';
/** The gateway's metric families on a registry of its own. */
export { GatewayMetrics, commitObserverFor, type ResourceGauges } from './metrics.js';
/** The broker's stats() as a Prometheus gauge family, read at each scrape. */
export { registerBrokerMetrics } from './broker-metrics.js';
