/**
 * One client's side of a secure-aggregation round. Its upload is
 *   y_v = q(x_v) + PRG(b_v) + sum_{u in N(v) that shared keys} sign(v, u) PRG(s_{u,v})  (mod 2^32)
 * with q the stochastic quantizer (quantize.ts), b_v a fresh per-round self-mask seed, s_{u,v} the
 * HKDF of the ECDH secret of u's and v's masking keys, and sign(v, u) = +1 when v < u, else -1,
 * so the pairwise masks of two survivors cancel in the sum. The client Shamir-shares b_v and its
 * masking private key among its neighbours and itself, and at unmasking reveals, for each
 * neighbour, the share of b (a survivor) or of the key (dropped), never both.
 * A fresh client object per round: its keys and seeds are used once.
 */
import { split } from 'shamir-secret-sharing';
import {
  agreeSeed,
  type CryptoKey,
  decrypt,
  ENCRYPTION_OVERHEAD,
  encrypt,
  expandSeed,
  generateKeyPair,
  importPublicKey,
  type KeyPair,
  PUBLIC_KEY_BYTES,
  privateScalar,
  randomBytes,
  SEED_BYTES,
} from './crypto.js';
import { SecAggError } from './errors.js';
import {
  type AdvertiseKeys,
  expect,
  expectBytes,
  expectIds,
  type ForwardedShares,
  type MaskedInput,
  type NeighbourKeys,
  type SharedKeys,
  shareHeader,
  type UnmaskRequest,
  type UnmaskResponse,
} from './messages.js';
import { checkParams, type SecAggParams, SHARE_BYTES } from './params.js';
import { quantize } from './quantize.js';

type Stage = 'new' | 'advertised' | 'shared' | 'masked' | 'done';

interface Held {
  readonly keyShare: Uint8Array;
  readonly seedShare: Uint8Array;
}

export interface SecAggClientOptions {
  /**
   * Seed (32 bytes) of the stochastic-rounding stream, for reproducible quantization in tests and
   * experiments; by default a fresh random one. It never affects the masks.
   */
  readonly roundingSeed?: Uint8Array;
}

export class SecAggClient {
  private stage: Stage = 'new';
  private encryption?: KeyPair;
  private masking?: KeyPair;
  private selfSeed?: Uint8Array;
  private readonly neighbourKeys = new Map<number, { encryption: CryptoKey; masking: CryptoKey }>();
  /** Shares this client holds, by the client they belong to (itself included). */
  private readonly held = new Map<number, Held>();
  /** The neighbours that shared keys: the ones it masked with. */
  private readonly maskedWith = new Set<number>();

  constructor(
    readonly id: number,
    readonly params: SecAggParams,
    private readonly options: SecAggClientOptions = {},
  ) {
    checkParams(params);
  }

  private enter(from: Stage, to: Stage, stage: string): void {
    if (this.stage !== from)
      throw new SecAggError(stage, `called in state '${this.stage}', expected '${from}'`, this.id);
    this.stage = to;
  }

  async advertiseKeys(): Promise<AdvertiseKeys> {
    this.enter('new', 'advertised', 'advertise keys');
    this.encryption = await generateKeyPair();
    this.masking = await generateKeyPair();
    return {
      round: this.params.round,
      client: this.id,
      encryptionKey: this.encryption.publicKey,
      maskingKey: this.masking.publicKey,
    };
  }

  async shareKeys(message: NeighbourKeys): Promise<SharedKeys> {
    const stage = 'share keys';
    this.enter('advertised', 'shared', stage);
    const { round, threshold } = this.params;
    expect(message.round === round, stage, `round ${message.round}, expected ${round}`, this.id);
    const ids = message.neighbours.map((n) => n.client);
    expectIds(ids, stage, 'neighbours', undefined, this.id);
    expect(!ids.includes(this.id), stage, 'neighbours: lists this client itself', this.id);
    expect(
      ids.length >= threshold && ids.length <= 254,
      stage,
      `neighbours: expected ${threshold}..254 (threshold ${threshold}), got ${ids.length}`,
      this.id,
    );
    const seenKeys = new Set<string>([
      String(this.encryption?.publicKey),
      String(this.masking?.publicKey),
    ]);
    for (const n of message.neighbours) {
      expect(n.round === round, stage, `neighbour ${n.client}: wrong round`, this.id);
      expectBytes(
        n.encryptionKey,
        PUBLIC_KEY_BYTES,
        stage,
        `neighbour ${n.client} encryptionKey`,
        this.id,
      );
      expectBytes(
        n.maskingKey,
        PUBLIC_KEY_BYTES,
        stage,
        `neighbour ${n.client} maskingKey`,
        this.id,
      );
      for (const key of [String(n.encryptionKey), String(n.maskingKey)]) {
        expect(!seenKeys.has(key), stage, `neighbour ${n.client}: reuses a public key`, this.id);
        seenKeys.add(key);
      }
      try {
        this.neighbourKeys.set(n.client, {
          encryption: await importPublicKey(n.encryptionKey),
          masking: await importPublicKey(n.maskingKey),
        });
      } catch {
        throw new SecAggError(stage, `neighbour ${n.client}: a key is not a P-256 point`, this.id);
      }
    }
    const encryption = this.encryption as KeyPair;
    const masking = this.masking as KeyPair;
    this.selfSeed = randomBytes(SEED_BYTES);
    const holders = [this.id, ...[...ids].sort((a, b) => a - b)];
    const keyShares = await split(
      await privateScalar(masking.privateKey),
      holders.length,
      threshold,
    );
    const seedShares = await split(this.selfSeed, holders.length, threshold);
    const shares: { to: number; ciphertext: Uint8Array }[] = [];
    for (const [i, to] of holders.entries()) {
      const held = { keyShare: keyShares[i] as Uint8Array, seedShare: seedShares[i] as Uint8Array };
      if (to === this.id) {
        this.held.set(to, held);
        continue;
      }
      const peer = this.neighbourKeys.get(to)?.encryption as CryptoKey;
      const key = await agreeSeed(
        encryption.privateKey,
        peer,
        'share-encryption',
        round,
        this.id,
        to,
      );
      const plain = new Uint8Array(2 * SHARE_BYTES);
      plain.set(held.keyShare);
      plain.set(held.seedShare, SHARE_BYTES);
      shares.push({ to, ciphertext: await encrypt(key, shareHeader(round, this.id, to), plain) });
    }
    return { round, client: this.id, shares };
  }

