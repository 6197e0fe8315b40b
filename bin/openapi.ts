/** `npm run openapi`: writes docs/openapi.json from the route list (a test checks it is in step). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderApiDocument } from '../lambdas/api/routes/index.ts';

const target = join(import.meta.dirname, '..', 'docs', 'openapi.json');
await writeFile(target, renderApiDocument());
console.log(`wrote ${target}`);
