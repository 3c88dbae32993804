#!/usr/bin/env node
// `wharf <role>`: the one command (package.json bin). `wharf all-in-one` is what `npm start`
// runs; `wharf gateway` and `wharf broker` are the processes of a cluster (README, "Cluster").
import { ROLES, isRole, runRole } from './roles.js';

const role = process.argv[2];
if (!isRole(role)) {
  process.stderr.write(
    `usage: wharf <${ROLES.join('|')}>\n` +
      '  all-in-one  gateway and one broker in one process (npm start)\n' +
      '  gateway     a stateless gateway of a cluster (WHARF_REDIS_URL, WHARF_MASTER_KEY)\n' +
      '  broker      a broker of a cluster (also WHARF_BROKER_ID, WHARF_BROKER_PORT)\n' +
      'configured by WHARF_* environment variables (see README)\n',
  );
  process.exit(2);
}
await runRole(role);
