/**
 * Builds each stage's stack once per test file, with bundling off so no esbuild runs and the
 * function entries need not exist yet.
 */
import { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { buildApp } from '../../lib/app.ts';
import type { Stage } from '../../lib/config.ts';
import type { WhatsAppNotifStack } from '../../lib/stack.ts';

export interface BuiltStage {
  stack: WhatsAppNotifStack;
  template: Template;
}

const built = new Map<Stage, BuiltStage>();

export function builtStage(stage: Stage, context: Record<string, unknown> = {}): BuiltStage {
  const cached = Object.keys(context).length === 0 ? built.get(stage) : undefined;
  if (cached) return cached;
  const { stack } = buildApp({
    context: { stage, 'aws:cdk:bundling-stacks': [], ...context },
    nag: false,
  });
  const result = { stack, template: Template.fromStack(stack) };
  if (Object.keys(context).length === 0) built.set(stage, result);
  return result;
}

/** The logical id CloudFormation knows a construct's resource by (an L2 or the L1 itself). */
export function logicalId(stack: WhatsAppNotifStack, construct: IConstruct): string {
  const element = CfnElement.isCfnElement(construct) ? construct : construct.node.defaultChild;
  if (!element || !CfnElement.isCfnElement(element)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  }
  return stack.getLogicalId(element);
}
