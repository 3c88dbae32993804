// The official Aliyun MQ HTTP SDK (@aliyunmq/mq-http-sdk, unmodified) pointed at a test node,
// plus the resources its calls name, made through /v1 as a user would.
import type { Test } from 'tap';
import mqsdk, { type MQClient, type MQError } from '@aliyunmq/mq-http-sdk';
import { signedFetch, type ProvisionedTenant, type TestWharf } from './wharf.js';

export const { MessageProperties } = mqsdk;

export function mqClient(wharf: Pick<TestWharf, 'url'>, tenant: ProvisionedTenant): MQClient {
  return new mqsdk.MQClient(wharf.url, tenant.accessKeyId, tenant.accessKeySecret);
}

/** PUT a topic or group of the tenant's instance through /v1 (201 expected). */
export async function putResource(
  t: Test,
  wharf: Pick<TestWharf, 'url'>,
  tenant: ProvisionedTenant,
  path: string,
  body: unknown,
): Promise<void> {
  const res = await signedFetch(wharf.url, {
    method: 'PUT',
    path: `/v1/instances/${tenant.instanceId}${path}`,
    body,
    ak: tenant.accessKeyId,
    sk: tenant.accessKeySecret,
  });
  t.equal(res.status, 201, `PUT ${path}`);
}

/** The SDK's error of a call that must fail (its `Code`), or a test failure. */
export async function mqErrorOf(call: Promise<unknown>): Promise<MQError> {
  try {
    await call;
  } catch (err) {
    return err as MQError;
  }
  throw new Error('the call succeeded');
}
