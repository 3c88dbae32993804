// Entry of a load process: `node driver-child.js '<DriverJob JSON>'`. Measures the driver and
// reports the DriverMeasurement to the parent (see child-runner.ts), then exits even if a client
// library left a handle open.
import { reportToParent } from './child-runner.js';
import { parseDriverJob, runDriverJob } from './driver-job.js';

await reportToParent(() => runDriverJob(parseDriverJob(JSON.parse(process.argv[2] ?? 'null'))));
setTimeout(() => process.exit(), 2_000).unref();
