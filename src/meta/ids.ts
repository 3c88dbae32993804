// Identifier formats. Ids are random (no ordering leaks) and carry a readable prefix:
//   tenant       ten-<20 lowercase base32>
//   instance     MQ_INST_<20 uppercase base32>   (also the Aliyun MQ HTTP SDK's instance id)
//   access key   WK<18 uppercase base32>         (20 chars, like AWS's AKIA… ids)
//   secret       40 chars of base64url (240 bits)
//   JWT key id   kid-<16 lowercase base32>
import { randomBytes } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += BASE32[bytes[i] & 31];
  return out;
}

export const TENANT_ID = /^ten-[a-z2-7]{20}$/;
export const INSTANCE_ID = /^MQ_INST_[A-Z2-7]{20}$/;
export const ACCESS_KEY_ID = /^WK[A-Z2-7]{18}$/;

export function newTenantId(): string {
  return `ten-${base32(20)}`;
}
export function newInstanceId(): string {
  return `MQ_INST_${base32(20).toUpperCase()}`;
}
export function newAccessKeyId(): string {
  return `WK${base32(18).toUpperCase()}`;
}
export function newAccessKeySecret(): string {
  return randomBytes(30).toString('base64url');
}
export function newKeyId(): string {
  return `kid-${base32(16)}`;
}
