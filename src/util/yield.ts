/**
 * Lets the event loop run (messages, timers, a page's rendering) before going on: local training
 * calls it between batches, so a client host answers its messages and a browser tab never freezes
 * for a whole epoch. Node and browsers alike; no Node built-in is imported.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  // Browsers: a message on a channel runs at the next turn, without setTimeout's 4 ms clamp.
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    // The DOM's MessagePort (Node's typings, used to compile, have no onmessage).
    (port1 as unknown as { onmessage: () => void }).onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}
