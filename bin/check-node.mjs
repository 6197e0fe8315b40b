/**
 * Run before every npm script that starts a .ts file: on a Node too old to strip types, prints one
 * line naming the Node the project needs, the one found and how to get it, and exits 1, instead
 * of the raw ERR_UNKNOWN_FILE_EXTENSION stack. Plain JavaScript on purpose: it must run on the old
 * Node it is there to catch.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** "v20.19.0", "24.1" or "24" as [major, minor, patch]; missing parts count as 0. */
function parts(version) {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(String(version).trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

function atLeast(found, minimum) {
  for (let i = 0; i < 3; i++) {
    if (found[i] !== minimum[i]) return found[i] > minimum[i];
  }
  return true;
}

/**
 * The one line to print when `found` (process.versions.node, with or without a leading v) does not
 * satisfy `required` (package.json engines.node, a ">=X[.Y[.Z]]" range), or undefined when it
 * does. `nvmrc` is what .nvmrc names, for the hint.
 */
export function nodeVersionProblem(found, required, nvmrc = '') {
  const minimum = parts(String(required).replace(/^\s*>=\s*/, ''));
  if (!minimum) return `package.json engines.node is "${required}"; expected a ">=N" range`;
  const actual = parts(found);
  if (actual && atLeast(actual, minimum)) return undefined;
  const major = minimum[0];
  return (
    `whatsapp-notif needs Node ${required.trim()} (package.json engines${nvmrc ? `, .nvmrc ${nvmrc}` : ''}); ` +
    `this is Node ${found}. Get it with \`nvm use\`, or without nvm: ` +
    `npm install --prefix .tools/node${major} node@${major} && export PATH="$PWD/.tools/node${major}/node_modules/.bin:$PATH"`
  );
}

function readRequirement() {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  let nvmrc = '';
  try {
    nvmrc = readFileSync(new URL('../.nvmrc', import.meta.url), 'utf8').trim();
  } catch {
    // No .nvmrc: the hint leaves it out.
  }
  return { required: pkg.engines?.node ?? `>=${nvmrc || '24'}`, nvmrc };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { required, nvmrc } = readRequirement();
  const problem = nodeVersionProblem(process.versions.node, required, nvmrc);
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
}
