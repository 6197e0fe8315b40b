/**
 * What a message template's components need from a send, read from Meta's template list, and
 * whether a request's components give exactly that: the count per component (header, body, each
 * button) and, for templates with named parameters, the names. Pure; the registry stores the
 * requirements and acceptance and `ops templates check` apply the check.
 */
import type { TemplateParametersJson } from '#core/db/schema.ts';

export type TemplateParameters = TemplateParametersJson;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Distinct `{{1}}` / `{{name}}` placeholders in a text, in order of first appearance. */
export function placeholders(text: unknown): string[] {
  if (typeof text !== 'string') return [];
  return [...new Set([...text.matchAll(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g)].map((m) => m[1]!))];
}

/** Header formats whose parameter is a media object (or a location), not text. */
const MEDIA_HEADERS = new Set(['IMAGE', 'VIDEO', 'DOCUMENT', 'LOCATION', 'GIF']);

/**
 * The requirements of Meta's `components` list. Types come back upper-case; compared
 * case-insensitively. Buttons: a URL with a variable, a copy code or an OTP button needs a
 * parameter; a quick reply or flow button may carry one (a payload); others take none.
 */
export function templateRequirements(
  components: unknown,
  parameterFormat?: string,
): TemplateParameters {
  const format = parameterFormat?.toUpperCase() === 'NAMED' ? 'NAMED' : 'POSITIONAL';
  const result: TemplateParameters = {
    format,
    header: { kind: 'none', count: 0, names: [] },
    body: { count: 0, names: [] },
    buttons: [],
  };
  for (const component of Array.isArray(components) ? components : []) {
    if (!isRecord(component)) continue;
    const type = String(component.type ?? '').toUpperCase();
    if (type === 'HEADER') {
      const headerFormat = String(component.format ?? 'TEXT').toUpperCase();
      if (MEDIA_HEADERS.has(headerFormat)) {
        result.header = { kind: 'media', count: 1, names: [], format: headerFormat };
      } else {
        const names = placeholders(component.text);
        result.header = {
          kind: names.length ? 'text' : 'none',
          count: names.length,
          names: format === 'NAMED' ? names : [],
        };
      }
    } else if (type === 'BODY') {
      const names = placeholders(component.text);
      result.body = { count: names.length, names: format === 'NAMED' ? names : [] };
    } else if (type === 'BUTTONS' && Array.isArray(component.buttons)) {
      for (const [index, button] of component.buttons.entries()) {
        if (!isRecord(button)) continue;
        const buttonType = String(button.type ?? '').toUpperCase();
        const required =
          (buttonType === 'URL' && placeholders(button.url).length > 0) ||
          buttonType === 'COPY_CODE' ||
          buttonType === 'OTP';
        const optional = buttonType === 'QUICK_REPLY' || buttonType === 'FLOW';
        if (required || optional) result.buttons.push({ index, type: buttonType, required });
      }
    }
  }
  return result;
}

/** How many parameters each component needs, for the registry's columns and `ops templates`. */
export function parameterCounts(p: TemplateParameters) {
  return {
    header: p.header.count,
    body: p.body.count,
    buttons: p.buttons.filter((b) => b.required).length,
  };
}

export interface ParameterProblem {
  /** Where, relative to the template object: `components`, `components.1`. */
  field: string;
  message: string;
}

const MEDIA_PARAMETER: Record<string, string> = {
  IMAGE: 'image',
  VIDEO: 'video',
  DOCUMENT: 'document',
  LOCATION: 'location',
  GIF: 'video',
};

function plural(n: number, word: string) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Whether a send's components match the template's requirements; the first problem found. */
export function checkParameters(
  required: TemplateParameters,
  components: readonly Record<string, unknown>[] | undefined,
): ParameterProblem | undefined {
  const given = (components ?? []).map((c, at) => ({
    at,
    type: String(c.type ?? '').toLowerCase(),
    index: c.index === undefined ? undefined : Number(c.index),
    parameters: Array.isArray(c.parameters) ? (c.parameters as unknown[]) : [],
  }));
  for (const part of ['header', 'body'] as const) {
    const found = given.filter((c) => c.type === part);
    const need = required[part];
    if (found.length > 1) {
      return { field: `components.${found[1]!.at}`, message: `more than one ${part} component` };
    }
    const count = found[0]?.parameters.length ?? 0;
    const field = found[0] ? `components.${found[0].at}` : 'components';
    if (count !== need.count) {
      return {
        field,
        message: `the template's ${part} takes ${plural(need.count, 'parameter')}, ${count} given`,
      };
    }
    if (part === 'header' && required.header.kind === 'media' && found[0]) {
      const expected = MEDIA_PARAMETER[required.header.format ?? ''] ?? 'image';
      const parameter = found[0].parameters[0];
      const type = isRecord(parameter) ? parameter.type : undefined;
      if (type !== expected) {
        return { field, message: `the template's header takes a ${expected} parameter` };
      }
    }
    if (need.names.length > 0) {
      const names = found[0]!.parameters.map((p) => (isRecord(p) ? p.parameter_name : undefined));
      const missing = need.names.filter((n) => !names.includes(n));
      if (missing.length > 0) {
        return {
          field,
          message: `the template's ${part} has named parameters; missing parameter_name ${missing.join(', ')}`,
        };
      }
    }
  }
  const buttons = given.filter((c) => c.type === 'button');
  const seen = new Set<number>();
  for (const button of buttons) {
    const spec = required.buttons.find((b) => b.index === button.index);
    const field = `components.${button.at}`;
    if (!spec) {
      return {
        field,
        message:
          button.index === undefined
            ? 'a button component needs its index'
            : `the template has no button at index ${button.index} that takes a parameter`,
      };
    }
    if (seen.has(spec.index)) return { field, message: `button ${spec.index} given twice` };
    seen.add(spec.index);
    if (button.parameters.length !== 1) {
      return {
        field,
        message: `button ${spec.index} takes 1 parameter, ${button.parameters.length} given`,
      };
    }
  }
  const missing = required.buttons.filter((b) => b.required && !seen.has(b.index));
  if (missing.length > 0) {
    return {
      field: 'components',
      message: `the template's ${missing.map((b) => `${b.type} button ${b.index}`).join(', ')} needs a parameter`,
    };
  }
  for (const c of given) {
    if (c.type === 'footer' && c.parameters.length > 0) {
      return { field: `components.${c.at}`, message: 'a footer takes no parameters' };
    }
  }
  return undefined;
}
