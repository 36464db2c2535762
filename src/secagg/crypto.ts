/**
 * The cryptographic primitives of secure aggregation, all WebCrypto (`globalThis.crypto`, the
 * same in Node 20 and browsers):
 * - key agreement: ECDH on P-256; public keys travel as 65-byte uncompressed points;
 * - key derivation: the 32-byte ECDH secret through HKDF-SHA-256, with an `info` naming the
 *   purpose, the round and the pair (smaller id first), so every pair and round gets its own key;
 * - mask streams: AES-256-CTR keystream (encryption of zeros) read as little-endian Uint32 words;
 * - share encryption: AES-256-GCM with a random 12-byte IV.
 * Uint32 words are read in the platform's byte order, which is little-endian on every platform
 * that runs JavaScript today; clients and server must agree on it.
 */
const subtle = globalThis.crypto.subtle;

/** WebCrypto's key object (named here so that no DOM or Node type library is needed). */
export type CryptoKey = Awaited<ReturnType<typeof subtle.importKey>>;

export const PUBLIC_KEY_BYTES = 65;
export const SEED_BYTES = 32;
const IV_BYTES = 12;
const HKDF_SALT = new TextEncoder().encode('fedslr-secagg v1');
/** AES-CTR encrypts at most this many bytes per call (a bound on peak memory, not on length). */
const STREAM_CHUNK_BYTES = 1 << 24;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: CryptoKey;
}

export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536)
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  return out;
}

/** A fresh P-256 ECDH key pair; the private key is extractable so that it can be secret-shared. */
export async function generateKeyPair(): Promise<KeyPair> {
  const pair = (await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as { publicKey: CryptoKey; privateKey: CryptoKey };
  const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  return { publicKey, privateKey: pair.privateKey };
}

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array {
  const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The 32-byte private scalar d of a P-256 key (what is secret-shared). */
export async function privateScalar(key: CryptoKey): Promise<Uint8Array> {
  const jwk = await subtle.exportKey('jwk', key);
  if (!jwk.d) throw new Error('private key has no scalar');
  return fromBase64url(jwk.d);
}

/** The private key from its scalar d and its 65-byte public point (x and y). */
export async function importPrivateScalar(
  d: Uint8Array,
  publicKey: Uint8Array,
): Promise<CryptoKey> {
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: base64url(publicKey.subarray(1, 33)),
    y: base64url(publicKey.subarray(33, 65)),
    d: base64url(d),
    ext: true,
  } as const;
  return subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
}

/**
 * `bytes` on a plain ArrayBuffer, as WebCrypto's types ask (a view of shared memory is copied).
 */
function onArrayBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}

/** Imports a peer's public key; throws when the bytes are not a point on P-256. */
export async function importPublicKey(publicKey: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey(
    'raw',
    onArrayBuffer(publicKey),
    { name: 'ECDH', namedCurve: 'P-256' },
    false,
    [],
  );
}

/** HKDF-SHA-256 of the ECDH secret between `privateKey` and `peer`, for `purpose` and pair. */
export async function agreeSeed(
  privateKey: CryptoKey,
  peer: CryptoKey,
  purpose: 'mask' | 'share-encryption',
  round: number,
  a: number,
  b: number,
): Promise<Uint8Array> {
  const secret = await subtle.deriveBits({ name: 'ECDH', public: peer }, privateKey, 256);
  const hkdfKey = await subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const info = new TextEncoder().encode(
    `${purpose}|round ${round}|${Math.min(a, b)}|${Math.max(a, b)}`,
  );
  const seed = await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info },
    hkdfKey,
    SEED_BYTES * 8,
  );
  return new Uint8Array(seed);
}

/** `length` pseudo-random Uint32 words: the AES-256-CTR keystream under the 32-byte `seed`. */
export async function expandSeed(seed: Uint8Array, length: number): Promise<Uint32Array> {
  const key = await subtle.importKey('raw', onArrayBuffer(seed), 'AES-CTR', false, ['encrypt']);
  const out = new Uint32Array(length);
  const bytes = new Uint8Array(out.buffer);
  const zeros = new Uint8Array(Math.min(bytes.length, STREAM_CHUNK_BYTES));
  for (let start = 0; start < bytes.length; start += STREAM_CHUNK_BYTES) {
    const size = Math.min(STREAM_CHUNK_BYTES, bytes.length - start);
    // The counter block of this chunk: 16-byte big-endian block index (chunks are whole blocks).
    const counter = new Uint8Array(16);
    new DataView(counter.buffer).setUint32(12, start / 16);
    const chunk = await subtle.encrypt(
      { name: 'AES-CTR', counter, length: 64 },
      key,
      zeros.subarray(0, size),
    );
    bytes.set(new Uint8Array(chunk), start);
  }
  return out;
}

export const ENCRYPTION_OVERHEAD = IV_BYTES + 16;

/** AES-256-GCM under `seed`: IV || ciphertext || tag, with `header` as authenticated data. */
export async function encrypt(
  seed: Uint8Array,
  header: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const key = await subtle.importKey('raw', onArrayBuffer(seed), 'AES-GCM', false, ['encrypt']);
  const iv = randomBytes(IV_BYTES);
  const body = await subtle.encrypt(
    { name: 'AES-GCM', iv: onArrayBuffer(iv), additionalData: onArrayBuffer(header) },
    key,
    onArrayBuffer(plaintext),
  );
  const out = new Uint8Array(IV_BYTES + body.byteLength);
  out.set(iv);
  out.set(new Uint8Array(body), IV_BYTES);
  return out;
}

/** Inverse of `encrypt`; returns undefined when authentication fails (wrong key, header, bytes). */
export async function decrypt(
  seed: Uint8Array,
  header: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array | undefined> {
  const key = await subtle.importKey('raw', onArrayBuffer(seed), 'AES-GCM', false, ['decrypt']);
  try {
    const plain = await subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: onArrayBuffer(ciphertext.subarray(0, IV_BYTES)),
        additionalData: onArrayBuffer(header),
      },
      key,
      onArrayBuffer(ciphertext.subarray(IV_BYTES)),
    );
    return new Uint8Array(plain);
  } catch {
    return undefined;
  }
}
