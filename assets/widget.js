/*! Parley chat widget. Add to any page:
 *  <script src="https://YOUR-PARLEY-HOST/widget.js" data-title="Chat with us"
 *          data-accent="#4f46e5" data-position="right" data-theme="dark" data-lang="de" defer></script>
 * It adds a launcher button[data-parley-launcher] that opens the server's own chat
 * page in an iframe. Its styles live in a shadow root: none leak in or out.
 * A logged-in user: data-user-id, data-user-hash (HMAC-SHA256 of the id, made by your
 * server), data-user-name, data-user-email; or Parley.identify({id, hash, name, email}).
 * API: Parley.open(), Parley.close(), Parley.toggle(), Parley.identify(user),
 * Parley.on('message' | 'open' | 'close', fn). */
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || window.Parley) return;

  const origin = new URL(script.src, location.href).origin;
  const data = script.dataset;
  const title = (data.title || 'Chat with us').trim().slice(0, 80);
  const accent = /^#(?:[0-9a-f]{3}){1,2}$/i.test(data.accent || '') ? data.accent : '#4f46e5';
  const side = data.position === 'left' ? 'left' : 'right';
  const OPEN_KEY = 'parley.widget.open';
  /** The host site's user as the script tag or Parley.identify gives it; null: anonymous. */
  let identity = user(data.userId, data.userHash, data.userName, data.userEmail);
  const handlers = { message: [], open: [], close: [] };
  /** Set once mounted: sends the identity to the chat page when it is ready. */
  let sendIdentity = () => {};

  function user(id, hash, name, email) {
    if (id == null || id === '' || typeof hash !== 'string' || !hash) return null;
    const text = (v) => (typeof v === 'string' && v.trim() ? v.trim().slice(0, 254) : undefined);
    return { id: String(id).slice(0, 256), hash: hash.slice(0, 128), name: text(name), email: text(email) };
  }
  function emit(event, value) {
    for (const fn of handlers[event]) {
      try { fn(value); } catch (err) { console.error('parley: an event handler failed', err); }
    }
  }
  const SVG = 'http://www.w3.org/2000/svg';

  const CSS = `
:host { all: initial !important; }
.launcher {
  position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483646;
  width: 58px; height: 58px; border-radius: 50%;
  background: ${accent}; color: #fff;
  box-shadow: 0 6px 20px rgba(16,24,40,.24), 0 2px 6px rgba(16,24,40,.16);
  transition: transform .18s ease;
}
.launcher:hover { transform: scale(1.06); }
::slotted(button) {
  all: unset !important;
  position: absolute !important; inset: 0 !important;
  display: block !important; width: 100% !important; height: 100% !important;
  border-radius: 50% !important; cursor: pointer !important; z-index: 1 !important;
  background: transparent !important; visibility: visible !important; opacity: 1 !important;
}
::slotted(button:focus-visible) { outline: 3px solid ${accent} !important; outline-offset: 3px !important; }
.icon {
  position: absolute; inset: 0; margin: auto; width: 28px; height: 28px;
  fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round;
  pointer-events: none; transition: transform .2s ease, opacity .2s ease;
}
.icon-close { opacity: 0; transform: rotate(-90deg) scale(.6); }
.open .icon-chat { opacity: 0; transform: rotate(90deg) scale(.6); }
.open .icon-close { opacity: 1; transform: none; }
.badge {
  position: absolute; top: -4px; ${side === 'right' ? 'left' : 'right'}: -4px; pointer-events: none;
  min-width: 20px; height: 20px; padding: 0 6px; box-sizing: border-box;
  border-radius: 10px; border: 2px solid #fff; background: #e11d48; color: #fff;
  font: 700 11px/16px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; text-align: center;
}
.badge[hidden] { display: none; }
.panel {
  position: fixed; bottom: 92px; ${side}: 20px; z-index: 2147483647;
  width: 380px; height: min(640px, calc(100vh - 116px));
  border-radius: 18px; overflow: hidden; background: #fff;
  box-shadow: 0 16px 48px rgba(16,24,40,.28), 0 4px 12px rgba(16,24,40,.12);
  opacity: 0; visibility: hidden; transform: translateY(12px) scale(.98);
  transform-origin: bottom ${side};
  transition: opacity .18s ease, transform .18s ease, visibility 0s linear .18s;
}
.panel.open { opacity: 1; visibility: visible; transform: none; transition: opacity .18s ease, transform .18s ease; }
iframe { display: block; width: 100%; height: 100%; border: 0; }
@media (max-width: 480px), (max-height: 520px) {
  .panel { inset: 0; width: 100%; height: 100%; border-radius: 0; transform: translateY(24px); }
  .launcher.open { display: none; }
}
@media (prefers-reduced-motion: reduce) { .panel, .icon, .launcher { transition: none; } }
`;

  function svgIcon(cls, paths) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon ' + cls);
    svg.setAttribute('aria-hidden', 'true');
    for (const d of paths) {
      const p = document.createElementNS(SVG, 'path');
      p.setAttribute('d', d);
      svg.appendChild(p);
    }
    return svg;
  }

  function readOpen() {
    try { return localStorage.getItem(OPEN_KEY) === '1'; } catch { return false; }
  }
  function writeOpen(open) {
    try { localStorage.setItem(OPEN_KEY, open ? '1' : '0'); } catch { /* storage off */ }
  }

  function mount() {
    const host = document.createElement('div');
    host.setAttribute('data-parley-widget', '');
    const root = host.attachShadow({ mode: 'open' });
    if (root.adoptedStyleSheets && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      // A constructed sheet is not an inline <style>, so a strict host page CSP allows it.
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement('style');
      style.textContent = CSS;
      root.appendChild(style);
    }

    // The button itself stays in the page's DOM (the stable hook), slotted into the
    // shadow launcher, whose !important rules win over any page style.
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('data-parley-launcher', '');
    button.setAttribute('slot', 'launcher');
    button.setAttribute('aria-haspopup', 'dialog');
    host.appendChild(button);

    const launcher = document.createElement('div');
    launcher.className = 'launcher';
    const slot = document.createElement('slot');
    slot.name = 'launcher';
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.hidden = true;
    badge.setAttribute('aria-hidden', 'true');
    launcher.append(
      slot,
      svgIcon('icon-chat', ['M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z', 'M8.5 12h.01M12 12h.01M15.5 12h.01']),
      svgIcon('icon-close', ['M6 6l12 12M18 6L6 18']),
      badge,
    );

    const panel = document.createElement('div');
    panel.className = 'panel';
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', title);
    const frame = document.createElement('iframe');
    frame.title = title;
    const src = new URL('/', origin);
    src.searchParams.set('embed', '1');
    src.searchParams.set('title', title);
    src.searchParams.set('accent', accent);
    src.searchParams.set('page', location.href.slice(0, 2000));
    if (document.referrer) src.searchParams.set('ref', document.referrer.slice(0, 2000));
    // data-theme pins the palette (else the system's); data-lang the language (else the browser's).
    if (data.theme === 'light' || data.theme === 'dark') src.searchParams.set('theme', data.theme);
    if (/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(data.lang || '')) src.searchParams.set('lang', data.lang);
    frame.src = src.href;
    panel.appendChild(frame);
    root.append(panel, launcher);
    (document.body || document.documentElement).appendChild(host);

    let open = false;
    let unread = 0;
    // Until the chat page has loaded, the frame holds about:blank of this page's origin.
    let frameReady = false;

    function tellFrame() {
      if (frameReady) frame.contentWindow?.postMessage({ type: 'parley:visibility', open }, origin);
    }
    sendIdentity = () => {
      if (frameReady) frame.contentWindow?.postMessage({ type: 'parley:identity', identity }, origin);
    };
    function render() {
      launcher.classList.toggle('open', open);
      panel.classList.toggle('open', open);
      button.setAttribute('aria-expanded', String(open));
      button.setAttribute('aria-label', open ? 'Close chat' : unread ? `Open chat, ${unread} unread` : 'Open chat');
      badge.textContent = unread > 9 ? '9+' : String(unread);
      badge.hidden = open || !unread;
    }
    function setOpen(next, { focus = true } = {}) {
      const was = open;
      open = !!next;
      writeOpen(open);
      render();
      tellFrame();
      if (open && focus) frame.focus();
      if (open !== was) emit(open ? 'open' : 'close');
    }

    button.addEventListener('click', () => setOpen(!open));
    frame.addEventListener('load', () => {
      frameReady = true;
      sendIdentity();
      tellFrame();
    });
    addEventListener('message', (e) => {
      if (e.origin !== origin || e.source !== frame.contentWindow || !e.data || typeof e.data !== 'object') return;
      if (e.data.type === 'parley:unread') {
        unread = Math.max(0, Number(e.data.count) || 0);
        render();
      } else if (e.data.type === 'parley:close') {
        setOpen(false);
        button.focus();
      } else if (e.data.type === 'parley:ready') {
        frameReady = true;
        sendIdentity();
        tellFrame();
        pageChanged();
      } else if (e.data.type === 'parley:message' && e.data.message) {
        emit('message', e.data.message);
      }
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && open) {
        setOpen(false);
        button.focus();
      }
    });

    // Single-page apps navigate without a reload: tell the chat (which tells the agents)
    // of each new address, at most once a second.
    let lastPage = location.href;
    let pageTimer = 0;
    function pageChanged() {
      if (pageTimer) return;
      pageTimer = setTimeout(() => {
        pageTimer = 0;
        if (location.href === lastPage || !frameReady) return;
        lastPage = location.href;
        frame.contentWindow?.postMessage({ type: 'parley:page', url: location.href.slice(0, 2000) }, origin);
      }, 1000);
    }
    for (const name of ['pushState', 'replaceState']) {
      const original = history[name];
      if (typeof original !== 'function') continue;
      history[name] = function (...args) {
        const result = original.apply(this, args);
        pageChanged();
        return result;
      };
    }
    addEventListener('popstate', pageChanged);
    addEventListener('hashchange', pageChanged);

    Object.assign(window.Parley, { open: () => setOpen(true), close: () => setOpen(false), toggle: () => setOpen(!open) });
    setOpen(readOpen(), { focus: false });
  }

  // Usable before the page finished loading; open/close/toggle work once mounted.
  window.Parley = {
    open() {}, close() {}, toggle() {},
    /** Signs in the host site's user ({id, hash, name?, email?}); null signs out. */
    identify(u) {
      identity = u ? user(u.id, u.hash, u.name, u.email) : null;
      sendIdentity();
    },
    /** Calls fn on 'message' (each new message in the chat), 'open' or 'close'. */
    on(event, fn) {
      if (handlers[event] && typeof fn === 'function') handlers[event].push(fn);
    },
  };

  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount, { once: true });
})();
