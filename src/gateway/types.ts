// What the gateway adds to fastify's request and route config, and the principal a credential
// resolves to. The tenant always comes from the verified credential, never from the request.
import type {} from '@fastify/swagger';
import type { Permission, ResolvedAccessKey, Tenant } from '../meta/index.js';
import type { ParsedAuthorization } from './sigv4.js';
import type { UsageCounter } from '../meta/index.js';

/** `mqhttp`: the tenant plane's Aliyun MQ HTTP routes (their own signature scheme, XML). */
export type Plane = 'public' | 'admin' | 'tenant' | 'mqhttp';

export interface TenantPrincipal {
  tenantId: string;
  tenant: Tenant;
  accessKeyId: string;
  /** What the credential grants: the key's permissions, or a token's (already narrowed). */
  permissions: Permission[];
  /** The key's current permissions; a token is checked against both. */
  keyPermissions: Permission[];
  via: 'sigv4' | 'token' | 'mqhttp';
  /** A bearer token's expiry (epoch ms): a request that outlives it (a parked receive, a
   *  stream) stops as one whose key was revoked does. */
  expiresAtMs?: number;
}

/**
 * A SigV4 request checked from its headers (shape, date, scope, key) before its body is read;
 * the signature too when the client declared the payload hash (x-amz-content-sha256).
 */
export interface SigV4Pending {
  auth: ParsedAuthorization;
  amzDate: string;
  key: ResolvedAccessKey;
  /** x-amz-content-sha256 as sent, if any: the received body must hash to it. */
  declaredHash: string | undefined;
  /** Whether the signature was verified against `declaredHash` already. */
  signatureVerified: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body exactly as received (SigV4 hashes these bytes); empty when none. */
    rawBody: Buffer | null;
    principal: TenantPrincipal | null;
    /** Set by the header stage of SigV4, finished once the body is in. */
    sigv4: SigV4Pending | null;
    /** Bytes of the body budget this request holds (returned when its answer is done). */
    bodyBytesReserved: number;
    /** The instance and API class a request's usage counts under, set by routes whose path does
     *  not name the instance (the MQ HTTP ones: `?ns=`); null: the path's, by route. */
    usageOf: { instanceId: string; apiClass: UsageCounter } | null;
    /** Set by a long poll or stream once its handler resolved the instance as the tenant's: a
     *  call the client then leaves (499) counts in the usage however long it waited. */
    instanceResolved: boolean;
  }
  interface FastifyContextConfig {
    plane?: Plane;
  }
}
