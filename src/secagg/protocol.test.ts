import { describe, expect, it } from 'vitest';
import { SecAggClient } from './client.js';
import { expandSeed } from './crypto.js';
import { SecAggError } from './errors.js';
import { neighbourGraph } from './graph.js';
import type {
  AdvertiseKeys,
  ForwardedShares,
  MaskedInput,
  NeighbourKeys,
  SharedKeys,
  UnmaskRequest,
} from './messages.js';
import type { SecAggParams } from './params.js';
import { sumErrorBound } from './quantize.js';
import { type SecAggResult, SecAggServer } from './server.js';

interface Drops {
  /** Leave after advertising keys (never share). */
  beforeSharing?: number[];
  /** Leave after sharing keys (no masked input). */
  afterSharing?: number[];
  /** Leave after uploading (no unmasking answer). */
  afterUpload?: number[];
}

async function inputs(n: number, dimension: number): Promise<Float32Array[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, c) =>
      Float32Array.from(
        await expandSeed(new Uint8Array(32).fill(c + 1), dimension),
        (w) => (w / 2 ** 32) * 2 - 1,
      ),
    ),
  );
}

/** Runs one round with clients 0..n-1 and returns the server's result and the inputs. */
async function runRound(
  n: number,
  params: SecAggParams,
  drops: Drops = {},
  neighbours?: number,
): Promise<{ result: SecAggResult; values: Float32Array[]; server: SecAggServer }> {
  const values = await inputs(n, params.dimension);
  const clients = Array.from({ length: n }, (_, id) => new SecAggClient(id, params));
  const server = new SecAggServer(params, { neighbours, graphSeed: new Uint8Array(32).fill(5) });
  const keys = await server.advertiseKeys(await Promise.all(clients.map((c) => c.advertiseKeys())));
  const sharing = clients.filter((c) => !drops.beforeSharing?.includes(c.id));
  const forwarded = await server.shareKeys(
    await Promise.all(sharing.map((c) => c.shareKeys(keys.get(c.id) as NeighbourKeys))),
  );
  const uploading = sharing.filter((c) => !drops.afterSharing?.includes(c.id));
  const requests = await server.maskedInputs(
    await Promise.all(
      uploading.map((c) =>
        c.maskedInput(forwarded.get(c.id) as ForwardedShares, values[c.id] as Float32Array),
      ),
    ),
  );
  const answering = uploading.filter((c) => !drops.afterUpload?.includes(c.id));
  const result = await server.unmask(
    answering.map((c) => c.unmask(requests.get(c.id) as UnmaskRequest)),
  );
  return { result, values, server };
}

function expectSumWithinBound(
  result: SecAggResult,
  values: Float32Array[],
  params: SecAggParams,
): void {
  const bound = sumErrorBound(
    { clip: params.clip, bits: params.quantizationBits },
    result.participants.length,
  );
  let worst = 0;
  for (let i = 0; i < params.dimension; i++) {
    const plain = result.participants.reduce(
      (s, c) => s + ((values[c] as Float32Array)[i] as number),
      0,
    );
    worst = Math.max(worst, Math.abs((result.sum[i] as number) - plain));
  }
  expect(worst).toBeLessThan(bound + 1e-5);
  expect(worst).toBeGreaterThan(0); // quantization did happen: the masks were removed, not skipped
}

const base: SecAggParams = {
  round: 3,
  dimension: 500,
  threshold: 2,
  clip: 1,
  quantizationBits: 16,
};

