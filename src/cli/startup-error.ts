/** A start that cannot go on, for a reason the operator must fix: printed as one line, exit 1. */
export class StartupError extends Error {}
