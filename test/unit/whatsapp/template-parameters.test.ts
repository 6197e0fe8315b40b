/** What a template's components need from a send, read from Meta's list, and the check of a send's components. */
import { describe, expect, it } from 'vitest';
import {
  checkParameters,
  parameterCounts,
  placeholders,
  templateRequirements,
} from '#core/whatsapp/template-parameters.ts';

const text = (value: string) => ({ type: 'text', text: value });

const DELIVERY = templateRequirements([
  { type: 'HEADER', format: 'TEXT', text: 'Order {{1}}' },
  { type: 'BODY', text: 'Your order {{1}} arrives on {{2}}; order {{1}} again soon.' },
  { type: 'FOOTER', text: 'Thanks' },
  {
    type: 'BUTTONS',
    buttons: [
      { type: 'URL', text: 'Track', url: 'https://example.com/track/{{1}}' },
      { type: 'QUICK_REPLY', text: 'Stop' },
      { type: 'PHONE_NUMBER', text: 'Call', phone_number: '+15550000000' },
      { type: 'URL', text: 'Site', url: 'https://example.com' },
    ],
  },
]);

describe('templateRequirements', () => {
  it('counts distinct placeholders per component and the buttons that need a parameter', () => {
    expect(parameterCounts(DELIVERY)).toEqual({ header: 1, body: 2, buttons: 1 });
    expect(DELIVERY.buttons).toEqual([
      { index: 0, type: 'URL', required: true },
      { index: 1, type: 'QUICK_REPLY', required: false },
    ]);
  });

  it('reads a media header as one parameter of its kind, and named parameters by name', () => {
    const media = templateRequirements([{ type: 'header', format: 'image' }]);
    const named = templateRequirements(
      [{ type: 'BODY', text: 'Hi {{first_name}}, {{ plan }} renews.' }],
      'NAMED',
    );

    expect(media.header).toEqual({ kind: 'media', count: 1, names: [], format: 'IMAGE' });
    expect(named.body).toEqual({ count: 2, names: ['first_name', 'plan'] });
  });

  it('reads nothing from components it does not know, or none at all', () => {
    expect(parameterCounts(templateRequirements(undefined))).toEqual({
      header: 0,
      body: 0,
      buttons: 0,
    });
    expect(placeholders(42)).toEqual([]);
  });
});

describe('checkParameters', () => {
  const complete = [
    { type: 'header', parameters: [text('A-1')] },
    { type: 'body', parameters: [text('A-1'), text('Monday')] },
    { type: 'button', sub_type: 'url', index: '0', parameters: [text('A-1')] },
  ];

  it('takes components that give each part what it needs, a quick-reply payload or not', () => {
    expect(checkParameters(DELIVERY, complete)).toBeUndefined();
    expect(
      checkParameters(DELIVERY, [
        ...complete,
        {
          type: 'button',
          sub_type: 'quick_reply',
          index: 1,
          parameters: [{ type: 'payload', payload: 'x' }],
        },
      ]),
    ).toBeUndefined();
  });

  it.each([
    ['no components', undefined, 'components', /header takes 1 parameter, 0 given/],
    [
      'a body parameter short',
      [complete[0]!, { type: 'body', parameters: [text('A-1')] }, complete[2]!],
      'components.1',
      /body takes 2 parameters, 1 given/,
    ],
    [
      'the URL button missing',
      complete.slice(0, 2),
      'components',
      /URL button 0 needs a parameter/,
    ],
    [
      'a parameter for a button that takes none',
      [...complete, { type: 'button', index: 2, parameters: [text('x')] }],
      'components.3',
      /no button at index 2/,
    ],
    ['the same button twice', [...complete, complete[2]!], 'components.3', /button 0 given twice/],
    ['two bodies', [...complete, complete[1]!], 'components.3', /more than one body/],
  ])('refuses %s, naming the field', (_case, components, field, message) => {
    const problem = checkParameters(DELIVERY, components as Record<string, unknown>[] | undefined);

    expect(problem?.field).toBe(field);
    expect(problem?.message).toMatch(message);
  });

  it('refuses a media header given text, and named parameters without their names', () => {
    const media = templateRequirements([{ type: 'HEADER', format: 'DOCUMENT' }]);
    const named = templateRequirements([{ type: 'BODY', text: 'Hi {{first_name}}' }], 'NAMED');

    expect(checkParameters(media, [{ type: 'header', parameters: [text('x')] }])?.message).toBe(
      "the template's header takes a document parameter",
    );
    expect(
      checkParameters(media, [
        { type: 'header', parameters: [{ type: 'document', document: { link: 'https://x' } }] },
      ]),
    ).toBeUndefined();
    expect(checkParameters(named, [{ type: 'body', parameters: [text('Ana')] }])?.message).toMatch(
      /missing parameter_name first_name/,
    );
    expect(
      checkParameters(named, [
        { type: 'body', parameters: [{ ...text('Ana'), parameter_name: 'first_name' }] },
      ]),
    ).toBeUndefined();
  });
});