describe('secure aggregation protocol', () => {
  it('the unmasked sum equals the plain sum within the quantization bound, n = 3..10, with and without neighbour subsets', async () => {
    for (const n of [3, 4, 6, 10]) {
      const full = await runRound(n, { ...base, threshold: Math.max(2, Math.ceil(n / 2)) });
      expect(full.result.participants).toEqual([...Array(n).keys()]);
      expectSumWithinBound(full.result, full.values, base);
      if (n >= 6) {
        const sparse = await runRound(n, { ...base, threshold: 3 }, { afterSharing: [1] }, 4);
        expect(sparse.result.participants).toEqual([...Array(n).keys()].filter((c) => c !== 1));
        expectSumWithinBound(sparse.result, sparse.values, base);
      }
    }
  });

  it('recovers a client dropped after sharing keys and one dropped after uploading; both sets are exposed', async () => {
    const params = { ...base, threshold: 3 };
    const { result, values } = await runRound(7, params, {
      beforeSharing: [6],
      afterSharing: [2],
      afterUpload: [4],
    });
    // 2 never uploaded: not in the sum. 4 uploaded but did not answer: in the sum (its self-mask rebuilt).
    expect(result.participants).toEqual([0, 1, 3, 4, 5]);
    expectSumWithinBound(result, values, params);
  });

  it('the masked uploads alone reveal nothing like the inputs: each is masked', async () => {
    const params = { ...base, dimension: 64 };
    const clients = [0, 1, 2].map((id) => new SecAggClient(id, params));
    const server = new SecAggServer(params);
    const keys = await server.advertiseKeys(
      await Promise.all(clients.map((c) => c.advertiseKeys())),
    );
    const fwd = await server.shareKeys(
      await Promise.all(clients.map((c) => c.shareKeys(keys.get(c.id) as NeighbourKeys))),
    );
    const zeros = new Float32Array(64);
    const up = await Promise.all(
      clients.map((c) => c.maskedInput(fwd.get(c.id) as ForwardedShares, zeros)),
    );
    // A zero input quantizes to ~2^15; masked words spread over the whole Uint32 range.
    for (const u of up) expect(u.masked.filter((w) => w > 2 ** 20).length).toBeGreaterThan(60);
  });

  it('fails cleanly, naming the stage, when fewer than the threshold remain', async () => {
    const params = { ...base, threshold: 4 };
    const few = [0, 1, 2, 3].map((id) => new SecAggClient(id, params));
    await expect(
      new SecAggServer(params).advertiseKeys(await Promise.all(few.map((c) => c.advertiseKeys()))),
    ).rejects.toThrow(
      /advertise keys: only 4 clients advertised keys; threshold 4 needs at least 5/,
    );
    await expect(runRound(5, params, { afterSharing: [0, 1] })).rejects.toThrow(
      /masked input collection: only 3 clients sent masked input; threshold 4/,
    );
    // Enough uploads, but too few answers to rebuild a self-mask seed: names the client.
    const err = await runRound(5, params, { afterUpload: [0, 1] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecAggError);
    expect((err as SecAggError).stage).toBe('unmasking');
    expect((err as Error).message).toMatch(
      /client \d: only 3 shares of its self-mask seed arrived; threshold 4/,
    );
  });

  it('refuses wire messages with wrong lengths, ids or rounds, with a reason, and treats them as dropped', async () => {
    const params = { ...base, threshold: 2 };
    const clients = [0, 1, 2, 3].map((id) => new SecAggClient(id, params));
    const server = new SecAggServer(params);
    const ads = await Promise.all(clients.map((c) => c.advertiseKeys()));
    const keys = await server.advertiseKeys([
      ...ads,
      { ...(ads[0] as AdvertiseKeys), client: 9, maskingKey: new Uint8Array(64) },
      { ...(ads[1] as AdvertiseKeys), client: 1 },
      { ...(ads[2] as AdvertiseKeys), client: 8, round: 4 },
    ]);
    expect([...keys.keys()]).toEqual([0, 1, 2, 3]);
    expect(server.refused.map((r) => r.reason)).toEqual([
      expect.stringMatching(/client 9: maskingKey: expected 65 bytes, got 64/),
      expect.stringMatching(/client 1: a second message from this client/),
      expect.stringMatching(/client 8: round 4, expected 3/),
    ]);
    const shared = await Promise.all(
      clients.map((c) => c.shareKeys(keys.get(c.id) as NeighbourKeys)),
    );
    const bad = { ...(shared[3] as SharedKeys) };
    const forwarded = await server.shareKeys([
      ...shared.slice(0, 3),
      {
        ...(shared[3] as SharedKeys),
        shares: bad.shares.map((s) => ({ ...s, ciphertext: s.ciphertext.subarray(1) })),
      },
    ]);
    expect(server.refused.at(-1)?.reason).toMatch(
      /share keys, client 3: share to \d: expected 94 bytes, got 93/,
    );
    expect([...forwarded.keys()]).toEqual([0, 1, 2]);
    const values = new Float32Array(params.dimension).fill(0.25);
    const up = await Promise.all(
      [0, 1, 2].map((id) =>
        (clients[id] as SecAggClient).maskedInput(forwarded.get(id) as ForwardedShares, values),
      ),
    );
    const requests = await server.maskedInputs([
      up[0] as MaskedInput,
      up[1] as MaskedInput,
      { ...(up[2] as MaskedInput), masked: new Uint32Array(params.dimension - 1) },
    ]);
    expect(server.refused.at(-1)?.reason).toMatch(/client 2: masked: expected 500 values, got 499/);
    expect(server.participants).toEqual([0, 1]);
    const result = await server.unmask(
      [0, 1].map((id) => (clients[id] as SecAggClient).unmask(requests.get(id) as UnmaskRequest)),
    );
    expect(result.participants).toEqual([0, 1]);
    for (const x of result.sum)
      expect(Math.abs(x - 0.5)).toBeLessThan(sumErrorBound({ clip: 1, bits: 16 }, 2));
  });

  it('a client refuses server messages it must not act on', async () => {
    const params = { ...base };
    const clients = [0, 1, 2, 3].map((id) => new SecAggClient(id, params));
    const [a, b] = clients as [SecAggClient, SecAggClient];
    const server = new SecAggServer(params);
    const keys = await server.advertiseKeys(
      await Promise.all(clients.map((x) => x.advertiseKeys())),
    );
    await expect(a.shareKeys({ ...(keys.get(0) as NeighbourKeys), round: 9 })).rejects.toThrow(
      /share keys, client 0: round 9, expected 3/,
    );
    await expect(b.maskedInput({ round: 3, shares: [] }, new Float32Array(500))).rejects.toThrow(
      /called in state 'advertised', expected 'shared'/,
    );
    const rest = clients.slice(1);
    const fwd = await server.shareKeys(
      await Promise.all(rest.map((x) => x.shareKeys(keys.get(x.id) as NeighbourKeys))),
    );
    const tampered = fwd.get(1) as ForwardedShares;
    const flipped = tampered.shares.map((s, i) =>
      i === 0 ? { ...s, from: s.from === 2 ? 3 : 2 } : s,
    );
    await expect(
      b.maskedInput({ ...tampered, shares: flipped }, new Float32Array(500)),
    ).rejects.toThrow(/appears twice|fails authentication/);
    const c = clients[2] as SecAggClient;
    const up = await c.maskedInput(fwd.get(2) as ForwardedShares, new Float32Array(500));
    expect(up.masked.length).toBe(500);
    // Asking for both shares of one neighbour (as survivor and as dropped) is refused.
    expect(() => c.unmask({ round: 3, survivors: [1, 2, 3], dropped: [3] })).toThrow(
      /both survived and dropped/,
    );
  });
});

describe('neighbour graph', () => {
  it('SecAgg+ graphs are symmetric with the asked degree, complete when that covers everyone', async () => {
    const ids = [...Array(10).keys()];
    const sparse = await neighbourGraph(ids, 4, new Uint8Array(32).fill(1));
    for (const [c, near] of sparse) {
      expect(near).toHaveLength(4);
      for (const d of near) expect(sparse.get(d)).toContain(c);
    }
    const other = await neighbourGraph(ids, 4, new Uint8Array(32).fill(2));
    expect([...other.values()]).not.toEqual([...sparse.values()]);
    const full = await neighbourGraph(ids, 9, new Uint8Array(32));
    for (const [c, near] of full) expect(near).toEqual(ids.filter((d) => d !== c));
  });
});
