/**
 * The neighbour graph of SecAgg+ (Bell et al., CCS 2020): each client masks with, and shares its
 * secrets among, only its neighbours. With `degree` k, the clients are shuffled into a ring and
 * each is joined to the ceil(k/2) next and previous ones (a Harary graph), so the graph is
 * symmetric and every client has 2 ceil(k/2) neighbours, or all the others when that is as many.
 * Without a degree the graph is complete (Bonawitz et al., CCS 2017). The shuffle comes from the
 * AES-CTR stream of `seed` (the graph is public; only its randomness matters).
 */
import { expandSeed } from './crypto.js';

export async function neighbourGraph(
  clients: readonly number[],
  degree: number | undefined,
  seed: Uint8Array,
): Promise<Map<number, number[]>> {
  const n = clients.length;
  const half = degree === undefined ? n : Math.ceil(degree / 2);
  const graph = new Map<number, number[]>();
  if (2 * half >= n - 1) {
    for (const c of clients)
      graph.set(
        c,
        clients.filter((d) => d !== c),
      );
    return graph;
  }
  const ring = [...clients];
  const words = await expandSeed(seed, n);
  for (let i = n - 1; i > 0; i--) {
    // Bias of the modulo: at most n / 2^32 per draw.
    const j = (words[i] as number) % (i + 1);
    [ring[i], ring[j]] = [ring[j] as number, ring[i] as number];
  }
  ring.forEach((c, i) => {
    const near: number[] = [];
    for (let s = 1; s <= half; s++)
      near.push(ring[(i + s) % n] as number, ring[(i - s + n) % n] as number);
    graph.set(
      c,
      near.sort((a, b) => a - b),
    );
  });
  return graph;
}
