/**
 * The three WhatsApp secrets. Their values come from Meta and are set out of band with
 * `aws secretsmanager put-secret-value` (docs/deploy-and-operate.md); the stack only creates the
 * containers, so no token ever passes through a template or a CI log.
 */
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export class WhatsAppSecrets extends Construct {
  /** System-user access token for the Graph API (the worker's and scheduler's sends and probes). */
  readonly accessToken: Secret;
  /** App secret that signs Meta's webhooks (X-Hub-Signature-256). */
  readonly appSecret: Secret;
  /** The token Meta echoes when it verifies the webhook URL; ours to choose. */
  readonly verifyToken: Secret;

  constructor(scope: Construct, id: string, props: { prefix: string }) {
    super(scope, id);
    // A random placeholder until the real value is put: a send fails with an auth error (and
    // alarms) instead of running with an empty token.
    this.accessToken = new Secret(this, 'AccessToken', {
      secretName: `${props.prefix}/whatsapp/access-token`,
      description: 'WhatsApp Cloud API access token (system user). Set with put-secret-value.',
    });
    this.appSecret = new Secret(this, 'AppSecret', {
      secretName: `${props.prefix}/whatsapp/app-secret`,
      description: 'Meta app secret that signs webhook payloads. Set with put-secret-value.',
    });
    // Generated and usable as is: paste it into the webhook settings of the Meta app.
    this.verifyToken = new Secret(this, 'VerifyToken', {
      secretName: `${props.prefix}/whatsapp/verify-token`,
      description: 'Webhook verify token; paste its value into the Meta app webhook settings.',
      generateSecretString: { passwordLength: 40, excludePunctuation: true },
    });
  }
}
