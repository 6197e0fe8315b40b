/**
 * The runbooks quote the thresholds table and nothing else. Convention: every alarm has, inside the
 * runbook section named by its row, one line rendered from that row:
 *
 *   Alarm `queue-backlog-high` · critical (SEV-2) · visible messages in the high queue > 1000 for 5 min
 *
 * The test renders each row, looks for that exact line in that section, rejects alarm lines that
 * match no row, rejects thresholds written into prose, and checks that the link in each deployed
 * alarm's description lands on an existing heading.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';
import {
  ALARM_THRESHOLDS,
  headingAnchor,
  RUNBOOKS,
  runbookAlarmLine,
} from '../../lib/thresholds.ts';
import { builtStage } from './stages.ts';

const RUNBOOK_DIR = join(PROJECT_ROOT, 'runbooks');
interface Heading {
  level: number;
  text: string;
  anchor: string;
  /** Lines from the heading to the next heading of the same or a higher level. */
  body: string[];
}

interface ParsedRunbook {
  headings: Heading[];
  /** Lines outside fenced code blocks, with their line numbers. */
  prose: { line: number; text: string }[];
}

function parseRunbook(markdown: string): ParsedRunbook {
  const lines = markdown.split('\n');
  const prose: ParsedRunbook['prose'] = [];
  const starts: { index: number; level: number; text: string }[] = [];
  let inFence = false;
  lines.forEach((text, index) => {
    if (/^\s*(```|~~~)/.test(text)) {
      inFence = !inFence;
      return;
    }
    if (inFence) return;
    prose.push({ line: index + 1, text });
    const heading = /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(text);
    if (heading) starts.push({ index, level: heading[1]!.length, text: heading[2]! });
  });
  const headings = starts.map((start, i) => {
    const next = starts.slice(i + 1).find((s) => s.level <= start.level);
    return {
      level: start.level,
      text: start.text,
      anchor: headingAnchor(start.text),
      body: lines.slice(start.index + 1, next ? next.index : lines.length),
    };
  });
  return { headings, prose };
}

function readRunbook(name: string): ParsedRunbook {
  return parseRunbook(readFileSync(join(RUNBOOK_DIR, `${name}.md`), 'utf8'));
}

const ALARM_LINE = /^Alarm `([^`]+)`/;

/** Runbooks no alarm links to: the daily checklist and the post-incident review template. */
const PROCEDURES = ['daily-checks', 'post-incident-review'] as const;

describe('runbooks', () => {
  it('has one file per alarm family, the procedures and an index, and nothing else', () => {
    const files = readdirSync(RUNBOOK_DIR).filter((f) => f.endsWith('.md'));
    expect(files.sort()).toEqual(
      ['README.md', ...[...RUNBOOKS, ...PROCEDURES].map((r) => `${r}.md`)].sort(),
    );
  });

  it('lists every runbook in the index', () => {
    const index = readFileSync(join(RUNBOOK_DIR, 'README.md'), 'utf8');
    for (const runbook of [...RUNBOOKS, ...PROCEDURES]) expect(index).toContain(`(${runbook}.md)`);
  });

  it.each([...RUNBOOKS, ...PROCEDURES])(
    '%s.md has no duplicate headings, so every anchor is unambiguous',
    (name) => {
      const anchors = readRunbook(name).headings.map((h) => h.anchor);
      expect(new Set(anchors).size).toBe(anchors.length);
    },
  );

  it.each(ALARM_THRESHOLDS.map((t) => [t.id, t] as const))(
    'quotes the %s threshold exactly as the table renders it, in its section',
    (_id, t) => {
      const runbook = readRunbook(t.runbook);
      const section = runbook.headings.find((h) => h.text === t.section);
      expect(section, `runbooks/${t.runbook}.md has no heading "${t.section}"`).toBeDefined();
      const lines = section!.body.map((l) => l.trim()).filter((l) => ALARM_LINE.test(l));
      const forThisAlarm = lines.filter((l) => ALARM_LINE.exec(l)?.[1] === t.id);
      expect(forThisAlarm).toEqual([runbookAlarmLine(t)]);
    },
  );

  it.each(RUNBOOKS)('%s.md has no alarm line that differs from the table', (name) => {
    const rendered = new Map(ALARM_THRESHOLDS.map((t) => [t.id, runbookAlarmLine(t)]));
    for (const { line, text } of readRunbook(name).prose) {
      const match = ALARM_LINE.exec(text.trim());
      if (!match) continue;
      expect(rendered.get(match[1]!), `${name}.md:${line} names an unknown alarm`).toBeDefined();
      expect(text.trim(), `${name}.md:${line}`).toBe(rendered.get(match[1]!));
    }
  });

  it.each(['README', ...RUNBOOKS, ...PROCEDURES])(
    '%s.md quotes no threshold outside the alarm lines',
    (name) => {
      const offenders = readRunbook(name)
        .prose.filter(({ text }) => !ALARM_LINE.test(text.trim()))
        // A comparison with a number, or a percentage: the shapes a threshold takes.
        .filter(({ text }) => /(?:[<>≥≤]=?\s*\d)|(?:\d\s*%)/.test(text.replace(/`[^`]*`/g, '')))
        .map(({ line, text }) => `${name}.md:${line}: ${text}`);
      expect(offenders).toEqual([]);
    },
  );

  it('resolves the runbook link in every deployed alarm description to a heading', () => {
    const { template } = builtStage('prod');
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(ALARM_THRESHOLDS.length);
    for (const alarm of alarms) {
      const description = alarm.Properties.AlarmDescription as string;
      const link = /runbooks\/([a-z0-9-]+)\.md#([a-z0-9_-]+)/.exec(description);
      expect(link, description).not.toBeNull();
      const anchors = readRunbook(link![1]!).headings.map((h) => h.anchor);
      expect(anchors, description).toContain(link![2]);
    }
  });
});
