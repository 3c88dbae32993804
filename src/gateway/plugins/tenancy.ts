// Authentication by plane, then resolution of what a tenant-plane request names. Credentials are
// checked from the headers in an onRequest hook, before the body is read (bearer tokens, MQ HTTP
// signatures and the operator plane wholly; SigV4 up to the signature, or wholly when the payload hash is declared);
// the preValidation hook finishes SigV4 with the received body's hash, before the body is
// decoded and validated (so that unauthenticated callers only ever see 401/403). The helpers
// resolve instance, topic and group through the meta cache and answer the same 404 for a
// resource of another tenant as for a missing one, since every lookup is keyed by the tenant
// of the verified credential.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WharfError } from '../../errors.js';
import {
  INSTANCE_ID,
  allows,
  type Action,
  type GroupRecord,
  type Instance,
  type MetaStore,
  type TopicRecord,
} from '../../meta/index.js';
import type { TenantPrincipal } from '../types.js';
import { decodeJsonBody, takeRawBody } from './body.js';
import { bearerToken, type AdminAuthenticator, type TokenService } from './jwt.js';
import { checkSigV4Headers, completeSigV4 } from './sigv4.js';
import { authenticateMqHttp } from '../mqhttp/authenticate.js';

export interface AuthDeps {
  meta: MetaStore;
  tokens: TokenService;
  admin: AdminAuthenticator;
  region: string;
}

export function registerAuthentication(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('rawBody', null);
  app.decorateRequest('principal', null);
  app.decorateRequest('sigv4', null);
  app.decorateRequest('usageOf', null);
  app.decorateRequest('instanceResolved', false);
  // From the headers, before the body is read: a caller without a valid credential never gets
  // its body buffered (SigV4 still needs the body's hash, which preValidation checks).
  app.addHook('onRequest', async (request) => {
    const plane = request.routeOptions.config.plane ?? 'public';
    if (plane === 'admin') {
      await deps.admin.authenticate(request.headers.authorization);
    } else if (plane === 'tenant') {
      await authenticateTenantHeaders(request, deps);
    } else if (plane === 'mqhttp') {
      // wholly from the headers: the MQ signature covers the body only through content-md5
      request.principal = activeOnly(await authenticateMqHttp(request, deps.meta));
    }
  });
  app.addHook('preValidation', async (request) => {
    const raw = takeRawBody(request);
    if (request.sigv4 !== null) {
      request.principal = activeOnly(
        await completeSigV4(request, request.sigv4, raw, deps.meta, deps.region),
      );
      request.sigv4 = null;
    }
    decodeJsonBody(request, raw);
  });
}

async function authenticateTenantHeaders(request: FastifyRequest, deps: AuthDeps): Promise<void> {
  const authorization = request.headers.authorization;
  if (authorization === undefined || authorization === '') {
    throw new WharfError('MissingAuthentication', 'sign the request with SigV4 or a Bearer token');
  }
  const token = bearerToken(authorization);
  if (token !== null) {
    request.principal = activeOnly(await deps.tokens.verify(token));
  } else {
    request.sigv4 = await checkSigV4Headers(request, authorization, deps.meta, deps.region);
  }
}

function activeOnly(principal: TenantPrincipal): TenantPrincipal {
  if (principal.tenant.status !== 'active') {
    throw new WharfError('AccessDenied', 'the tenant is suspended');
  }
  return principal;
}

/**
 * Why a principal verified earlier no longer holds — its bearer token expired, its access key
 * revoked (a token's too), its tenant suspended or deleted — or null while it holds. For
 * requests that outlive their authentication (parked long polls, streams). Read through the
 * meta cache, which revocation and suspension invalidate on every gateway at once (pub/sub),
 * else within its TTL.
 */
export async function revalidatePrincipal(
  meta: MetaStore,
  principal: TenantPrincipal,
  now = Date.now(),
): Promise<WharfError | null> {
  if (principal.expiresAtMs !== undefined && now >= principal.expiresAtMs) {
    return new WharfError('InvalidToken', 'the bearer token expired');
  }
  const key = await meta.credential(principal.accessKeyId);
  if (key === null || key.tenantId !== principal.tenantId) {
    return principal.via === 'token'
      ? new WharfError('InvalidToken', 'the access key of this token was revoked')
      : new WharfError('InvalidAccessKeyId', 'the access key was revoked');
  }
  const tenant = await meta.tenant(principal.tenantId);
  if (tenant === null || tenant.status !== 'active') {
    return new WharfError('AccessDenied', 'the tenant is suspended');
  }
  return null;
}

export function principalOf(request: FastifyRequest): TenantPrincipal {
  if (request.principal === null) throw new WharfError('Internal', 'route without a principal');
  return request.principal;
}

/** Throws AccessDenied unless the credential (and, for a token, its key) grants `action`. */
export function authorize(principal: TenantPrincipal, instanceId: string, action: Action): void {
  if (
    !allows(principal.permissions, instanceId, action) ||
    (principal.via === 'token' && !allows(principal.keyPermissions, instanceId, action))
  ) {
    throw new WharfError('AccessDenied', `the credential lacks ${action} on ${instanceId}`);
  }
}

/** Whether the credential grants anything on the instance (reads of its metadata). */
export function canSee(principal: TenantPrincipal, instanceId: string): boolean {
  const any = (perms: typeof principal.permissions) =>
    perms.some((p) => (p.instance === '*' || p.instance === instanceId) && p.actions.length > 0);
  return any(principal.permissions) && (principal.via !== 'token' || any(principal.keyPermissions));
}

/**
 * The instance, after checking `action` on it (`read`: any permission at all). A malformed id
 * is answered like a missing instance.
 */
export async function resolveInstance(
  meta: MetaStore,
  principal: TenantPrincipal,
  instanceId: string,
  action: Action | 'read',
): Promise<Instance> {
  if (action === 'read') {
    if (!canSee(principal, instanceId)) {
      throw new WharfError('AccessDenied', `the credential has no permission on ${instanceId}`);
    }
  } else authorize(principal, instanceId, action);
  const instance = INSTANCE_ID.test(instanceId)
    ? await meta.instance(principal.tenantId, instanceId)
    : null;
  if (instance === null) throw new WharfError('InstanceNotFound', `no instance ${instanceId}`);
  return instance;
}

export async function resolveTopic(
  meta: MetaStore,
  principal: TenantPrincipal,
  instanceId: string,
  topic: string,
  action: Action | 'read',
): Promise<TopicRecord> {
  await resolveInstance(meta, principal, instanceId, action);
  const record = await meta.topic(principal.tenantId, instanceId, topic);
  if (record === null) throw new WharfError('TopicNotFound', `no topic ${topic}`);
  return record;
}

export async function resolveGroup(
  meta: MetaStore,
  principal: TenantPrincipal,
  instanceId: string,
  group: string,
  action: Action | 'read',
): Promise<GroupRecord> {
  await resolveInstance(meta, principal, instanceId, action);
  const record = await meta.group(principal.tenantId, instanceId, group);
  if (record === null) throw new WharfError('GroupNotFound', `no group ${group}`);
  return record;
}
