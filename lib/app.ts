/**
 * Builds the CDK app for one stage: the bin/app.ts entry and the infrastructure tests share it, so
 * the tests check the app that deploys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readDeployContext } from './config.ts';
import { guardRulesDisabledAtSynth } from './nag.ts';
import { PROJECT_ROOT } from './notif-function.ts';
import { WhatsAppNotifStack } from './stack.ts';

export interface BuildAppOptions {
  /** Context as `-c key=value` would give it (the tests pass the stage and bundling here). */
  context?: Record<string, unknown>;
  /**
   * Run the policy checks at synth (cdk-nag's AWS Solutions checks and Control Tower's guard
   * rules); the tests run them themselves, per resource.
   */
  nag?: boolean;
  outdir?: string;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

export function buildApp(options: BuildAppOptions = {}): { app: App; stack: WhatsAppNotifStack } {
  const app = new App({
    ...(options.context ? { context: options.context } : {}),
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const deploy = readDeployContext(app.node, packageVersion());
  // No account or region: the stack synthesises offline and deploys wherever the credentials
  // point, one stage per account.
  const stack = new WhatsAppNotifStack(app, `whatsapp-notif-${deploy.stage}`, {
    deploy,
    description: `whatsapp-notif ${deploy.stage}: WhatsApp notification delivery`,
  });
  if (options.nag ?? true) {
    Validations.of(app).addPlugins(
      new AwsSolutionsChecks(app),
      new CfnGuardValidator({ disabledRules: guardRulesDisabledAtSynth(deploy.stage) }),
    );
  }
  return { app, stack };
}
