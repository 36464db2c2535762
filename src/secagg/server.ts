/**
 * The server's side of a secure-aggregation round: it routes messages and, at unmasking, removes
 * the masks. With U3 the clients whose masked input arrived and D the ones that shared keys but
 * sent none,
 *   sum_{v in U3} y_v - sum_{v in U3} PRG(b_v) - sum_{u in D} sum_{v in N(u) ∩ U3} sign(v, u) PRG(s_{u,v})
 * equals sum_{v in U3} q(x_v) mod 2^32: survivors' pairwise masks cancel, their self-masks come
 * from b_v rebuilt from t seed shares, and a dropped client's masks from its masking key rebuilt
 * from t key shares. U3 is announced at unmasking and is the set whose client states commit.
 * A message that fails validation is refused (listed in `refused`, with the reason) and its
 * client counts as dropped; a stage with fewer than `threshold` clients left throws.
 */
import { combine } from 'shamir-secret-sharing';
import { addInto } from './client.js';
import {
  agreeSeed,
  type CryptoKey,
  ENCRYPTION_OVERHEAD,
  expandSeed,
  importPrivateScalar,
  importPublicKey,
  PUBLIC_KEY_BYTES,
  randomBytes,
  SEED_BYTES,
} from './crypto.js';
import { SecAggError } from './errors.js';
import { neighbourGraph } from './graph.js';
import {
  type AdvertiseKeys,
  expect,
  expectBytes,
  expectIds,
  type ForwardedShares,
  isClientId,
  type MaskedInput,
  type NeighbourKeys,
  type SharedKeys,
  type UnmaskRequest,
  type UnmaskResponse,
} from './messages.js';
import { checkParams, type SecAggParams, SHARE_BYTES } from './params.js';
import { checkCapacity, dequantizeSum } from './quantize.js';

export interface SecAggServerOptions {
  /** SecAgg+: each client's number of neighbours (see graph.ts); default: all other clients. */
  readonly neighbours?: number;
  /** Seed (32 bytes) of the neighbour graph's shuffle; default: fresh random bytes. */
  readonly graphSeed?: Uint8Array;
}

export interface Refusal {
  readonly stage: string;
  readonly client: number | undefined;
  readonly reason: string;
}

export interface SecAggResult {
  /** U3: the clients whose inputs are in the sum (ascending); their states commit. */
  readonly participants: readonly number[];
  /** The sum of their quantized inputs, modulo 2^32. */
  readonly quantizedSum: Uint32Array;
  /** Its dequantized value: within sumErrorBound of the sum of their clipped inputs. */
  readonly sum: Float32Array;
}

export class SecAggServer {
  readonly refused: Refusal[] = [];
  private advertised = new Map<number, AdvertiseKeys>();
  private graph = new Map<number, number[]>();
  private sharedKeys = new Set<number>();
  private masked = new Map<number, Uint32Array>();
  private requests = new Map<number, UnmaskRequest>();

  constructor(
    readonly params: SecAggParams,
    private readonly options: SecAggServerOptions = {},
  ) {
    checkParams(params);
    const k = options.neighbours;
    if (k !== undefined && !(Number.isInteger(k) && k >= params.threshold))
      throw new SecAggError(
        'config',
        `neighbours: expected an integer >= threshold ${params.threshold}, got ${k}`,
      );
  }

  /** U3 once masked inputs are collected: the set announced at unmasking. */
  get participants(): readonly number[] {
    return [...this.masked.keys()].sort((a, b) => a - b);
  }

  /** Keeps the messages that pass `check` (first per client); refuses the others with a reason. */
  private accept<M extends { round: number; client: number }>(
    stage: string,
    messages: readonly M[],
    from: ReadonlySet<number> | undefined,
    check: (m: M) => void | Promise<void>,
  ): Promise<M[]> {
    return (async () => {
      const kept: M[] = [];
      const seen = new Set<number>();
      for (const m of messages) {
        const client = isClientId(m.client) ? m.client : undefined;
        try {
          expect(client !== undefined, stage, `client: ${String(m.client)} is not a client id`);
          expect(!seen.has(client), stage, 'a second message from this client', client);
          expect(from === undefined || from.has(client), stage, 'not in this stage', client);
          expect(
            m.round === this.params.round,
            stage,
            `round ${m.round}, expected ${this.params.round}`,
            client,
          );
          await check(m);
          seen.add(client);
          kept.push(m);
        } catch (error) {
          if (!(error instanceof SecAggError)) throw error;
          this.refused.push({ stage, client, reason: error.message });
        }
      }
      return kept;
    })();
  }

