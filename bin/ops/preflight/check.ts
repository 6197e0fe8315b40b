/** What one preflight check reports, and how an AWS error becomes a FAIL that names the missing permission. */

export type CheckStatus = 'ok' | 'warn' | 'FAIL';

export interface CheckResult {
  /** Stable id for --json: `cdk-bootstrap`, `lambda-concurrency`, `whatsapp-token`… */
  id: string;
  /** What a person reads in the first column. */
  title: string;
  status: CheckStatus;
  /** One line: what was found. */
  summary: string;
  /** What to do, on warn and FAIL. */
  fix?: string;
}

export function ok(id: string, title: string, summary: string): CheckResult {
  return { id, title, status: 'ok', summary };
}

export function warn(id: string, title: string, summary: string, fix: string): CheckResult {
  return { id, title, status: 'warn', summary, fix };
}

export function fail(id: string, title: string, summary: string, fix: string): CheckResult {
  return { id, title, status: 'FAIL', summary, fix };
}

const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthorizationError',
  'AuthorizationErrorException',
]);

export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}

/** True when AWS refused the call for lack of a permission (not for a missing resource). */
export function isAccessDenied(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return DENIED.has(error.name) || (status === 403 && !/NotFound/.test(error.name));
}

/**
 * A call that failed: a FAIL naming the IAM action when it was refused, otherwise a FAIL with the
 * error's name and message, so a check never silently passes when it could not look.
 */
export function awsFailure(id: string, title: string, action: string, error: unknown): CheckResult {
  const message = error instanceof Error ? error.message : String(error);
  if (isAccessDenied(error)) {
    return fail(
      id,
      title,
      `cannot check: missing permission ${action} (${errorName(error)})`,
      `allow ${action} for the credentials running preflight, or run it with a role that has it`,
    );
  }
  return fail(
    id,
    title,
    `cannot check: ${action} failed: ${errorName(error)}: ${message.slice(0, 200)}`,
    'check the region and credentials, then run preflight again',
  );
}
