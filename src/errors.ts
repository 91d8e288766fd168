/**
 * An error caused by the user's input (a path, a file, an option). The CLI prints its message as one line and
 * exits with code 2; anything else is a bug and keeps its stack trace.
 */
export class WinaError extends Error {
  override name = 'WinaError';
}

export function fail(message: string): never {
  throw new WinaError(message);
}
