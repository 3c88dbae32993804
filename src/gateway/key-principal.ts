// The principal an access key resolves to once a request signed with it is verified, whichever
// scheme signed it (SigV4 or MQ HTTP: one key pair signs both): the key's tenant, read now so a
// deleted tenant is refused, and the key's permissions.
import { WharfError } from '../errors.js';
import type { MetaStore, ResolvedAccessKey } from '../meta/index.js';
import type { TenantPrincipal } from './types.js';

export async function keyPrincipal(
  meta: MetaStore,
  key: ResolvedAccessKey,
  via: 'sigv4' | 'mqhttp',
): Promise<TenantPrincipal> {
  const tenant = await meta.tenant(key.tenantId);
  if (tenant === null) {
    throw new WharfError('InvalidAccessKeyId', 'the access key is unknown or revoked');
  }
  return {
    tenantId: key.tenantId,
    tenant,
    accessKeyId: key.accessKeyId,
    permissions: key.permissions,
    keyPermissions: key.permissions,
    via,
  };
}
