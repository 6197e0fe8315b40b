/**
 * Finds the shell variables a runbook uses before anything sets them: every ```bash and ```sh block
 * is parsed with mvdan-sh (a real shell parser, so quoting, `$(...)`, `${X:-default}` and loops are
 * read as the shell reads them) and walked in source order.
 */
import { createRequire } from 'node:module';

// mvdan-sh is a GopherJS build without types or an ES module entry; only these calls are used.
interface ShNode {
  Pos(): { Line(): number };
}
interface ShSyntax {
  NewParser(): { Parse(src: string, name: string): ShNode };
  Walk(node: ShNode, visit: (node: ShNode | null) => boolean): void;
  NodeType(node: ShNode): string;
}
const { syntax } = createRequire(import.meta.url)('mvdan-sh') as { syntax: ShSyntax };

/** Set by the shell, the login or the AWS CLI's own environment: a runbook may use them freely. */
export const WELL_KNOWN_VARIABLES: ReadonlySet<string> = new Set([
  'HOME',
  'PATH',
  'USER',
  'PWD',
  'SHELL',
  'TMPDIR',
  'RANDOM',
  'AWS_PROFILE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
]);

export interface ShellBlock {
  /** 1-based line of the block's first line of code in the markdown file. */
  line: number;
  code: string;
}

/** The ```bash and ```sh blocks of a markdown file (also indented ones inside list items). */
export function shellBlocks(markdown: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const lines = markdown.split('\n');
  let open: { indent: string; shell: boolean; line: number; code: string[] } | undefined;
  lines.forEach((text, index) => {
    const fence = /^(\s*)(```|~~~)\s*([\w-]*)/.exec(text);
    if (!open) {
      if (fence)
        open = {
          indent: fence[1]!,
          shell: ['bash', 'sh', 'shell'].includes(fence[3]!),
          line: index + 2,
          code: [],
        };
      return;
    }
    // Inside a block, a fence line must close it alone: text glued to it keeps the block open
    // and hides the blocks after it.
    if (fence && !/^\s*(```|~~~)\s*$/.test(text)) {
      throw new Error(`line ${index + 1}: a code fence with text after it (${text.trim()})`);
    }
    if (fence) {
      if (open.shell) blocks.push({ line: open.line, code: open.code.join('\n') });
      open = undefined;
      return;
    }
    open.code.push(text.startsWith(open.indent) ? text.slice(open.indent.length) : text);
  });
  // A fence that never closes (text glued to a closing fence) would hide every block after it.
  if (open) throw new Error(`the code fence opened at line ${open.line - 1} never closes`);
  return blocks;
}

export interface UndefinedUse {
  name: string;
  /** Line in the markdown file. */
  line: number;
}

/** Names a `read` command sets: its operands, minus option letters and the values of -p/-d/-t/-u/-n/-N/-a. */
function readTargets(words: string[]): string[] {
  const names: string[] = [];
  for (let i = 1; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('-')) {
      if (/^-\w*[pdtunNa]$/.test(word)) i += 1;
      continue;
    }
    names.push(word);
  }
  return names;
}

/** The literal text of a word node (its Lit parts only), or undefined when it has expansions. */
function literal(word: ShNode): string | undefined {
  const parts = (word as unknown as { Parts: ShNode[] }).Parts;
  if (parts?.length !== 1 || syntax.NodeType(parts[0]!) !== 'Lit') return undefined;
  return (parts[0] as unknown as { Value: string }).Value;
}

/**
 * Walks one block; `defined` holds the names set so far (this block adds to it). A use inside a
 * function body counts when the function is declared (a runbook defines helpers before use);
 * positional parameters are allowed there only.
 */
export function undefinedVariables(
  block: ShellBlock,
  defined: Set<string>,
  name = 'runbook',
): UndefinedUse[] {
  let file: ShNode;
  try {
    file = syntax.NewParser().Parse(`${block.code}\n`, name);
  } catch (error) {
    // GopherJS throws Go errors: an object whose Error() method holds `name:line:col: message`.
    const text = (error as { Error?: () => string }).Error?.() ?? String(error);
    throw new Error(`${text} (block starting at line ${block.line})`);
  }
  const found: UndefinedUse[] = [];
  const functionEnds: number[] = [];
  syntax.Walk(file, (node) => {
    if (!node) return true;
    const type = syntax.NodeType(node);
    const n = node as unknown as Record<string, unknown>;
    const line = block.line + node.Pos().Line() - 1;
    if (type === 'FuncDecl') {
      functionEnds.push((n.End as () => { Line(): number })().Line());
    }
    if (type === 'Assign') defined.add((n.Name as { Value: string }).Value);
    if (type === 'WordIter') defined.add((n.Name as { Value: string }).Value);
    if (type === 'CallExpr') {
      const words = ((n.Args as ShNode[]) ?? []).map(literal);
      if (words[0] === 'read')
        for (const target of readTargets(words.map((w) => w ?? '-'))) defined.add(target);
    }
    if (type === 'ParamExp') {
      const param = (n.Param as { Value: string }).Value;
      const exp = n.Exp as { Op: number } | null;
      const inFunction = functionEnds.some((end) => node.Pos().Line() <= end);
      // `${X:-default}`, `${X:=v}`, `${X:+v}` and `${X:?message}` say what happens when X is
      // unset (mvdan-sh operators 68 to 75); `${X%suffix}` and the rest do not.
      const hasDefault = exp !== null && exp !== undefined && exp.Op >= 68 && exp.Op <= 75;
      const special = /^[?$!#@*-]$/.test(param) || (/^\d+$/.test(param) && inFunction);
      if (!hasDefault && !special && !defined.has(param) && !WELL_KNOWN_VARIABLES.has(param)) {
        found.push({ name: param, line });
      }
    }
    return true;
  });
  return found;
}
