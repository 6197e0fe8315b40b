/**
 * A small evaluator of the resource policies in a synthesized template, enough to answer "may this
 * service principal do this action on this resource, with these request facts?" the way AWS would
 * for the statements our stack writes: an explicit Deny wins, then an Allow, else nothing allows it.
 * Anything it does not understand (an intrinsic, a condition operator) throws, so a policy shape it
 * cannot judge fails the test instead of passing it.
 */

/** What the pseudo parameters and the `Ref`s of a template stand for in an evaluation. */
export interface PolicyEnvironment {
  account: string;
  region: string;
  partition: string;
  /** Logical id → what `Ref` returns for it (an SNS topic's ARN, a function's name…). */
  refs: Record<string, string>;
}

export interface PolicyRequest {
  /** The calling service principal, e.g. cloudwatch.amazonaws.com. */
  service: string;
  action: string;
  resource: string;
  /** Request context keys, e.g. aws:SourceAccount, aws:SourceArn, aws:SecureTransport. */
  context: Record<string, string>;
}

export type PolicyDecision = 'allow' | 'explicit-deny' | 'implicit-deny';

interface Statement {
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  Action?: unknown;
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  NotAction?: unknown;
  NotPrincipal?: unknown;
  NotResource?: unknown;
}

/** Replaces `Ref`, `Fn::Join` and the pseudo parameters with their values in `env`. */
export function resolveIntrinsics(value: unknown, env: PolicyEnvironment): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, env));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const [key, arg] = entries[0] ?? [];
  if (entries.length === 1 && key === 'Ref') {
    const pseudo: Record<string, string> = {
      'AWS::AccountId': env.account,
      'AWS::Region': env.region,
      'AWS::Partition': env.partition,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    const resolved = pseudo[arg as string] ?? env.refs[arg as string];
    if (resolved === undefined) throw new Error(`no value for Ref ${String(arg)}`);
    return resolved;
  }
  if (entries.length === 1 && key === 'Fn::Join') {
    const [separator, parts] = arg as [string, unknown[]];
    return parts.map((p) => String(resolveIntrinsics(p, env))).join(separator);
  }
  if (entries.length === 1 && key?.startsWith('Fn::')) {
    throw new Error(`the policy evaluator does not know ${key}`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolveIntrinsics(v, env)]));
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => {
    if (typeof v !== 'string') throw new Error(`expected a string in a policy, got ${String(v)}`);
    return v;
  });
}

/** IAM's wildcards: `*` any run of characters, `?` one character. */
function globMatches(pattern: string, value: string, ignoreCase = false): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

function principalMatches(principal: unknown, service: string): boolean {
  if (principal === '*') return true;
  if (typeof principal !== 'object' || principal === null) return false;
  const p = principal as Record<string, unknown>;
  if (list(p.AWS).includes('*')) return true;
  return list(p.Service).includes(service);
}

const CONDITION_OPERATORS: Record<string, (pattern: string, value: string) => boolean> = {
  StringEquals: (p, v) => p === v,
  StringLike: (p, v) => globMatches(p, v),
  ArnEquals: (p, v) => p === v,
  ArnLike: (p, v) => globMatches(p, v),
  Bool: (p, v) => p.toLowerCase() === v.toLowerCase(),
};

function conditionsHold(condition: Statement['Condition'], context: Record<string, string>) {
  for (const [operator, keys] of Object.entries(condition ?? {})) {
    const test = CONDITION_OPERATORS[operator];
    if (!test) throw new Error(`the policy evaluator does not know the operator ${operator}`);
    for (const [key, expected] of Object.entries(keys)) {
      const actual = context[key];
      // A key absent from the request fails every operator without IfExists.
      if (actual === undefined) return false;
      if (!list(expected).some((pattern) => test(pattern, actual))) return false;
    }
  }
  return true;
}

function statementApplies(s: Statement, request: PolicyRequest): boolean {
  if (s.NotAction !== undefined || s.NotPrincipal !== undefined || s.NotResource !== undefined) {
    throw new Error('the policy evaluator does not know NotAction, NotPrincipal or NotResource');
  }
  return (
    principalMatches(s.Principal, request.service) &&
    list(s.Action).some((a) => globMatches(a, request.action, true)) &&
    list(s.Resource).some((r) => globMatches(r, request.resource)) &&
    conditionsHold(s.Condition, request.context)
  );
}

/** How AWS would decide `request` on this policy document alone. */
export function evaluatePolicy(
  document: unknown,
  request: PolicyRequest,
  env: PolicyEnvironment,
): PolicyDecision {
  const resolved = resolveIntrinsics(document, env) as { Statement: Statement[] };
  const applying = resolved.Statement.filter((s) => statementApplies(s, request));
  if (applying.some((s) => s.Effect === 'Deny')) return 'explicit-deny';
  if (applying.some((s) => s.Effect === 'Allow')) return 'allow';
  return 'implicit-deny';
}
