/** The tokens file: its format is checked line by line, and a token is accepted only for its id. */
import { describe, expect, it } from 'vitest';
import { TokenBook } from './tokens.js';

const t = (c: number) => `a-token-of-client-${c}`;

describe('client tokens', () => {
  it('accept exactly each client its own token', () => {
    const book = TokenBook.parse(`# clients\n\n2 ${t(2)}\n  0\t${t(0)}  \n`, 'tokens');
    expect(book.clients()).toEqual([0, 2]);
    expect(book.accepts(0, t(0))).toBe(true);
    expect(book.accepts(2, t(2))).toBe(true);
    expect(book.accepts(0, t(2))).toBe(false);
    expect(book.accepts(1, t(1))).toBe(false);
    expect(book.accepts(0, '')).toBe(false);
    expect(book.accepts(0, `${t(0)}x`)).toBe(false);
  });

  it('refuse a malformed file, naming the line and what was expected', () => {
    const bad: [string, RegExp][] = [
      [`0 ${t(0)} extra`, /tokens line 1: expected '<client id> <token>', got 3 field/],
      [`x ${t(0)}`, /tokens line 1: client id 'x' is not an integer from 0/],
      [`-1 ${t(0)}`, /client id '-1' is not an integer/],
      [`0 ${t(0)}\n0 ${t(1)}`, /tokens line 2: client 0 has a token already/],
      ['0 short', /client 0's token is 5 characters; at least 16 expected/],
      ['# nothing\n', /tokens: no '<client id> <token>' line/],
    ];
    for (const [text, message] of bad)
      expect(() => TokenBook.parse(text, 'tokens')).toThrow(message);
    expect(() => TokenBook.read('/nonexistent/tokens')).toThrow(/cannot read the tokens file/);
  });
});