  /** Throws unless `count` clients reached `stage` (at least `needed`, by default the threshold). */
  private enough(stage: string, count: number, what: string, needed = this.params.threshold): void {
    if (count < needed)
      throw new SecAggError(
        stage,
        `only ${count} clients ${what}; threshold ${this.params.threshold} needs at least ${needed}`,
      );
  }

  /** U1 and the neighbour graph; returns what to send to each client. */
  async advertiseKeys(messages: readonly AdvertiseKeys[]): Promise<Map<number, NeighbourKeys>> {
    const stage = 'advertise keys';
    const kept = await this.accept(stage, messages, undefined, async (m) => {
      expectBytes(m.encryptionKey, PUBLIC_KEY_BYTES, stage, 'encryptionKey', m.client);
      expectBytes(m.maskingKey, PUBLIC_KEY_BYTES, stage, 'maskingKey', m.client);
      try {
        await importPublicKey(m.encryptionKey);
        await importPublicKey(m.maskingKey);
      } catch {
        throw new SecAggError(stage, 'a key is not a P-256 point', m.client);
      }
    });
    for (const m of kept) this.advertised.set(m.client, m);
    const ids = [...this.advertised.keys()].sort((a, b) => a - b);
    this.enough(stage, ids.length, 'advertised keys', this.params.threshold + 1);
    this.graph = await neighbourGraph(
      ids,
      this.options.neighbours,
      this.options.graphSeed ?? randomBytes(SEED_BYTES),
    );
    const out = new Map<number, NeighbourKeys>();
    for (const id of ids)
      out.set(id, {
        round: this.params.round,
        neighbours: (this.graph.get(id) ?? []).map((n) => this.advertised.get(n) as AdvertiseKeys),
      });
    return out;
  }

  /** U2; returns the shares addressed to each of its clients. */
  async shareKeys(messages: readonly SharedKeys[]): Promise<Map<number, ForwardedShares>> {
    const stage = 'share keys';
    const kept = await this.accept(stage, messages, new Set(this.advertised.keys()), (m) => {
      const neighbours = this.graph.get(m.client) ?? [];
      const to = m.shares.map((s) => s.to);
      expectIds(to, stage, 'shares', new Set(neighbours), m.client);
      expect(
        to.length === neighbours.length,
        stage,
        `shares: expected one for each of its ${neighbours.length} neighbours, got ${to.length}`,
        m.client,
      );
      for (const s of m.shares)
        expectBytes(
          s.ciphertext,
          2 * SHARE_BYTES + ENCRYPTION_OVERHEAD,
          stage,
          `share to ${s.to}`,
          m.client,
        );
    });
    this.enough(stage, kept.length, 'shared keys');
    const out = new Map<number, { from: number; ciphertext: Uint8Array }[]>();
    for (const m of kept) {
      this.sharedKeys.add(m.client);
      out.set(m.client, out.get(m.client) ?? []);
    }
    for (const m of kept)
      for (const s of m.shares)
        if (this.sharedKeys.has(s.to))
          out.get(s.to)?.push({ from: m.client, ciphertext: s.ciphertext });
    return new Map([...out].map(([id, shares]) => [id, { round: this.params.round, shares }]));
  }

