// connection.js: retries with capped exponential backoff, the chained long-poll loop,
// and the connected / reconnecting / offline state shown by the connection indicator.

import { ApiError, sleep } from './api.js';

const MAX_BACKOFF_MS = 30000;
/** Failures in a row after which "reconnecting" becomes "offline". */
const OFFLINE_AFTER = 4;

export class Connection {
  constructor() {
    /** 'connecting' | 'connected' | 'reconnecting' | 'offline' */
    this.state = navigator.onLine === false ? 'offline' : 'connecting';
    this.failures = 0;
    this.listeners = new Set();
    this.wakers = new Set();
    // A backoff sleep ends early when the network returns or the tab comes back.
    addEventListener('online', () => this.wake());
    addEventListener('offline', () => this.set('offline'));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.wake();
    });
  }

  /** Calls `fn(state)` now and on every change; returns an unsubscribe function. */
  subscribe(fn) {
    this.listeners.add(fn);
    fn(this.state);
    return () => this.listeners.delete(fn);
  }

  set(state) {
    if (state === this.state) return;
    this.state = state;
    for (const fn of this.listeners) fn(state);
  }

  /** Ends every backoff sleep at once. */
  wake() {
    for (const done of [...this.wakers]) done();
  }

  /**
   * Runs `fn` until it succeeds. Transient failures (network, 5xx, 429) back off
   * 1 s, 2 s, 4 s … 30 s, or as long as Retry-After says; any other error is thrown.
   */
  async run(fn, signal) {
    for (;;) {
      try {
        const value = await fn();
        this.failures = 0;
        this.set('connected');
        return value;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (!(err instanceof ApiError) || !err.transient) throw err;
        this.failures += 1;
        this.set(navigator.onLine === false || this.failures >= OFFLINE_AFTER ? 'offline' : 'reconnecting');
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
        await this.pause(err.retryAfter ? err.retryAfter * 1000 : backoff, signal);
        if (signal?.aborted) throw err;
      }
    }
  }

  pause(ms, signal) {
    const ctl = new AbortController();
    const wake = () => ctl.abort();
    this.wakers.add(wake);
    signal?.addEventListener('abort', wake, { once: true });
    return sleep(ms, ctl.signal).finally(() => {
      this.wakers.delete(wake);
      signal?.removeEventListener('abort', wake);
    });
  }
}

/**
 * Repeats `step(signal)` — one long-poll request and its handling — until
 * `signal` aborts, through `conn` so failures back off. A fatal error (401,
 * 404 …) ends the loop by rejecting.
 */
export async function pollLoop(conn, signal, step) {
  while (!signal.aborted) {
    const started = Date.now();
    let busy;
    try {
      busy = await conn.run(() => step(signal), signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    // An empty answer that came back at once (typing, read markers) is fine,
    // but never let a misbehaving server turn this into a busy loop.
    if (!busy && Date.now() - started < 300) await sleep(300, signal);
  }
}
