/**
 * Every shell block of every runbook runs as written: each variable it reads is set by the shared
 * set-up section of runbooks/README.md ("Before you start") or earlier in the same runbook, and
 * the block parses as shell (a `<placeholder>` would not).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';
import { headingAnchor } from '../../lib/thresholds.ts';
import { shellBlocks, undefinedVariables } from '../support/runbook-shell.ts';

const RUNBOOK_DIR = join(PROJECT_ROOT, 'runbooks');
const SETUP_ANCHOR = 'before-you-start';

/** The markdown of the `## ` section whose anchor is `anchor`, up to the next `## ` heading. */
function section(markdown: string, anchor: string): string {
  const lines = markdown.split('\n');
  let inFence = false;
  let start = -1;
  let end = lines.length;
  lines.forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence || !line.startsWith('## ')) return;
    if (start >= 0 && end === lines.length && i > start) end = i;
    if (start < 0 && headingAnchor(line.slice(3).trim()) === anchor) start = i;
  });
  if (start < 0) throw new Error(`no section #${anchor}`);
  return lines.slice(start, end).join('\n');
}

function sharedSetup(): Set<string> {
  const readme = readFileSync(join(RUNBOOK_DIR, 'README.md'), 'utf8');
  const defined = new Set<string>();
  for (const block of shellBlocks(section(readme, SETUP_ANCHOR))) {
    expect(undefinedVariables(block, defined, 'README.md set-up')).toEqual([]);
  }
  return defined;
}

function check(markdown: string, name: string, defined: Set<string>) {
  const uses = [];
  for (const block of shellBlocks(markdown)) uses.push(...undefinedVariables(block, defined, name));
  return uses.map((u) => `${name}:${u.line} $${u.name}`);
}

describe('runbook shell blocks', () => {
  it('the shared set-up section defines what on-call needs everywhere', () => {
    const defined = sharedSetup();
    for (const name of ['STAGE', 'STACK', 'API', 'WN_API_URL', 'WN_API_KEY', 'MY_NUMBER'])
      expect(defined, name).toContain(name);
  });

  const files = readdirSync(RUNBOOK_DIR).filter((f) => f.endsWith('.md'));
  // A form to fill in after an incident: nothing to run, so it alone may have no shell block.
  const templates = new Set(['post-incident-review.md']);
  it.each(files)('%s uses no variable it has not set', (file) => {
    const markdown = readFileSync(join(RUNBOOK_DIR, file), 'utf8');
    if (!templates.has(file)) {
      expect(shellBlocks(markdown).length, 'a runbook without a shell block').toBeGreaterThan(0);
    }
    expect(check(markdown, file, sharedSetup())).toEqual([]);
  });
});

describe('the undefined-variable check itself', () => {
  const bad = [
    '# A bad runbook',
    '```bash',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, read by the shell parser
    'curl -H "X-API-Key: $KEY" "${API}v1/notifications/$ID"',
    'ID=abc',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, read by the shell parser
    'echo "$ID ${MISSING:-fine} $HOME $? ${TRIMMED%/}"',
    'out() { echo "$1"; }',
    '```',
    '  ```sh',
    '  for q in high bulk; do echo "$q $OTHER"; done',
    '  read -rs SECRET && echo "$SECRET"',
    '  ```',
    '```',
    'not shell: $IGNORED',
    '```',
  ].join('\n');

  it('reports a variable nobody set, and one read before it is set', () => {
    expect(check(bad, 'bad.md', new Set(['API']))).toEqual([
      'bad.md:3 $KEY',
      'bad.md:3 $ID',
      'bad.md:5 $TRIMMED',
      'bad.md:9 $OTHER',
    ]);
  });

  it('reports what the shared set-up would have provided when it is missing', () => {
    expect(check(bad, 'bad.md', new Set())).toContain('bad.md:3 $API');
  });

  it('fails on a fence that never closes, which would hide the blocks after it', () => {
    const glued = '```bash\necho hi\n``` text glued to the fence\n```bash\necho $LATER\n```\n';
    const unclosed = '```bash\necho hi\n';
    expect(() => check(unclosed, 'u.md', new Set())).toThrow(/opened at line 1 never closes/);
    expect(() => check(glued, 'g.md', new Set())).toThrow(
      /line 3: a code fence with text after it/,
    );
  });

  it('fails on a block that does not parse, such as a <placeholder>', () => {
    const placeholder = '```bash\nnpm run ops -- send-test <number>\n```';
    expect(() => check(placeholder, 'p.md', new Set())).toThrow(/must be followed by a word/);
  });
});