  /** U3 (the committing set); returns each survivor's unmasking request. */
  async maskedInputs(messages: readonly MaskedInput[]): Promise<Map<number, UnmaskRequest>> {
    const stage = 'masked input collection';
    const { dimension } = this.params;
    const kept = await this.accept(stage, messages, this.sharedKeys, (m) => {
      expect(m.masked instanceof Uint32Array, stage, 'masked: expected a Uint32Array', m.client);
      expect(
        m.masked.length === dimension,
        stage,
        `masked: expected ${dimension} values, got ${m.masked.length}`,
        m.client,
      );
    });
    this.enough(stage, kept.length, 'sent masked input');
    checkCapacity({ clip: this.params.clip, bits: this.params.quantizationBits }, kept.length);
    for (const m of kept) this.masked.set(m.client, m.masked);
    for (const v of this.masked.keys()) {
      const near = (this.graph.get(v) ?? []).filter((u) => this.sharedKeys.has(u));
      this.requests.set(v, {
        round: this.params.round,
        survivors: [v, ...near.filter((u) => this.masked.has(u))].sort((a, b) => a - b),
        dropped: near.filter((u) => !this.masked.has(u)),
      });
    }
    return new Map(this.requests);
  }

  /** Rebuilds the masks from the shares and returns the sum over `participants`. */
  async unmask(messages: readonly UnmaskResponse[]): Promise<SecAggResult> {
    const stage = 'unmasking';
    const same = (a: readonly number[], b: readonly number[]) =>
      a.length === b.length && a.every((x, i) => x === b[i]);
    const kept = await this.accept(stage, messages, new Set(this.masked.keys()), (m) => {
      const request = this.requests.get(m.client) as UnmaskRequest;
      const seedOf = m.seedShares.map((s) => s.of);
      const keyOf = m.keyShares.map((s) => s.of);
      expect(
        same(seedOf, request.survivors),
        stage,
        'seedShares: not one per survivor asked',
        m.client,
      );
      expect(
        same(keyOf, request.dropped),
        stage,
        'keyShares: not one per dropped client asked',
        m.client,
      );
      for (const s of [...m.seedShares, ...m.keyShares])
        expectBytes(s.share, SHARE_BYTES, stage, `share of ${s.of}`, m.client);
    });
    const seedShares = new Map<number, Uint8Array[]>();
    const keyShares = new Map<number, Uint8Array[]>();
    const collect = (into: Map<number, Uint8Array[]>, of: number, share: Uint8Array) =>
      into.set(of, [...(into.get(of) ?? []), share]);
    for (const m of kept) {
      for (const s of m.seedShares) collect(seedShares, s.of, s.share);
      for (const s of m.keyShares) collect(keyShares, s.of, s.share);
    }
    const t = this.params.threshold;
    const rebuild = async (shares: Uint8Array[] | undefined, of: number, what: string) => {
      const count = shares?.length ?? 0;
      if (count < t)
        throw new SecAggError(
          stage,
          `only ${count} shares of its ${what} arrived; threshold ${t}`,
          of,
        );
      return combine(shares as Uint8Array[]);
    };
    const { dimension, round } = this.params;
    const participants = this.participants;
    const sum = new Uint32Array(dimension);
    for (const v of participants) addInto(sum, this.masked.get(v) as Uint32Array, 1);
    for (const v of participants) {
      const seed = await rebuild(seedShares.get(v), v, 'self-mask seed');
      addInto(sum, await expandSeed(seed, dimension), -1);
    }
    const dropped = [...this.sharedKeys].filter((u) => !this.masked.has(u)).sort((a, b) => a - b);
    for (const u of dropped) {
      const maskingKey = (this.advertised.get(u) as AdvertiseKeys).maskingKey;
      const scalar = await rebuild(keyShares.get(u), u, 'masking key');
      let key: CryptoKey;
      try {
        key = await importPrivateScalar(scalar, maskingKey);
      } catch {
        throw new SecAggError(stage, 'the rebuilt masking key does not match its public key', u);
      }
      for (const v of (this.graph.get(u) ?? []).filter((w) => this.masked.has(w))) {
        const peer = await importPublicKey((this.advertised.get(v) as AdvertiseKeys).maskingKey);
        const seed = await agreeSeed(key, peer, 'mask', round, u, v);
        // v added sign(v, u) * PRG(s_{u,v}); remove it.
        addInto(sum, await expandSeed(seed, dimension), v < u ? -1 : 1);
      }
    }
    const quantization = { clip: this.params.clip, bits: this.params.quantizationBits };
    return {
      participants,
      quantizedSum: sum,
      sum: dequantizeSum(sum, quantization, participants.length),
    };
  }
}
