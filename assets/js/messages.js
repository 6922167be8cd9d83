// messages.js: the conversation log shared by both pages — keyed rendering of server
// messages and optimistic ones, day separators, delivery status, scroll-follow and the
// "New messages" pill, attachments and uploads in progress, private notes (agents only).

import {
  appendLinkified, dayKey, dayLabel, formatFull, formatSize, formatTime, h, icon, ICONS,
} from './format.js';
import { t } from './i18n.js';

/** Consecutive messages of one author closer than this share one bubble group. */
const GROUP_GAP_MS = 5 * 60 * 1000;
/** How close to the bottom (px) still counts as "reading the latest". */
const NEAR_BOTTOM_PX = 80;
/** How long a message found by search stays highlighted. */
const HIGHLIGHT_MS = 4000;

/** System events with a text of their own; any other shows as a generic update. */
const EVENTS = new Set(['closed', 'reopened', 'assigned']);
const STATUS_ICON = { sending: ICONS.clock, queued: ICONS.clock, failed: ICONS.alert, sent: ICONS.check, read: ICONS.checks };
/** Shown inline as a picture; the server serves only raster types inline, never SVG. */
const PREVIEW_TYPES = /^image\/(png|jpeg|gif|webp)$/;

/** Messages per history request (`before=`): the first screen and each "load earlier". */
export const HISTORY_PAGE = 50;

/**
 * "Load earlier messages": fetches the page before the oldest message `list` shows and
 * prepends it, unless the page moved to another conversation meanwhile (`stillCurrent`).
 * @param {object} o
 * @param {{request: Function}} o.api
 * @param {MessageList} o.list
 * @param {HTMLButtonElement} o.button  the "load earlier" button; hidden when no more
 * @param {string} o.chatId
 * @param {() => boolean} o.stillCurrent
 * @param {(mode: string) => void} o.render
 * @param {(text: string) => void} o.toast
 */
export async function loadEarlier({ api, list, button, chatId, stillCurrent, render, toast }) {
  const before = list.minSeq;
  if (before === null) return;
  button.disabled = true;
  try {
    const page = await api.request('GET', `/chats/${chatId}/messages`, { query: { before, limit: HISTORY_PAGE } });
    if (!stillCurrent()) return;
    list.add(page.messages);
    button.hidden = !page.has_more;
    render('prepend');
  } catch {
    toast(t('loadEarlierFailed'));
  } finally {
    button.disabled = false;
  }
}

export class MessageList {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller  the scrolling box
   * @param {HTMLElement} o.list      the <ol> inside it
   * @param {HTMLElement} o.pill      the "New messages" button
   * @param {'visitor'|'agent'} o.me  whose messages go on the right
   * @param {(msg) => string|null} [o.authorLabel] name shown above a group, or null
   * @param {(clientId) => void} [o.onRetry]
   * @param {(clientId) => void} [o.onDiscard]
   * @param {() => void} [o.onSeen]   the reader is at the bottom (mark read)
   * @param {(url) => Promise<Blob>} [o.fetchBlob]
   */
  constructor(o) {
    Object.assign(this, o);
    this.byId = new Map();
    this.pending = [];
    this.otherRead = 0;
    this.nodes = new Map();
    this.blobUrls = new Map();
    this.scroller.addEventListener('scroll', () => {
      if (this.nearBottom()) {
        this.pill.hidden = true;
        this.onSeen?.();
      }
    }, { passive: true });
    this.pill.addEventListener('click', () => this.scrollToBottom(true));
  }

  reset() {
    this.byId.clear();
    this.pending = [];
    this.otherRead = 0;
    this.nodes.clear();
    this.list.replaceChildren();
    this.pill.hidden = true;
    for (const p of this.blobUrls.values()) p.then((url) => URL.revokeObjectURL(url), () => {});
    this.blobUrls.clear();
  }

  /** Whether message `id` (a server id) is loaded. */
  has(id) {
    return this.byId.has(id);
  }

  /** Highest seq shown, 0 when none. */
  get maxSeq() {
    let max = 0;
    for (const m of this.byId.values()) if (m.seq > max) max = m.seq;
    return max;
  }

  /** Lowest seq shown, or null when none. */
  get minSeq() {
    let min = null;
    for (const m of this.byId.values()) if (min === null || m.seq < min) min = m.seq;
    return min;
  }

  get size() {
    return this.byId.size + this.pending.length;
  }

  /** Messages from the other side with seq above `seq`. */
  countTheirsAfter(seq) {
    let n = 0;
    for (const m of this.byId.values()) if (m.seq > seq && m.sender !== this.me && m.sender !== 'system') n += 1;
    return n;
  }

  /** Adds server messages (deduplicated by id); returns the ones that were new. */
  add(messages) {
    const fresh = [];
    for (const m of messages ?? []) {
      if (!m || !m.id) continue;
      if (!this.byId.has(m.id)) fresh.push(m);
      this.byId.set(m.id, m);
    }
    if (fresh.length) {
      const confirmed = new Set(fresh.filter((m) => m.client_id && m.sender === this.me).map((m) => m.client_id));
      this.pending = this.pending.filter((p) => !confirmed.has(p.client_id));
    }
    return fresh;
  }

