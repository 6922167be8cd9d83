// format.js: turning data into text and DOM safely — links in user text, times
// and dates in the reader's locale, names, sizes. User text only ever becomes text nodes.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const relShort = new Intl.RelativeTimeFormat(undefined, { style: 'narrow' });

/** http(s) URLs in running text; the trailing punctuation of a sentence is trimmed off below. */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** Appends `text` to `parent` as text nodes, with http(s) URLs as safe links. */
export function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const url = trimUrl(match[0]);
    const start = match.index;
    if (start > last) parent.append(text.slice(last, start));
    parent.append(safeLink(url, url) ?? url);
    last = start + url.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

/** The character references an HTML-escaping server writes; anything else stays as written. */
const NAMED_REFS = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Undoes HTML escaping into plain text (never markup: the result only becomes text nodes). */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (whole, ref) => {
    if (ref[0] !== '#') return NAMED_REFS[ref.toLowerCase()] ?? whole;
    const code = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

/**
 * Appends a search snippet — HTML-escaped text with `<mark>…</mark>` around the hits — as
 * text nodes and <mark> elements. Nothing else in it can become an element: the snippet is
 * split on the two exact markers and every other part is decoded to text.
 */
export function appendSnippet(parent, snippet) {
  let target = parent;
  for (const part of String(snippet ?? '').split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') {
      if (target === parent) {
        target = document.createElement('mark');
        parent.append(target);
      }
    } else if (part === '</mark>') {
      target = parent;
    } else if (part) {
      target.append(decodeEntities(part));
    }
  }
  return parent;
}

function trimUrl(url) {
  let out = url.replace(/[.,;:!?'"]+$/, '');
  // Drop closing brackets that do not close something inside the URL: "(see https://x.y/a)".
  for (const [open, close] of [['(', ')'], ['[', ']']]) {
    while (out.endsWith(close) && count(out, close) > count(out, open)) out = out.slice(0, -1);
  }
  return out.replace(/[.,;:!?]+$/, '');
}

function count(s, ch) {
  return s.split(ch).length - 1;
}

/** An <a> opening `href` in a new tab, or null unless it is an http(s) URL. */
export function safeLink(href, label) {
  let url;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const a = document.createElement('a');
  a.href = url.href;
  a.textContent = label;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  return a;
}

export function formatTime(iso) {
  return timeFmt.format(new Date(iso));
}

export function formatFull(iso) {
  return fullFmt.format(new Date(iso));
}

/** A key that is equal for two instants on the same local calendar day. */
export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday", "Monday, March 3", or a date with the year when it is not this year. */
export function dayLabel(iso) {
  const d = new Date(iso);
  const startOf = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((startOf(d) - startOf(new Date())) / 86400000);
  if (days === 0 || days === -1) return capitalize(relFmt.format(days, 'day'));
  if (d.getFullYear() === new Date().getFullYear()) return dayFmt.format(d);
  return dayYearFmt.format(d);
}

/** A compact "5 min ago"-style age for lists. */
export function relativeTime(iso, now = Date.now()) {
  const secs = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 45) return 'now';
  if (abs < 3600) return relShort.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return relShort.format(Math.round(secs / 3600), 'hour');
  if (abs < 7 * 86400) return relShort.format(Math.round(secs / 86400), 'day');
  return shortDateFmt.format(new Date(iso));
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function capitalize(s) {
  return s.charAt(0).toLocaleUpperCase() + s.slice(1);
}

/** What to call a visitor: name, else email, else "Visitor" and a short tag from the id. */
export function visitorName(visitor) {
  if (!visitor) return 'Visitor';
  if (visitor.name) return visitor.name;
  if (visitor.email) return visitor.email;
  return 'Visitor ' + String(visitor.id ?? '').replace(/-/g, '').slice(-4).toUpperCase();
}

/** Up to two initials for an avatar. */
export function initials(name) {
  const parts = String(name).trim().split(/[\s@._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] ?? '?').slice(0, 2);
  return letters.toLocaleUpperCase();
}

/** A stable hue for an avatar, from an id. */
export function hueOf(id) {
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

/** Builds an element: h('p', {className: 'x', dataset: {...}, on: {click}}, child, 'text'). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k in el && k !== 'list' && k !== 'form') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A 24×24 stroke icon from path data, hidden from assistive technology. */
export function icon(...paths) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  for (const d of paths) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

export const ICONS = {
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  checks: ['M2.5 12.5L7 17l9.5-9.5', 'M12 16l1 1 9.5-9.5'],
  clock: ['M12 7v5l3 2', 'M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0z'],
  alert: ['M12 8v5', 'M12 16.5v.5', 'M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0z'],
  file: ['M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z', 'M14 3v5h5'],
  lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
};
