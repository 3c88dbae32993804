// The alarms room's face: evaluation of alarm rules (a lease-holding ticker over a pure state
// machine), webhook notifications through BullMQ (signed, retried, SSRF-guarded) and the checks
// of webhook URLs the gateway makes when a rule is created.

/** The ticker that evaluates every alarm on the lease holder. */
export {
  AlarmEvaluator,
  DEFAULT_EVALUATION_INTERVAL_MS,
  type AlarmEvaluatorOptions,
  type NotificationSink,
} from './alarm-evaluator.js';
/** One alarm's evaluation: ok → pending → firing → ok (resolved). */
export {
  stepAlarm,
  breaches,
  INITIAL_ALARM_STATE,
  type AlarmStep,
  type AlarmObservation,
  type AlarmRule,
} from './alarm-state-machine.js';
/** BullMQ delivery of notifications, with history and retries. */
export {
  AlarmNotifier,
  QUEUE_NAME,
  type AlarmNotifierOptions,
  type DeliveryOutcome,
} from './alarm-notifier.js';
/** The webhook body and the queue job carrying it. */
export {
  webhookPayload,
  decodeNotificationJob,
  notificationJobId,
  type NotificationJob,
  type WebhookPayload,
} from './notification.js';
/** Stripe-style signatures: `Wharf-Signature: t=<unix>,v1=<hex>`. */
export { SIGNATURE_HEADER, signWebhook, verifyWebhookSignature } from './webhook-signature.js';
/** Which addresses and URLs a webhook may reach. */
export {
  forbiddenAddressReason,
  forbiddenHostReason,
  parseIPv4,
  parseIPv6,
  webhookUrlProblem,
} from './ssrf-guard.js';
/** One signed POST with a deadline, to a checked address. */
export { postWebhook, WebhookError, type WebhookRequest } from './webhook-sender.js';
