// outbox.js: messages written but not yet confirmed by the server. They are sent one
// at a time in order, each with its client_id so a retry never duplicates; while the
// server cannot be reached they wait ("queued"), optionally persisted in localStorage
// so they survive a reload and are shared by every tab of the browser.

import { store, timeOrderedId } from './api.js';

const MAX_BACKOFF_MS = 30000;

export class Outbox {
  /**
   * @param {object} o
   * @param {string|null} o.key       localStorage key, or null to keep the queue in memory
   * @param {string|null} [o.lock]    Web Lock name serialising sends across tabs
   * @param {(item) => Promise<object>} o.send  sends one item, resolves with the server message
   * @param {() => void} o.onChange   the items or their states changed
   * @param {(message, item) => void} [o.onSent]
   */
  constructor(o) {
    Object.assign(this, { lock: null, onSent: null }, o);
    this.items = this.read().map((it) => (it.state === 'sending' ? { ...it, state: 'queued' } : it));
    this.flushing = false;
    this.again = false;
    this.failures = 0;
    this.timer = 0;
    if (this.key) {
      addEventListener('storage', (e) => {
        if (e.key !== this.key) return;
        this.items = this.read();
        this.onChange();
      });
    }
  }

  read() {
    if (!this.key) return this.items ?? [];
    const items = store.get(this.key);
    return Array.isArray(items) ? items : [];
  }

  save() {
    if (this.key) {
      if (this.items.length) store.set(this.key, this.items);
      else store.remove(this.key);
    }
    this.onChange();
  }

  /** Queues `body` and starts sending; returns the new item. */
  add(body, extra = {}) {
    const item = { client_id: timeOrderedId(), body, created_at: new Date().toISOString(), state: 'sending', ...extra };
    this.items = [...this.read(), item];
    this.save();
    this.flush();
    return item;
  }

  retry(clientId) {
    this.items = this.read().map((it) => (it.client_id === clientId ? { ...it, state: 'queued', error: undefined } : it));
    this.save();
    this.flush();
  }

  discard(clientId) {
    this.items = this.read().filter((it) => it.client_id !== clientId);
    this.save();
  }

  /** Forgets everything (a new identity: these can no longer be sent). */
  clear() {
    this.items = [];
    this.save();
  }

  get waiting() {
    return this.items.some((it) => it.state !== 'failed');
  }

  /** Sends every waiting item, in order. Safe to call any time; calls coalesce. */
  async flush() {
    clearTimeout(this.timer);
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.again = false;
        if (this.lock && navigator.locks) await navigator.locks.request(this.lock, () => this.drain());
        else await this.drain();
      } while (this.again);
    } finally {
      this.flushing = false;
    }
  }

  async drain() {
    this.items = this.read();
    const tried = new Set();
    for (;;) {
      const item = this.items.find((it) => it.state !== 'failed' && !tried.has(it.client_id));
      if (!item) return;
      tried.add(item.client_id);
      this.update(item.client_id, { state: 'sending' });
      let message;
      try {
        message = await this.send(item);
      } catch (err) {
        if (err?.transient) {
          // Keep the order: this one and everything after it wait for the connection.
          this.items = this.read().map((it) => (it.state === 'sending' ? { ...it, state: 'queued' } : it));
          this.save();
          this.schedule(err.retryAfter);
          return;
        }
        this.update(item.client_id, { state: 'failed', error: err?.message ?? 'Failed' });
        continue;
      }
      this.failures = 0;
      // Show the confirmed message before its optimistic copy goes, so nothing flickers.
      this.onSent?.(message, item);
      this.items = this.read().filter((it) => it.client_id !== item.client_id);
      this.save();
    }
  }

  update(clientId, patch) {
    this.items = this.read().map((it) => (it.client_id === clientId ? { ...it, ...patch } : it));
    this.save();
  }

  schedule(retryAfter) {
    this.failures += 1;
    const delay = retryAfter ? retryAfter * 1000 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }
}
