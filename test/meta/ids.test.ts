import t from 'tap';
import { newAccessKeyId, newInstanceId, newTenantId } from '../../src/meta/ids.js';
import { ACCESS_KEY_ID, INSTANCE_ID, TENANT_ID } from '../../src/meta/index.js';

t.test('ids match their formats', async (t) => {
  t.match(newTenantId(), TENANT_ID);
  t.match(newInstanceId(), INSTANCE_ID);
  t.match(newAccessKeyId(), ACCESS_KEY_ID);
  t.not(newTenantId(), newTenantId());
});
