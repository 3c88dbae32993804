// A process's stop: its cleanup steps run once, last-added first, whoever asks first (a signal,
// a lost lease); a second caller waits for the same run instead of finding nothing left to do
// and exiting under the first one's drain. A failed step does not skip the ones after it (a
// lock still released, Redis still closed); the first failure is thrown at the end.
export type StopStep = () => Promise<void>;

export function stopSteps(cleanup: StopStep[]): () => Promise<void> {
  let stopping: Promise<void> | null = null;
  return () => (stopping ??= runSteps(cleanup));
}

async function runSteps(cleanup: StopStep[]): Promise<void> {
  let failure: { error: unknown } | null = null;
  for (const step of cleanup.splice(0)) {
    try {
      await step();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure !== null) throw failure.error;
}
