/**
 * What a Lambda builds once per execution environment (clients, secrets, a sender's row): the
 * first call starts it, later calls share it, and a failure is forgotten so the next call retries
 * instead of every invocation failing until the environment is recycled.
 */
export function memoizeUntilFailure<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
}
