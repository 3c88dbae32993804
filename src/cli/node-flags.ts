// The V8 flags every Wharf process is launched with: by `npm start` and the other package.json
// start scripts, the image (infra/Dockerfile sets NODE_OPTIONS), `npm run cluster` and the
// benchmarks. A test keeps package.json and the Dockerfile in agreement with this list.
//
// --max-semi-space-size=64 (MiB; Node 20's default is 16): the message path allocates a buffer
// or two and a few small objects per message, so the young generation fills every few
// milliseconds at load and each scavenge copies what is still in flight. Four times the room
// means far fewer scavenges and fewer survivors promoted to the old generation. Measured on the
// development machine (all-in-one node, warm, 1 KiB, signed HTTP, 3 interleaved pairs): about 8%
// less server CPU per published message and 1–14% less per consumed one, for at most ~100 MiB more
// resident memory (README, "Configuration").
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
