/**
 * The callback dispatcher in the template: its function (own database user, the bus it may put
 * events on), its queue and DLQ, the one-minute drain tick, and the bus named after the stage.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  CALLBACK_DRAIN_SECONDS,
  CALLBACK_MAX_RECEIVE_COUNT,
  DISPATCHER_TIMEOUT_SECONDS,
} from '../../lib/callbacks.ts';
import { STAGES } from '../../lib/config.ts';
import { builtStage, logicalId } from './stages.ts';

describe.each(STAGES)('callbacks in the %s stack', (stage) => {
  const { stack, template } = builtStage(stage);
  const callbacks = stack.callbacks;
  const fnId = logicalId(stack, callbacks.dispatcher);
  const queueId = logicalId(stack, callbacks.queue);
  const dlqId = logicalId(stack, callbacks.deadLetterQueue);
  const busId = logicalId(stack, callbacks.bus);

  it('has an EventBridge bus named after the stage', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: `whatsapp-notif-${stage}` });
  });

  it('runs the dispatcher as its own database user, with the bus and drain budget in its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: `whatsapp-notif-${stage}-dispatcher`,
      Timeout: DISPATCHER_TIMEOUT_SECONDS,
      Architectures: ['arm64'],
      Environment: {
        Variables: Match.objectLike({
          DB_USER: 'notif_dispatcher',
          DB_IAM_AUTH: 'true',
          EVENT_BUS_NAME: { Ref: busId },
          CALLBACK_DRAIN_SECONDS: String(CALLBACK_DRAIN_SECONDS),
        }),
      },
      VpcConfig: Match.anyValue(),
    });
    // A drain must finish well inside the timeout: its budget plus one post and a margin.
    expect(CALLBACK_DRAIN_SECONDS + 10 + 5).toBeLessThan(DISPATCHER_TIMEOUT_SECONDS);
  });

  it('feeds it from its own encrypted queue, whose failed drains go to a DLQ', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: `whatsapp-notif-${stage}-callbacks`,
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * DISPATCHER_TIMEOUT_SECONDS,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
        maxReceiveCount: CALLBACK_MAX_RECEIVE_COUNT,
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fnId },
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it('drops a drain message on the queue every minute', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] }, Input: '{"kind":"drain"}' }),
      ],
    });
  });

  it('lets the dispatcher put events on the bus and connect as notif_dispatcher only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(logicalId(stack, callbacks.dispatcher.role!)),
    );
    const statements = JSON.stringify(policies.map((p) => p.Properties.PolicyDocument));
    expect(statements).toContain('events:PutEvents');
    expect(statements).toContain('rds-db:connect');
    expect(statements).toContain('notif_dispatcher');
    expect(statements).not.toContain('notif_api');
    expect(statements).not.toContain('notif_admin');
  });

  it('deploys the dispatcher only after the migration', () => {
    const fn = template.toJSON().Resources[fnId];
    expect(fn.DependsOn).toEqual(
      expect.arrayContaining([logicalId(stack, stack.functions.migration)]),
    );
  });
});
