// What the gateway adds to fastify's request and route config, and the principal a credential
// resolves to. The tenant always comes from the verified credential, never from the request.
import type {} from '@fastify/swagger';
import type { Permission, Tenant } from '../meta/index.js';

export type Plane = 'public' | 'admin' | 'tenant';

export interface TenantPrincipal {
  tenantId: string;
  tenant: Tenant;
  accessKeyId: string;
  /** What the credential grants: the key's permissions, or a token's (already narrowed). */
  permissions: Permission[];
  /** The key's current permissions; a token is checked against both. */
  keyPermissions: Permission[];
  via: 'sigv4' | 'token';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body exactly as received (SigV4 hashes these bytes); empty when none. */
    rawBody: Buffer | null;
    principal: TenantPrincipal | null;
  }
  interface FastifyContextConfig {
    plane?: Plane;
  }
}
