// For tests of parked long polls (receives, transaction check-backs) and what ends them: a second
// access key made and the first revoked, a poll started and awaited until the broker holds it
// parked, and its answer raced to a deadline.
import type { Test } from 'tap';
import { waitFor } from './wait-for.js';
import { adminFetch, type Key, type ProvisionedTenant, type TestWharf } from './wharf.js';

/** A new access key of the tenant, made through the admin API. */
export async function addAccessKey(
  t: Test,
  wharf: TestWharf,
  tenant: ProvisionedTenant,
): Promise<Key> {
  const created = await adminFetch(
    wharf,
    'POST',
    `/admin/v1/tenants/${tenant.tenantId}/access-keys`,
    {},
  );
  t.equal(created.status, 201);
  const key = (await created.json()) as { accessKeyId: string; accessKeySecret: string };
  return { ak: key.accessKeyId, sk: key.accessKeySecret };
}

/** Revokes `key` through the admin API (expects 204). */
export async function revokeAccessKey(
  t: Test,
  wharf: TestWharf,
  tenant: ProvisionedTenant,
  key: Key,
): Promise<void> {
  const revoke = await adminFetch(
    wharf,
    'DELETE',
    `/admin/v1/tenants/${tenant.tenantId}/access-keys/${key.ak}`,
  );
  t.equal(revoke.status, 204);
}

/** Starts a poll and resolves, once the broker holds it parked, with its pending answer. */
export async function park(
  wharf: TestWharf,
  start: () => Promise<Response>,
): Promise<{ answer: Promise<Response> }> {
  const before = wharf.broker.stats().parkedReceives;
  const answer = start();
  // a failed start is reported by whoever awaits the answer, not as an unhandled rejection here
  answer.catch(() => undefined);
  await waitFor('the poll to park', () => wharf.broker.stats().parkedReceives > before);
  return { answer };
}

/** The answer of `pending`, or 'deadline' if it has not come within `deadlineMs`. */
export async function within<T>(pending: Promise<T>, deadlineMs: number): Promise<T | 'deadline'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), deadlineMs);
  });
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The `error.code` of a JSON error answer. */
export async function errorCode(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { error?: { code?: string } }).error?.code;
}
