/**
 * WebSocket close codes of a federation (4000-4999 is the range RFC 6455 leaves to
 * applications). A client retries after any other close (a network error, a server restart);
 * after these it stops, except `replaced`, which only ends the older of two connections.
 */
export const CLOSE = {
  /** The run finished: the client exits successfully. */
  done: 4000,
  /** No valid `hello` with a token within the time allowed. */
  unauthenticated: 4001,
  /** The hello speaks another protocol version. */
  wrongVersion: 4002,
  /** The client id and token do not match. */
  forbidden: 4003,
  /** A newer connection of the same client took over. */
  replaced: 4009,
  /** The run stopped on the server before its last round: the client exits with a failure. */
  failed: 4010,
  /**
   * The client did not confirm a commit that aggregated its upload: it reconnects, and its hello
   * gets it the commit again if it missed it.
   */
  unconfirmed: 4011,
} as const;

/** Close codes after which a client does not reconnect. */
export const FINAL_CLOSES: ReadonlySet<number> = new Set([
  CLOSE.done,
  CLOSE.unauthenticated,
  CLOSE.wrongVersion,
  CLOSE.forbidden,
  CLOSE.replaced,
  CLOSE.failed,
]);
