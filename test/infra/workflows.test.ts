/**
 * The deploy workflow's promises, read from the YAML GitHub runs: only a commit CI passed is
 * deployed, and a prod deploy waiting for approval never holds back dev.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';

interface Job {
  needs?: string | string[];
  if?: string;
  environment?: string;
  concurrency?: { group: string; 'cancel-in-progress': boolean };
  steps: { uses?: string; with?: Record<string, unknown>; run?: string }[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  concurrency?: unknown;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

const read = (name: string) =>
  parse(readFileSync(join(PROJECT_ROOT, '.github/workflows', name), 'utf8')) as Workflow;
const deploy = read('deploy.yml');
const ci = read('ci.yml');
/** A GitHub expression, not a template literal. */
const DEPLOY_SHA_EXPRESSION = ['$', '{{ env.DEPLOY_SHA }}'].join('');
const needs = (job: Job) => [job.needs ?? []].flat();

describe('the deploy workflow', () => {
  it('starts only when the ci workflow completed on main, or by hand', () => {
    expect(Object.keys(deploy.on).sort()).toEqual(['workflow_dispatch', 'workflow_run']);
    expect(deploy.on.workflow_run).toEqual({
      workflows: ['ci'],
      types: ['completed'],
      branches: ['main'],
    });
    expect(Object.keys(ci.jobs)).toContain('ci');
  });

  it('deploys nothing before a gate that requires CI to have succeeded for that commit', () => {
    const gate = deploy.jobs['ci-passed']!;
    expect(gate.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(gate.steps.map((s) => s.run ?? '').join('\n')).toMatch(/--commit "\$DEPLOY_SHA"/);
    for (const name of Object.keys(deploy.jobs)) {
      if (name === 'ci-passed') continue;
      const upstream = (n: string): string[] =>
        needs(deploy.jobs[n]!).flatMap((m) => [m, ...upstream(m)]);
      expect(upstream(name), name).toContain('ci-passed');
    }
  });

  it('checks out and names the commit CI tested in every job', () => {
    expect(deploy.env?.DEPLOY_SHA).toContain('github.event.workflow_run.head_sha');
    for (const [name, job] of Object.entries(deploy.jobs)) {
      for (const step of job.steps.filter((s) => s.uses?.startsWith('actions/checkout@'))) {
        expect(step.with?.ref, name).toBe(DEPLOY_SHA_EXPRESSION);
      }
    }
  });

  it('gives each stage its own concurrency group, so a waiting prod approval never blocks dev', () => {
    expect(deploy.concurrency).toBeUndefined();
    const groups = Object.entries(deploy.jobs)
      .filter(([, job]) => job.environment)
      .map(([name, job]) => {
        expect(job.concurrency, name).toBeDefined();
        expect(job.concurrency!['cancel-in-progress'], name).toBe(false);
        return job.concurrency!.group;
      });
    expect(new Set(groups).size).toBe(groups.length);
    expect(deploy.jobs.dev!.concurrency!.group).not.toBe(deploy.jobs.prod!.concurrency!.group);
  });

  it.each([
    ['deploy.yml', deploy],
    ['ci.yml', ci],
  ])('%s pins every action by commit and grants nothing by default', (_name, workflow) => {
    expect(workflow.permissions).toEqual({});
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps) {
        if (step.uses) expect(step.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
      }
    }
  });
});
