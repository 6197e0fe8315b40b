/**
 * Names of the snapshots the migrate function takes before a migration. The stack scopes the
 * function's IAM permission to this prefix, so both read it from here.
 */

export function preMigrationSnapshotPrefix(instanceIdentifier: string): string {
  return `${instanceIdentifier}-pre-migration-`;
}

/** `<instance>-pre-migration-20261122-233501`: sortable, and valid as an RDS identifier. */
export function preMigrationSnapshotIdentifier(instanceIdentifier: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  return `${preMigrationSnapshotPrefix(instanceIdentifier)}${stamp}`;
}
