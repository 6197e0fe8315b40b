/**
 * The database role each function connects as (created by migration 0004_function_roles). The
 * stack grants each function IAM permission to connect as its own role only, and the local stack
 * connects each handler as its role, so a missing grant fails locally before it fails in AWS.
 */

export const FUNCTION_DATABASE_ROLES = {
  api: 'notif_api',
  webhook: 'notif_webhook',
  worker: 'notif_worker',
  scheduler: 'notif_scheduler',
  // Created by 0010_callbacks: posts client callbacks and publishes client events.
  dispatcher: 'notif_dispatcher',
} as const;

export type DatabaseFunction = keyof typeof FUNCTION_DATABASE_ROLES;
