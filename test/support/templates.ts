/**
 * The template registry in tests: a WABA id of each test's own (the registry is keyed by it, so
 * tests sharing the database never see each other's templates), the registry filled from a
 * started sandbox, and template changes made through the sandbox's HTTP control endpoint.
 */
import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { refreshTemplateRegistry } from '#core/notifications/template-registry.ts';
import { createGraphClient, type GraphClient } from '#core/whatsapp/graph-client.ts';
import type { SandboxHandle, TemplateChange } from '../../bin/sandbox/server.ts';
import { SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN } from './delivery.ts';

/** Fifteen digits, like Meta's ids; random so parallel tests never share a registry. */
export function uniqueWabaId(): string {
  return `7${String(randomInt(0, 1e9)).padStart(9, '0')}${String(randomInt(0, 1e5)).padStart(5, '0')}`;
}

/** A Graph client of the sandbox that can list templates (it needs the WABA id). */
export function templateGraphClient(sandbox: SandboxHandle, wabaId: string): GraphClient {
  return createGraphClient({
    apiUrl: sandbox.url,
    graphVersion: 'v25.0',
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    wabaId,
    accessToken: SANDBOX_TOKEN,
    timeoutMs: 5_000,
  });
}

/** Reads the sandbox's template list into the registry of `wabaId`, as the scheduler does. */
export async function fillRegistry(
  db: Kysely<Database>,
  sandbox: SandboxHandle,
  wabaId: string,
): Promise<void> {
  const graph = templateGraphClient(sandbox, wabaId);
  try {
    const outcome = await refreshTemplateRegistry(db, {
      wabaId,
      list: () => graph.listTemplates({ full: true, maxPages: 100 }),
      now: new Date(),
    });
    if (!outcome.ok) throw new Error(`registry refresh failed: ${outcome.error}`);
  } finally {
    await graph.close();
  }
}

/** POST /_sandbox/templates: changes a template; the sandbox posts Meta's webhook for it. */
export async function changeTemplate(
  sandbox: SandboxHandle,
  change: TemplateChange,
): Promise<{ status: number; body: { delivered?: boolean; error?: string } }> {
  const response = await fetch(`${sandbox.url}/_sandbox/templates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(change),
  });
  return { status: response.status, body: (await response.json()) as { delivered?: boolean } };
}
