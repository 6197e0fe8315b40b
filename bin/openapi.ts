/** `npm run openapi`: writes docs/openapi.json from the request schemas (a test checks it is in step). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderOpenApiDocument } from '../lambdas/api/openapi.ts';

const target = join(import.meta.dirname, '..', 'docs', 'openapi.json');
await writeFile(target, renderOpenApiDocument());
console.log(`wrote ${target}`);
