/** Types for check-node.mjs, which stays plain JavaScript so it runs on the old Node it catches. */
export declare function nodeVersionProblem(
  found: string,
  required: string,
  nvmrc?: string,
): string | undefined;
