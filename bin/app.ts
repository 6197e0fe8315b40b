/** CDK entry point: `npx cdk synth|diff|deploy -c stage=dev|prod` (cdk.json runs this file). */
import { buildApp } from '../lib/app.ts';

buildApp();
