/**
 * The messages between a server (the round loop) and the hosts of its clients, as MessagePack,
 * checked at run time on arrival. The same messages go over a worker thread's MessagePort and, in
 * a federation, over a WebSocket.
 *
 * A host says `hello` (the clients it hosts), the server answers `welcome` with the task. Each
 * round the server sends `train` to each drawn client; the host answers `update` (its upload) or
 * `error`. The server then sends `commit` naming the clients whose uploads it aggregated: their
 * hosts make the state they trained their committed state, every other host drops it, and each
 * answers `committed`. For an evaluation the server sends `evaluate` (what every client is sent
 * for it, and which clients) and gets one `metrics` per client. Every message carries the
 * protocol version; every message about a round carries the round and an attempt id (a round that
 * is drawn again gets a new attempt), so a late answer to an earlier attempt is told apart.
 *
 * A round with secure aggregation (secagg/) adds its stages: `train` carries the round's
 * `secure` parameters and the host answers `secagg-keys` (its public keys and training
 * statistics, no parameters); then `secagg-neighbours` -> `secagg-shared`, `secagg-forwarded` ->
 * `secagg-masked` (the masked, quantized update) and `secagg-unmask` -> `secagg-unmasked`, one
 * message per client each. The clients in the unmasking stage's sum are the ones committed.
 */
import { z } from 'zod';
import { decodeDownload, decodeUpload } from '../codec/messages.js';
import { pack, unpack } from '../codec/wire.js';
import { taskSchema } from '../runtime/task.js';

export const PROTOCOL_VERSION = 1;

/** A message that is not one of the protocol's, or not well formed. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

const count = z.number().int().nonnegative();
/** Any number, NaN and infinities included (a diverged client's loss, an empty test set's). */
const anyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

/** A field decoded by a codec/messages.ts decoder; its errors become the field's issue. */
function decoded<T>(decode: (raw: unknown, where: string) => T, name: string) {
  return z.unknown().transform((raw, ctx): T => {
    try {
      return decode(raw, name);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
}

const v = z.literal(PROTOCOL_VERSION);
const roundFields = { v, round: count, attempt: count };
const score = z.strictObject({ acc: anyNumber, loss: anyNumber });

const errorMessage = z.strictObject({
  v,
  type: z.literal('error'),
  message: z.string(),
  round: count.optional(),
  attempt: count.optional(),
  client: count.optional(),
});

/**
 * How a network client rebuilds its shard of a named dataset the way the simulator does (same
 * seed and partition): the config's `data` section without its server-side directory. The
 * client checks the dataset name and the partition's options against the config's schema (they
 * need Node's data loaders, which this browser-safe module does not import).
 */
export const shardSourceSchema = z.strictObject({
  dataset: z.string().min(1),
  partition: z.looseObject({ kind: z.string() }),
  testPerClient: count.positive(),
});
export type ShardSource = z.output<typeof shardSourceSchema>;

/**
 * Bytes (MessagePack's bin), copied into a plain Uint8Array: in Node they arrive as a Buffer,
 * which some libraries (Shamir's `combine`) refuse.
 */
const bytes = z
  .custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes')
  .transform((b): Uint8Array => new Uint8Array(b));

/** Uint32 words, sent as their bytes (little-endian, as every JavaScript platform stores them). */
const words = z.unknown().transform((raw, ctx): Uint32Array => {
  if (raw instanceof Uint32Array) return raw;
  if (raw instanceof Uint8Array && raw.byteLength % 4 === 0)
    return new Uint32Array(new Uint8Array(raw).buffer);
  ctx.addIssue({ code: 'custom', message: 'expected Uint32 words (bytes, a multiple of 4)' });
  return z.NEVER;
});

/** What a client needs of a round's secure aggregation besides its neighbours' keys. */
export const secureRoundSchema = z.strictObject({
  threshold: z.number().int().min(2).max(254),
  clip: z.number().positive(),
  quantizationBits: z.number().int().min(1).max(31),
});
export type SecureRound = z.output<typeof secureRoundSchema>;

const clientFields = { ...roundFields, client: count };

const toHostSchema = z.discriminatedUnion('type', [
  z.strictObject({
    v,
    type: z.literal('welcome'),
    task: taskSchema,
    /** A network server's description of the clients' data (worker threads are given it). */
    data: shardSourceSchema.optional(),
  }),
  z.strictObject({
    ...roundFields,
    type: z.literal('train'),
    client: count,
    download: decoded(decodeDownload, 'download'),
    secure: secureRoundSchema.optional(),
  }),
  z.strictObject({ ...roundFields, type: z.literal('commit'), accepted: z.array(count) }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-neighbours'),
    neighbours: z.array(z.strictObject({ client: count, encryptionKey: bytes, maskingKey: bytes })),
  }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-forwarded'),
    shares: z.array(z.strictObject({ from: count, ciphertext: bytes })),
  }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-unmask'),
    survivors: z.array(count),
    dropped: z.array(count),
  }),
  z.strictObject({
    ...roundFields,
    type: z.literal('evaluate'),
    clients: z.array(count),
    evalGlobal: z.boolean(),
    download: decoded(decodeDownload, 'download'),
  }),
  errorMessage,
]);

const toServerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    v,
    type: z.literal('hello'),
    clients: z.array(count).min(1),
    /** The last round whose commit the host applied (-1: none). */
    committed: z.number().int().min(-1),
    token: z.string().optional(),
  }),
  z.strictObject({
    ...roundFields,
    type: z.literal('update'),
    client: count,
    upload: decoded(decodeUpload, 'upload'),
  }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-keys'),
    encryptionKey: bytes,
    maskingKey: bytes,
    numSamples: count,
    trainLoss: anyNumber,
    trainAcc: anyNumber,
  }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-shared'),
    shares: z.array(z.strictObject({ to: count, ciphertext: bytes })),
  }),
  z.strictObject({ ...clientFields, type: z.literal('secagg-masked'), masked: words }),
  z.strictObject({
    ...clientFields,
    type: z.literal('secagg-unmasked'),
    seedShares: z.array(z.strictObject({ of: count, share: bytes })),
    keyShares: z.array(z.strictObject({ of: count, share: bytes })),
  }),
  z.strictObject({ ...roundFields, type: z.literal('committed'), clients: z.array(count) }),
  z.strictObject({
    ...roundFields,
    type: z.literal('metrics'),
    client: count,
    row: z.strictObject({
      n: count,
      global: score.optional(),
      personal: score.optional(),
      density: anyNumber.optional(),
      discarded: count.optional(),
    }),
  }),
  errorMessage,
]);

/** Messages to a client host. */
export type ToHost = z.output<typeof toHostSchema>;
/** Messages from a client host. */
export type ToServer = z.output<typeof toServerSchema>;
export type ErrorMessage = z.output<typeof errorMessage>;
/** The server's messages of secure aggregation's stages after `train`. */
export type SecureToHost = Extract<
  ToHost,
  { type: 'secagg-neighbours' | 'secagg-forwarded' | 'secagg-unmask' }
>;
/** A host's answers in those stages. */
export type SecureToServer = Extract<
  ToServer,
  { type: 'secagg-shared' | 'secagg-masked' | 'secagg-unmasked' }
>;
/** A host's answer to a secure round's `train`: its public keys and training statistics. */
export type SecureKeys = Extract<ToServer, { type: 'secagg-keys' }>;

export function encodeMessage(m: ToHost | ToServer): Uint8Array {
  return pack(m);
}

function decodeWith<T>(schema: z.ZodType<T>, bytes: Uint8Array, from: string): T {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (err) {
    throw new ProtocolError(
      `${from}: not a MessagePack message (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const version = (raw as { v?: unknown } | null)?.v;
  if (version !== PROTOCOL_VERSION)
    throw new ProtocolError(
      `${from}: speaks protocol version ${String(version)}; this side speaks ${PROTOCOL_VERSION}`,
    );
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
  throw new ProtocolError(`${from}: malformed message: ${issues.join('; ')}`);
}

/** A message to a host from its bytes; throws ProtocolError saying what is wrong. */
export function decodeToHost(bytes: Uint8Array, from = 'server'): ToHost {
  return decodeWith(toHostSchema, bytes, from);
}

/** A message to the server from its bytes; throws ProtocolError saying what is wrong. */
export function decodeToServer(bytes: Uint8Array, from = 'client host'): ToServer {
  return decodeWith(toServerSchema, bytes, from);
}