  /** Replaces the optimistic messages: [{client_id, body, created_at, state}]. */
  setPending(items) {
    const confirmed = new Set();
    for (const m of this.byId.values()) if (m.client_id && m.sender === this.me) confirmed.add(m.client_id);
    this.pending = items.filter((p) => !confirmed.has(p.client_id));
  }

  /** Moves the progress bar of the pending upload `clientId` to `fraction` (0…1). */
  setProgress(clientId, fraction) {
    const bar = this.nodes.get('c:' + clientId)?.el?.querySelector('progress');
    if (bar) bar.value = fraction;
  }

  /** The other side has read up to `seq`. */
  setOtherRead(seq) {
    if (Number.isFinite(seq) && seq > this.otherRead) this.otherRead = seq;
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  /**
   * Scrolls message `id` to the middle of the view, focuses it and marks it for a few
   * seconds (`data-highlighted`); false when it is not shown.
   */
  highlight(id) {
    const el = this.list.querySelector(`[data-message-id="${CSS.escape(id)}"]`);
    if (!el) return false;
    el.scrollIntoView({ block: 'center' });
    el.tabIndex = -1;
    el.focus({ preventScroll: true });
    el.dataset.highlighted = 'true';
    setTimeout(() => delete el.dataset.highlighted, HIGHLIGHT_MS);
    return true;
  }

  scrollToBottom(smooth = false) {
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    this.pill.hidden = true;
  }

  /**
   * Brings the DOM up to date. `mode`: 'bottom' scrolls down, 'prepend' keeps
   * the view still while older messages appear above, 'auto' follows new
   * messages only when the reader is already at the bottom.
   */
  render(mode = 'auto') {
    const s = this.scroller;
    const wasNear = this.nearBottom();
    const oldHeight = s.scrollHeight;
    const oldTop = s.scrollTop;
    let newTheirs = false;
    let cursor = this.list.firstChild;
    const keep = new Set();
    for (const item of this.layout()) {
      keep.add(item.key);
      let node = this.nodes.get(item.key);
      if (!node) {
        node = { el: null, sig: null };
        this.nodes.set(item.key, node);
        if (item.msg && !item.mine && item.msg.sender !== 'system') newTheirs = true;
      }
      if (node.sig !== item.sig) {
        node.el = this.build(item);
        node.sig = item.sig;
      }
      if (node.el === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node.el, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const key of this.nodes.keys()) if (!keep.has(key)) this.nodes.delete(key);

    if (mode === 'prepend') s.scrollTop = oldTop + (s.scrollHeight - oldHeight);
    else if (mode === 'bottom' || wasNear) this.scrollToBottom();
    else if (newTheirs) this.pill.hidden = false;
    if (this.nearBottom()) this.onSeen?.();
  }

  /** The rows to show, in order: day separators and messages, each with a key and a signature. */
  layout() {
    const server = [...this.byId.values()].sort((a, b) => a.seq - b.seq);
    const rows = [];
    let prev = null;
    let day = null;
    const push = (msg, pending) => {
      const when = msg.created_at;
      const dk = dayKey(when);
      if (dk !== day) {
        day = dk;
        prev = null;
        const label = dayLabel(when);
        rows.push({ key: 'd:' + dk, sig: label, label });
      }
      const mine = msg.sender === this.me;
      const authorId = msg.author?.id ?? msg.sender;
      const cont = !!prev && msg.sender !== 'system' && prev.sender === msg.sender
        && (prev.author?.id ?? prev.sender) === authorId && !!prev.private === !!msg.private
        && new Date(when) - new Date(prev.created_at) < GROUP_GAP_MS;
      // A private note is never read by the visitor: it is only sent.
      const status = mine ? (pending ? msg.state : msg.seq <= this.otherRead && !msg.private ? 'read' : 'sent') : '';
      const key = msg.client_id && mine ? 'c:' + msg.client_id : 'm:' + msg.id;
      // Upload progress is not in the signature: setProgress moves the bar in place.
      const sig = [msg.id ?? '', status, cont, msg.body, msg.attachment?.id ?? '', msg.author?.name ?? '',
        msg.upload?.name ?? '', msg.error ?? '', msg.retryable !== false, !!msg.private].join('\u0001');
      rows.push({ key, sig, msg, pending, mine, cont, status });
      prev = msg;
    };
    for (const m of server) push(m, false);
    for (const p of this.pending) push({ ...p, sender: this.me, author: null }, true);
    return rows;
  }

  build(item) {
    if (!item.msg) {
      // A plain item: a separator role is not allowed as a list's child.
      return h('li', { className: 'day' }, h('span', {}, item.label));
    }
    const { msg, pending, mine, cont, status } = item;
    const time = h('time', { dateTime: msg.created_at, title: formatFull(msg.created_at) }, formatTime(msg.created_at));

    if (msg.sender === 'system') {
      const li = h('li', { className: 'notice notice--' + (msg.event ?? 'info') },
        h('span', { className: 'notice__text' }, msg.body?.trim() || t('event.' + (EVENTS.has(msg.event) ? msg.event : 'other'))), ' · ', time);
      li.dataset.messageId = msg.id;
      li.dataset.seq = msg.seq;
      if (msg.event) li.dataset.event = msg.event;
      return li;
    }

    const li = h('li', { className: `msg ${mine ? 'msg--mine' : 'msg--theirs'}${cont ? ' msg--cont' : ''}` });
    if (pending) li.dataset.clientId = msg.client_id;
    else {
      li.dataset.messageId = msg.id;
      li.dataset.seq = msg.seq;
      if (msg.client_id) li.dataset.clientId = msg.client_id;
    }
    li.dataset.sender = msg.sender;
    if (status) li.dataset.status = status;
    if (msg.private) {
      li.dataset.private = 'true';
      li.classList.add('msg--private');
    }

    const author = !cont && this.authorLabel?.(msg);
    if (author) li.append(h('div', { className: 'msg__author' }, author));

    const bubble = h('div', { className: 'msg__bubble' });
    if (msg.private) bubble.append(h('span', { className: 'msg__note' }, icon(...ICONS.lock), 'Private note'));
    if (msg.attachment) bubble.append(this.buildAttachment(msg.attachment));
    else if (msg.upload) bubble.append(this.buildUpload(msg, status));
    // An upload without a caption carries its file name as the body: do not say it twice.
    if (msg.body && msg.body !== msg.attachment?.name) {
      const text = h('p', { className: 'msg__text' });
      appendLinkified(text, msg.body);
      bubble.append(text);
    }
    if (pending && msg.error) bubble.append(h('p', { className: 'msg__error' }, msg.error));
    li.append(bubble);

    const meta = h('div', { className: 'msg__meta' }, time);
    if (status) {
      meta.append(h('span', { className: 'msg__status', title: t('status.' + status) },
        icon(...STATUS_ICON[status]), h('span', { className: 'msg__status-text' }, t('status.' + status))));
    }
    if (status === 'failed') {
      if (msg.retryable !== false) {
        meta.append(h('button', { type: 'button', className: 'link-btn', on: { click: () => this.onRetry?.(msg.client_id) } }, t('retry')));
      }
      meta.append(h('button', { type: 'button', className: 'link-btn', on: { click: () => this.onDiscard?.(msg.client_id) } }, t('discard')));
    }
    li.append(meta);
    return li;
  }

  /** A file still on its way: name, size and a progress bar (or why it failed). */
  buildUpload(msg, status) {
    const { name, size } = msg.upload;
    const row = h('div', { className: 'attachment attachment--pending' },
      icon(...ICONS.file), h('span', { className: 'attachment__name' }, name),
      h('span', { className: 'attachment__size' }, formatSize(size)));
    if (status === 'failed') return row;
    const bar = h('progress', { className: 'upload__bar', max: 1, value: msg.progress ?? 0, 'aria-label': t('uploading', { name }) });
    return h('div', { className: 'upload' }, row, bar);
  }

  buildAttachment(att) {
    const name = att.name || 'file';
    const size = formatSize(att.size);
    const btn = h('button', {
      type: 'button', className: 'attachment', 'aria-label': t('download', { name }) + (size ? `, ${size}` : ''),
    }, icon(...ICONS.file), h('span', { className: 'attachment__name' }, name), h('span', { className: 'attachment__size' }, size));
    btn.addEventListener('click', () => this.download(att));
    if (!PREVIEW_TYPES.test(att.content_type ?? '') || !this.fetchBlob) return btn;
    // The picture, fetched with the token; a click opens it full size in a new tab.
    const img = h('img', { className: 'attachment__image', alt: name });
    const link = h('a', {
      className: 'attachment__preview', target: '_blank', 'aria-label': t('openInTab', { name }),
    }, img);
    link.addEventListener('click', (e) => {
      if (!link.href) e.preventDefault();
    });
    this.blobUrl(att).then((url) => {
      img.src = url;
      link.href = url;
    }, () => link.remove());
    return h('div', { className: 'attachment-wrap' }, link, btn);
  }

  blobUrl(att) {
    if (!this.blobUrls.has(att.id)) {
      this.blobUrls.set(att.id, this.fetchBlob(att.url).then((b) => URL.createObjectURL(b)));
    }
    const p = this.blobUrls.get(att.id);
    p.catch(() => this.blobUrls.delete(att.id));
    return p;
  }

  async download(att) {
    if (!this.fetchBlob) return;
    try {
      const url = await this.blobUrl(att);
      const a = h('a', { href: url, download: att.name || 'download' });
      document.body.append(a);
      a.click();
      a.remove();
    } catch {
      this.onError?.(t('downloadFailed'));
    }
  }
}
