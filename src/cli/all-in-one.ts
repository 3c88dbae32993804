// `npm start`: the all-in-one node — gateway and one broker in one process, joined by the
// in-process transport (the same as `wharf all-in-one`). Prints where it listens, the operator
// token and a first command.
import { runRole } from './roles.js';

await runRole('all-in-one');
