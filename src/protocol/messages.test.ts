import { describe, expect, it } from 'vitest';
import type { Download, Upload } from '../algorithms/types.js';
import { pack } from '../codec/wire.js';
import { type Task, TRAIN_DEFAULTS } from '../runtime/task.js';
import { downloadProblem } from './checks.js';
import {
  decodeToHost,
  decodeToServer,
  encodeMessage,
  PROTOCOL_VERSION,
  ProtocolError,
  type ToHost,
  type ToServer,
} from './messages.js';

const v = PROTOCOL_VERSION;

const download = (): Download => ({
  round: 3,
  params: {
    w: {
      kind: 'lowrank',
      shape: [2, 3],
      rows: 2,
      cols: 3,
      rank: 1,
      left: Float32Array.from([1, 2]),
      right: Float32Array.from([3, 4, 5]),
    },
    b: { kind: 'sparse', shape: [3], indices: Uint32Array.from([2]), values: Float32Array.of(7) },
  },
  extra: { c: { b: { shape: [3], data: Float32Array.from([0.5, -1, 2]) } } },
  scalars: { lr: 0.05 },
});

const upload = (): Upload => ({
  round: 3,
  params: { b: { kind: 'dense', shape: [3], data: Float32Array.from([1, 2, 3]) } },
  numSamples: 12,
  trainLoss: Number.NaN,
  trainAcc: 0.25,
});

const task: Task = {
  seed: 1,
  numClients: 4,
  model: { name: 'mlp', hidden: [8], inputShape: [28, 28, 1], classes: 10 },
  train: TRAIN_DEFAULTS,
  algorithm: { name: 'fedavg', weighted: true },
};

