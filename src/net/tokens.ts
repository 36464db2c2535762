/**
 * Client tokens of a federation. The tokens file has one client per line, `<client id> <token>`
 * (id: an integer from 0; token: at least 16 characters, no spaces); blank lines and lines
 * starting with `#` are skipped. Only SHA-256 digests of the tokens are kept in memory, and a
 * presented token's digest is compared with the client's in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';

export const MIN_TOKEN_LENGTH = 16;

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export class TokenBook {
  private constructor(private readonly digests: ReadonlyMap<number, Buffer>) {}

  /** Parses a tokens file's text; `source` names it in errors. */
  static parse(text: string, source: string): TokenBook {
    const digests = new Map<number, Buffer>();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const where = `${source} line ${i + 1}`;
      const fields = line.split(/\s+/);
      if (fields.length !== 2)
        throw new InputError(
          `${where}: expected '<client id> <token>', got ${fields.length} field(s)`,
        );
      const [idText, token] = fields as [string, string];
      if (!/^\d+$/.test(idText))
        throw new InputError(`${where}: client id '${idText}' is not an integer from 0`);
      const id = Number(idText);
      if (digests.has(id)) throw new InputError(`${where}: client ${id} has a token already`);
      if (token.length < MIN_TOKEN_LENGTH)
        throw new InputError(
          `${where}: client ${id}'s token is ${token.length} characters; at least ${MIN_TOKEN_LENGTH} expected`,
        );
      digests.set(id, digest(token));
    });
    if (!digests.size) throw new InputError(`${source}: no '<client id> <token>' line`);
    return new TokenBook(digests);
  }

  static read(file: string): TokenBook {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new InputError(`cannot read the tokens file '${file}': ${(err as Error).message}`);
    }
    return TokenBook.parse(text, `tokens file '${file}'`);
  }

  /** Client ids with a token, ascending. */
  clients(): number[] {
    return [...this.digests.keys()].sort((a, b) => a - b);
  }

  /** Whether `token` is `client`'s (an unknown client is compared against a dummy, same time). */
  accepts(client: number, token: string): boolean {
    const expected = this.digests.get(client);
    const same = timingSafeEqual(digest(token), expected ?? digest(''));
    return same && expected !== undefined;
  }
}