  /** The masked, quantized upload of `values` (length params.dimension). */
  async maskedInput(message: ForwardedShares, values: Float32Array): Promise<MaskedInput> {
    const stage = 'masked input collection';
    this.enter('shared', 'masked', stage);
    const { round, threshold, dimension } = this.params;
    expect(message.round === round, stage, `round ${message.round}, expected ${round}`, this.id);
    expect(
      values.length === dimension,
      stage,
      `input: expected ${dimension} values, got ${values.length}`,
      this.id,
    );
    const from = message.shares.map((s) => s.from);
    expectIds(from, stage, 'shares', new Set(this.neighbourKeys.keys()), this.id);
    expect(
      from.length >= threshold,
      stage,
      `only ${from.length} neighbours shared keys; threshold ${threshold}`,
      this.id,
    );
    const encryption = this.encryption as KeyPair;
    for (const { from: sender, ciphertext } of message.shares) {
      expectBytes(
        ciphertext,
        2 * SHARE_BYTES + ENCRYPTION_OVERHEAD,
        stage,
        `share from ${sender}`,
        this.id,
      );
      const peer = this.neighbourKeys.get(sender)?.encryption as CryptoKey;
      const key = await agreeSeed(
        encryption.privateKey,
        peer,
        'share-encryption',
        round,
        sender,
        this.id,
      );
      const plain = await decrypt(key, shareHeader(round, sender, this.id), ciphertext);
      if (!plain)
        throw new SecAggError(stage, `share from ${sender} fails authentication`, this.id);
      this.held.set(sender, {
        keyShare: plain.slice(0, SHARE_BYTES),
        seedShare: plain.slice(SHARE_BYTES),
      });
      this.maskedWith.add(sender);
    }
    const rounding = await expandSeed(
      this.options.roundingSeed ?? randomBytes(SEED_BYTES),
      dimension,
    );
    const masked = quantize(
      values,
      { clip: this.params.clip, bits: this.params.quantizationBits },
      rounding,
    );
    addInto(masked, await expandSeed(this.selfSeed as Uint8Array, dimension), 1);
    const masking = this.masking as KeyPair;
    for (const other of [...this.maskedWith].sort((a, b) => a - b)) {
      const peer = this.neighbourKeys.get(other)?.masking as CryptoKey;
      const seed = await agreeSeed(masking.privateKey, peer, 'mask', round, this.id, other);
      addInto(masked, await expandSeed(seed, dimension), this.id < other ? 1 : -1);
    }
    return { round, client: this.id, masked };
  }

  /** Reveals each neighbour's seed share (survivors) or key share (dropped): never both. */
  unmask(message: UnmaskRequest): UnmaskResponse {
    const stage = 'unmasking';
    this.enter('masked', 'done', stage);
    const { round, threshold } = this.params;
    expect(message.round === round, stage, `round ${message.round}, expected ${round}`, this.id);
    const known = new Set([this.id, ...this.maskedWith]);
    expectIds(message.survivors, stage, 'survivors', known, this.id);
    expectIds(message.dropped, stage, 'dropped', known, this.id);
    expect(message.survivors.includes(this.id), stage, 'survivors: omits this client', this.id);
    for (const d of message.dropped)
      expect(
        !message.survivors.includes(d),
        stage,
        `client ${d} both survived and dropped`,
        this.id,
      );
    expect(
      message.survivors.length + message.dropped.length === known.size,
      stage,
      `survivors and dropped: expected the ${known.size} clients it masked with, itself included`,
      this.id,
    );
    expect(
      message.survivors.length >= threshold,
      stage,
      `only ${message.survivors.length} survivors among its neighbours; threshold ${threshold}`,
      this.id,
    );
    const held = (of: number) => this.held.get(of) as Held;
    return {
      round,
      client: this.id,
      seedShares: message.survivors.map((of) => ({ of, share: held(of).seedShare })),
      keyShares: message.dropped.map((of) => ({ of, share: held(of).keyShare })),
    };
  }
}

/** target += sign * addend, modulo 2^32 (typed-array stores wrap). */
export function addInto(target: Uint32Array, addend: Uint32Array, sign: 1 | -1): void {
  if (sign === 1)
    for (let i = 0; i < target.length; i++)
      target[i] = (target[i] as number) + (addend[i] as number);
  else
    for (let i = 0; i < target.length; i++)
      target[i] = (target[i] as number) - (addend[i] as number);
}