describe('protocol messages', () => {
  it('come back from their bytes as they were sent, typed arrays included', () => {
    const toHost: ToHost[] = [
      { v, type: 'welcome', task },
      { v, type: 'train', round: 3, attempt: 1, client: 2, download: download() },
      { v, type: 'commit', round: 3, attempt: 1, accepted: [0, 2] },
      {
        v,
        type: 'evaluate',
        round: 4,
        attempt: 0,
        clients: [1],
        evalGlobal: true,
        download: download(),
      },
      { v, type: 'error', message: 'no', round: 3 },
    ];
    for (const m of toHost) expect(decodeToHost(encodeMessage(m))).toEqual(m);
    const toServer: ToServer[] = [
      { v, type: 'hello', clients: [0, 1], committed: -1, token: 't' },
      { v, type: 'update', round: 3, attempt: 1, client: 2, upload: upload() },
      { v, type: 'committed', round: 3, attempt: 1, clients: [2] },
      {
        v,
        type: 'metrics',
        round: 4,
        attempt: 0,
        client: 1,
        row: { n: 20, global: { acc: 0.5, loss: Number.NaN }, density: 0.1 },
      },
    ];
    for (const m of toServer) expect(decodeToServer(encodeMessage(m))).toEqual(m);
    const back = decodeToHost(encodeMessage(toHost[1]!));
    if (back.type !== 'train') throw new Error('expected a train message');
    const w = back.download.params['w']!;
    expect(w.kind === 'lowrank' && w.left).toBeInstanceOf(Float32Array);
    expect(back.download.extra!['c']!['b']!.data).toBeInstanceOf(Float32Array);
  });

  it('refuse what is not a message of this protocol version, saying what is wrong', () => {
    const refuse = (bytes: Uint8Array, what: RegExp) => {
      expect(() => decodeToServer(bytes, 'client 7')).toThrow(ProtocolError);
      expect(() => decodeToServer(bytes, 'client 7')).toThrow(what);
    };
    refuse(Uint8Array.from([0xc1, 0xff, 0x00]), /client 7: not a MessagePack message/);
    refuse(pack({ v: 2, type: 'hello' }), /speaks protocol version 2; this side speaks 1/);
    refuse(pack('hello'), /speaks protocol version undefined/);
    refuse(pack({ v, type: 'goodbye' }), /malformed message: type: /);
    refuse(pack({ v, type: 'hello', clients: [], committed: -1 }), /clients: /);
    refuse(pack({ v, type: 'hello', clients: [1], committed: -1, admin: true }), /admin/);
    refuse(
      pack({ v, type: 'committed', round: -1, attempt: 0, clients: [] }),
      /round: .*>=0|round: /,
    );
    const up = { v, type: 'update', round: 3, attempt: 0, client: 1, upload: upload() };
    refuse(pack({ ...up, upload: { ...upload(), numSamples: 1.5 } }), /upload.numSamples/);
    refuse(pack({ ...up, upload: { ...upload(), sneaky: 1 } }), /unknown field\(s\) sneaky/);
    const short = { kind: 'dense', shape: [4], data: Float32Array.from([1, 2, 3]) };
    refuse(
      pack({ ...up, upload: { ...upload(), params: { b: short } } }),
      /upload.params.b: sizes do not match shape \[4\]/,
    );
    const negative = { ...short, shape: [-1, -3] };
    refuse(pack({ ...up, upload: { ...upload(), params: { b: negative } } }), /expected counts/);
    const bigRank = {
      kind: 'lowrank',
      shape: [2, 3],
      rows: 2,
      cols: 3,
      rank: 0.5,
      left: new Float32Array(1),
      right: new Float32Array(1),
    };
    refuse(
      pack({ ...up, upload: { ...upload(), params: { w: bigRank } } }),
      /rank: expected a count/,
    );
  });

  it('check a download against the model before a client trains on it', () => {
    const spec = [
      { name: 'w', shape: [2, 3], role: 'dense' as const },
      { name: 'b', shape: [3], role: 'bias' as const },
    ];
    expect(downloadProblem(download(), 3, spec)).toBeNull();
    expect(downloadProblem(download(), 4, spec)).toBe('download is for round 3, not 4');
    expect(downloadProblem(download(), 3, spec.slice(1))).toBe("'w' is not a tensor of the model");
    const nan = download();
    nan.extra!['c']!['b']!.data[1] = Number.NaN;
    expect(downloadProblem(nan, 3, spec)).toBe("extra 'c': 'b' has a value that is not finite");
  });

  it('carry the secure-aggregation stages through MessagePack, words and bytes revived', () => {
    const head = { v, round: 2, attempt: 0, client: 4 } as const;
    const masked: ToServer = {
      ...head,
      type: 'secagg-masked',
      masked: Uint32Array.from([0, 1, 2 ** 32 - 1]),
    };
    const back = decodeToServer(encodeMessage(masked));
    expect(back.type === 'secagg-masked' && back.masked).toEqual(masked.masked);
    expect(back.type === 'secagg-masked' && back.masked).toBeInstanceOf(Uint32Array);
    const keys: ToServer = {
      ...head,
      type: 'secagg-keys',
      encryptionKey: new Uint8Array(65).fill(1),
      maskingKey: new Uint8Array(65).fill(2),
      numSamples: 10,
      trainLoss: 0.5,
      trainAcc: 0.75,
    };
    const keysBack = decodeToServer(encodeMessage(keys));
    expect(keysBack.type === 'secagg-keys' && [...keysBack.maskingKey]).toEqual([
      ...keys.maskingKey,
    ]);
    const unmask: ToHost = { ...head, type: 'secagg-unmask', survivors: [1, 4], dropped: [2] };
    expect(decodeToHost(encodeMessage(unmask))).toEqual(unmask);
    const train = { ...head, type: 'train', download: download() };
    const secure = { threshold: 3, clip: 1, quantizationBits: 16 };
    expect(decodeToHost(pack({ ...train, secure }))).toMatchObject({ secure });
    expect(() => decodeToHost(pack({ ...train, secure: { ...secure, threshold: 1 } }))).toThrow(
      /secure\.threshold/,
    );
    expect(() =>
      decodeToServer(pack({ ...masked, masked: new Uint8Array(5) }), 'client 4'),
    ).toThrow(/client 4: malformed message: masked: expected Uint32 words/);
    expect(() => decodeToServer(pack({ ...keys, maskingKey: 'key' }))).toThrow(
      /maskingKey: expected bytes/,
    );
  });
});
