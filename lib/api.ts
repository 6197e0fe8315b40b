/**
 * The REST API in front of the api and webhook functions: the routes of DESIGN §3 and Meta's
 * webhook, JSON access logs, stage throttling, and gateway errors in the service's error shape.
 *
 * Request size: API Gateway's own hard limit is 10 MB and a REST API cannot lower it; the 64 KB
 * limit on notification bodies is enforced in the api function (MAX_BODY_BYTES) before parsing.
 * Authentication (X-API-Key, webhook signature) is also done in the functions, which write every
 * denial to the audit log; a gateway rejection would skip that log.
 */
import { type RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  type Resource,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { CfnPermission, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ApiLoggingRole } from './api-logging-role.ts';
import type { Stage, StageConfig } from './config.ts';
import { LOG_RETENTION, logGroupName } from './notif-function.ts';

/** Every route of the API function: path → methods (test/infra/stack.test.ts checks it against lambdas/api/routes). */
export const API_ROUTES: Record<string, readonly string[]> = {
  '/health': ['GET'],
  '/v1/health': ['GET'],
  '/v1/notifications': ['POST'],
  '/v1/notifications/batch': ['POST'],
  '/v1/notifications/{id}': ['GET'],
  '/v1/notifications/{id}/cancel': ['POST'],
  '/v1/openapi.json': ['GET'],
  '/v1/admin/status': ['GET'],
  '/v1/admin/panic': ['GET', 'POST'],
  '/v1/admin/rollout': ['GET', 'PUT'],
  '/v1/admin/keys': ['GET', 'POST'],
  '/v1/admin/keys/{prefix}/rotate': ['POST'],
  '/v1/admin/keys/{prefix}/revoke': ['POST'],
  '/v1/admin/whatsapp/templates': ['GET'],
  '/v1/admin/whatsapp/token': ['GET'],
  '/v1/admin/whatsapp/events': ['GET'],
  '/v1/admin/whatsapp/rejects': ['GET'],
  '/v1/admin/notifications/{id}': ['GET'],
  '/v1/admin/audit': ['GET'],
  '/v1/admin/recipients/opt-outs': ['GET'],
  '/v1/admin/clients/{clientId}/fallback': ['PUT'],
  '/v1/admin/clients/{clientId}/limits': ['PUT'],
  // Issue 17: outcome windows and finding a recipient's notifications.
  '/v1/admin/status/outcomes': ['GET'],
  '/v1/admin/recipients/notifications': ['GET'],
  '/v1/admin/recipients/erase': ['POST'],
  // Client callbacks (issue 15).
  '/v1/callbacks': ['GET', 'POST'],
  '/v1/admin/callbacks': ['GET'],
  '/v1/admin/clients/{clientId}/callbacks': ['GET', 'POST'],
  '/v1/admin/clients/{clientId}/callbacks/{callbackId}': ['DELETE'],
  '/v1/admin/clients/{clientId}/callbacks/{callbackId}/rotate-secret': ['POST'],
  '/v1/admin/clients/{clientId}/callbacks/{callbackId}/enable': ['POST'],
  '/v1/admin/notifications/{id}/callbacks': ['GET'],
  '/v1/admin/callbacks/deliveries/{deliveryId}/redeliver': ['POST'],
  '/v1/admin/templates': ['GET'],
  '/v1/admin/templates/check': ['POST'],
};
export const WEBHOOK_ROUTES: Record<string, readonly string[]> = {
  '/webhook/whatsapp': ['GET', 'POST'],
};

/**
 * One JSON line per request. Status and latency are numbers (not strings), so Logs Insights can
 * compare and take percentiles of them; fields that can be "-" stay quoted.
 */
const ACCESS_LOG_FIELDS: Record<string, string> = {
  requestId: `"${AccessLogField.contextRequestId()}"`,
  extendedRequestId: `"${AccessLogField.contextExtendedRequestId()}"`,
  requestTime: `"${AccessLogField.contextRequestTime()}"`,
  ip: `"${AccessLogField.contextIdentitySourceIp()}"`,
  method: `"${AccessLogField.contextHttpMethod()}"`,
  resource: `"${AccessLogField.contextResourcePath()}"`,
  path: `"${AccessLogField.contextPath()}"`,
  status: AccessLogField.contextStatus(),
  latencyMs: AccessLogField.contextResponseLatency(),
  responseLength: `"${AccessLogField.contextResponseLength()}"`,
  integrationLatencyMs: `"${AccessLogField.contextIntegrationLatency()}"`,
  integrationStatus: `"${AccessLogField.contextIntegrationStatus()}"`,
  errorType: `"${AccessLogField.contextErrorResponseType()}"`,
  // Already a quoted, escaped JSON string.
  errorMessage: AccessLogField.contextErrorMessageString(),
};
export const ACCESS_LOG_FORMAT = `{${Object.entries(ACCESS_LOG_FIELDS)
  .map(([name, value]) => `"${name}":${value}`)
  .join(',')}}`;

export interface ApiProps {
  prefix: string;
  /** Makes sure the account can take the stage's access logs; the stage waits for it. */
  loggingRole: ApiLoggingRole;
  stage: Stage;
  config: StageConfig;
  apiFunction: IFunction;
  webhookFunction: IFunction;
  logRemovalPolicy: RemovalPolicy;
}

export class Api extends Construct {
  readonly restApi: RestApi;
  readonly accessLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.accessLogGroup = new LogGroup(this, 'AccessLogGroup', {
      logGroupName: logGroupName('api-access'),
      retention: LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy,
    });

    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: props.prefix,
      description: 'whatsapp-notif: notifications API and Meta webhook',
      endpointTypes: [EndpointType.REGIONAL],
      // The stage is named after ours, so the URL reads .../prod/v1/notifications.
      deployOptions: {
        stageName: props.stage,
        throttlingRateLimit: props.config.apiThrottle.rateLimit,
        throttlingBurstLimit: props.config.apiThrottle.burstLimit,
        // Errors only (integration failures, throttling, bad Lambda answers), never request or
        // response bodies: those hold phone numbers. The access log below has every request.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: false,
        // X-Ray segments for the gateway's part of a slow request (sampled, a few cents a month).
        tracingEnabled: true,
        accessLogDestination: new LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
      // The account's logging role is one setting for every API of the account and Region, so
      // CDK's own role (which takes the setting over on every deploy) stays off; ApiLoggingRole
      // keeps a working one and sets ours only where there is none.
      cloudWatchRole: false,
    });
    // API Gateway creates the execution log group on first use, without a retention; this one
    // exists first and is kept 30 days like the others.
    const executionLogGroup = new LogGroup(this, 'ExecutionLogGroup', {
      logGroupName: `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${props.stage}`,
      retention: LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy,
    });
    // Logging is refused until the account has the role: the stage waits for the check.
    this.restApi.deploymentStage.node.addDependency(props.loggingRole.resource, executionLogGroup);

    const apiIntegration = new LambdaIntegration(props.apiFunction, { allowTestInvoke: false });
    const webhookIntegration = new LambdaIntegration(props.webhookFunction, {
      allowTestInvoke: false,
    });
    for (const [path, methods] of Object.entries(API_ROUTES)) {
      const resource = this.resourceAt(path);
      for (const method of methods) resource.addMethod(method, apiIntegration);
    }
    for (const [path, methods] of Object.entries(WEBHOOK_ROUTES)) {
      const resource = this.resourceAt(path);
      for (const method of methods) resource.addMethod(method, webhookIntegration);
    }

    this.addGatewayResponses();
    this.scopePermissionsToAccount();
  }

  /**
   * Each route's Lambda permission names API Gateway and this API's execute-api ARN; the account
   * is added as well, so the permission holds only for calls from this account even if the ARN
   * pattern were ever widened (Control Tower's CT.LAMBDA.PR.2 asks for it).
   */
  private scopePermissionsToAccount(): void {
    const account = Stack.of(this).account;
    for (const child of this.restApi.node.findAll()) {
      if (child instanceof CfnPermission) child.sourceAccount = account;
    }
  }

  private resourceAt(path: string): Resource {
    return this.restApi.root.resourceForPath(path) as Resource;
  }

  /**
   * Answers API Gateway gives without calling a function (unknown route, throttling, oversized
   * body, integration failure), in the same `{error: {code, message, requestId}}` shape.
   */
  private addGatewayResponses(): void {
    const body = (code: string, message: string) => ({
      'application/json': `{"error":{"code":"${code}","message":${message},"requestId":"$context.requestId"}}`,
    });
    const headers = { 'x-request-id': "'$context.requestId'" };
    const gatewayMessage = '$context.error.messageString';
    // API Gateway answers an unknown route (or method) with 403 "Missing Authentication Token".
    this.restApi.addGatewayResponse('NotFound', {
      type: ResponseType.MISSING_AUTHENTICATION_TOKEN,
      statusCode: '404',
      templates: body('not_found', '"no such route"'),
      responseHeaders: headers,
    });
    this.restApi.addGatewayResponse('Throttled', {
      type: ResponseType.THROTTLED,
      statusCode: '429',
      templates: body('throttled', gatewayMessage),
      responseHeaders: headers,
    });
    this.restApi.addGatewayResponse('TooLarge', {
      type: ResponseType.REQUEST_TOO_LARGE,
      statusCode: '413',
      templates: body('body_too_large', gatewayMessage),
      responseHeaders: headers,
    });
    this.restApi.addGatewayResponse('Default4xx', {
      type: ResponseType.DEFAULT_4XX,
      templates: body('bad_request', gatewayMessage),
      responseHeaders: headers,
    });
    this.restApi.addGatewayResponse('Default5xx', {
      type: ResponseType.DEFAULT_5XX,
      templates: body('gateway_error', gatewayMessage),
      responseHeaders: headers,
    });
  }

  get url(): string {
    return this.restApi.url;
  }
}
