// `npm run start:gateway`: a cluster gateway (the same as `wharf gateway`). It needs the shared
// Redis (WHARF_REDIS_URL) and the cluster's master key (WHARF_MASTER_KEY), and routes to the
// brokers registered there.
import { runRole } from './roles.js';

await runRole('gateway');
