// visitor.js: the customer's chat page (`/`, and `/?embed=1` inside the widget iframe).
// An anonymous visitor can write at once; the identity and the chat are created on the
// first send. A logged-in user of the host site (the widget passes its signed id by
// postMessage, never in the URL) is signed in at once, with its chats from any device.
// One tab per browser holds the long poll (Web Locks) and shares what it receives with
// the other tabs (BroadcastChannel).

import { createApi, store } from './api.js';
import { localize, t, textLanguages, useVisitorLanguage } from './i18n.js';
import { setupComposer, typingIndicator } from './composer.js';
import { Connection, pollLoop } from './connection.js';
import { HISTORY_PAGE, loadEarlier, MessageList } from './messages.js';
import { Outbox } from './outbox.js';
import { loadMaxUpload, setupFileSources, Uploader } from './uploads.js';
import { formatBackAt, visitorContext, watchTeam } from './team.js';

const SESSION_KEY = 'parley.visitor';
const OUTBOX_KEY = 'parley.outbox';
const DRAFT_KEY = 'parley.draft';
/** Fewest seconds between two context updates sent while the host page navigates. */
const CONTEXT_EVERY_MS = 5000;
const WAIT_S = 25;
useVisitorLanguage();
localize();
// The widget's `data-theme` arrives as `?theme=`; without it the page follows the system.
const theme = new URLSearchParams(location.search).get('theme');
if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;

/** How long an embedded page waits for the widget to say who the user is. */
const IDENTITY_WAIT_MS = 1500;

const params = new URLSearchParams(location.search);
const embed = params.get('embed') === '1';
const $ = (id) => document.getElementById(id);
const els = {
  title: $('chat-title'), conn: $('conn'), details: $('details'), detailsToggle: $('details-toggle'),
  detailsForm: $('details-form'), detailsStatus: $('details-status'), embedClose: $('embed-close'),
  banner: $('closed-banner'), welcome: $('welcome'), scroller: $('scroller'), messages: $('messages'),
  pill: $('new-pill'), loadEarlier: $('load-earlier'), typing: $('typing'), form: $('composer'),
  textarea: $('message'), attach: $('attach'), file: $('file'), toast: $('toast'),
  chat: document.querySelector('main.chat'), dropzone: $('dropzone'), rating: $('rating'),
  team: $('team-status'), teamText: $('team-status-text'), teamBack: $('team-status-back'),
  detailsTitle: $('details-title'), welcomeHi: document.querySelector('.welcome__hi'),
  welcomeText: document.querySelector('.welcome__text'),
};

/** {token, visitor, chat_id?} as stored under `parley.visitor`. */
let session = validSession(store.get(SESSION_KEY));
let chat = null;
/** The running live connection of the current chat: {chatId, abort, channel, cursor, leader, leaderState}. */
let live = null;
let embedOpen = !embed;
/** null: the details form shows by itself while the conversation is empty; else as the visitor chose. */
let detailsOpen = null;
let serverRead = { visitor: 0, agent: 0 };
let readPosted = 0;
let lastUnread = -1;
/** Looking up this browser's conversation on load (the indicator shows how that goes). */
let resuming = false;
/** GET /api/v1/config as last read: {online, open_now, next_open_at, text_lang, away_message, greeting, prechat}. */
let team = null;
/** A first message waits in the composer for details the page asked for. */
let heldBack = false;
/** The host page the visitor is on (the widget tells of navigation in single-page apps). */
const host = { url: embed ? params.get('page') : location.href, referrer: embed ? params.get('ref') : document.referrer };
/** The host site's user ({id, hash, name, email}) as the widget says; null: anonymous. */
let identity = null;
/** The widget's page, once it spoke: events about the chat go there and nowhere else. */
let parentOrigin = null;
/** Messages up to this seq were told to the widget (or were history). */
let toldSeq = 0;
/** The chat whose rating form shows, and whether it was sent. */
let ratingFor = null;
let ratingSent = false;
/** Resolves once the widget told who the user is (or did not in time). */
let identityKnown = Promise.resolve();

const api = createApi({ getToken: () => session?.token ?? null });
const conn = new Connection();
const showTyping = typingIndicator(els.typing);

const list = new MessageList({
  scroller: els.scroller,
  list: els.messages,
  pill: els.pill,
  me: 'visitor',
  authorLabel: (m) => (m.sender === 'agent' ? m.author?.name || t('support') : null),
  onRetry: (id) => (uploader.has(id) ? uploader.retry(id) : outbox.retry(id)),
  onDiscard: (id) => (uploader.has(id) ? uploader.discard(id) : outbox.discard(id)),
  onSeen: () => markRead(),
  onError: (text) => toast(text),
  fetchBlob: (url) => api.blob(url),
});

const outbox = new Outbox({
  key: OUTBOX_KEY,
  lock: 'parley-outbox',
  send: sendItem,
  onChange: () => syncPending(),
  onSent: (message) => {
    list.add([message]);
    render('bottom');
  },
});

let maxUpload = null;
const uploader = new Uploader({
  send: sendUpload,
  maxUpload: () => (maxUpload ??= loadMaxUpload(api)),
  onChange: () => {
    syncPending();
    render('bottom');
  },
  onProgress: (item) => list.setProgress(item.client_id, item.progress),
  onSent: (message) => list.add([message]),
  onError: (text) => toast(text),
});

// ---- page set-up ---------------------------------------------------------------

applyParams();
setupComposer({
  form: els.form,
  textarea: els.textarea,
  canSend: () => detailsReady(),
  onSend: (body) => {
    heldBack = false;
    store.remove(DRAFT_KEY);
    outbox.add(body);
    render('bottom');
  },
  onTyping: (typing) => {
    if (chat) api.request('POST', `/chats/${chat.id}/typing`, { body: { typing } }).catch(() => {});
  },
});
conn.subscribe(() => {
  updateIndicator();
  if (conn.state === 'connected' && outbox.waiting) outbox.flush();
});
addEventListener('online', () => outbox.waiting && outbox.flush());
// Another tab started the conversation: show it here too.
addEventListener('storage', (e) => {
  if (e.key !== SESSION_KEY || session) return;
  session = validSession(store.get(SESSION_KEY));
  if (session) resume();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markRead();
  updateUnread();
});
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  if (!els.details.hidden) {
    setDetailsOpen(false);
    els.detailsToggle.focus();
  } else if (embed) {
    parent.postMessage({ type: 'parley:close' }, '*');
  }
});
els.detailsToggle.addEventListener('click', () => setDetailsOpen(els.details.hidden));
els.detailsForm.addEventListener('submit', saveDetails);
els.loadEarlier.addEventListener('click', showEarlier);
setupFileSources({
  button: els.attach,
  input: els.file,
  dropTarget: els.chat,
  dropzone: els.dropzone,
  textarea: els.textarea,
  onFiles: (files) => uploader.add(files),
});
if (session?.visitor) {
  els.detailsForm.elements.name.value = session.visitor.name ?? '';
  els.detailsForm.elements.email.value = session.visitor.email ?? '';
}
// What the visitor typed survives closing the tab (sent messages wait in the outbox).
const draft = store.get(DRAFT_KEY);
if (typeof draft === 'string' && draft && !els.textarea.value) {
  els.textarea.value = draft.slice(0, 4000);
  els.textarea.dispatchEvent(new Event('input'));
}
let draftTimer = 0;
els.textarea.addEventListener('input', () => {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => {
    if (els.textarea.value.trim()) store.set(DRAFT_KEY, els.textarea.value);
    else store.remove(DRAFT_KEY);
  }, 300);
});
watchTeam({ api, everyS: params.get('status_every') ?? undefined, lang: textLanguages.join(','), onChange: applyTeam });
if (embed) {
  els.embedClose.hidden = false;
  els.embedClose.addEventListener('click', () => parent.postMessage({ type: 'parley:close' }, '*'));
  let identified;
  identityKnown = new Promise((resolve) => {
    identified = resolve;
    // An older widget says nothing: go on as anonymous; a late answer still signs in.
    setTimeout(() => {
      identified = null;
      resolve();
    }, IDENTITY_WAIT_MS);
  });
  addEventListener('message', (e) => {
    if (e.source !== parent || e.data?.type !== 'parley:identity') return;
    parentOrigin = e.origin;
    const first = identified;
    identified = null;
    if (first) {
      identity = validIdentity(e.data.identity);
      first();
    } else {
      changeIdentity(validIdentity(e.data.identity));
    }
  });
  addEventListener('message', (e) => {
    if (e.source !== parent || e.data?.type !== 'parley:visibility') return;
    embedOpen = !!e.data.open;
    if (embedOpen) {
      markRead();
      if (!matchMedia('(pointer: coarse)').matches) els.textarea.focus({ preventScroll: true });
    }
    updateUnread();
  });
  addEventListener('message', (e) => {
    if (e.source !== parent || e.data?.type !== 'parley:page') return;
    if (typeof e.data.url !== 'string' || e.data.url === host.url) return;
    host.url = e.data.url;
    if (typeof e.data.referrer === 'string') host.referrer = e.data.referrer;
    sendContextSoon();
  });
  parent.postMessage({ type: 'parley:ready' }, '*');
}
syncPending();
continueFromLink().then(resume);

// ---- identity and chat -----------------------------------------------------------

function validSession(s) {
  return s && typeof s.token === 'string' && s.token ? s : null;
}

function validIdentity(u) {
  if (!u || typeof u !== 'object' || typeof u.id !== 'string' || !u.id || typeof u.hash !== 'string') return null;
  const text = (v) => (typeof v === 'string' && v ? v : undefined);
  return { id: u.id, hash: u.hash, name: text(u.name), email: text(u.email) };
}

/**
 * Makes the stored session that of `identity`: kept if it is that user's already; else
 * dropped (another user's chats never show here, nor an anonymous visitor's) and, for a
 * user, replaced by a sign-in with the site's signature.
 */
async function signIn() {
  const bound = session?.external_id ?? null;
  if (bound !== null && bound === identity?.id) return;
  if (bound !== null || (identity && session)) forgetSession();
  if (!identity) return;
  const body = { external_id: identity.id, identity_hash: identity.hash, page_url: pageUrl() };
  if (identity.name) body.name = identity.name;
  if (identity.email) body.email = identity.email;
  let res;
  try {
    res = await api.request('POST', '/visitors', { body });
  } catch (err) {
    if (err.status !== 422 || !(body.name || body.email)) throw err;
    // A name or email the server refuses must not keep the user out.
    delete body.name;
    delete body.email;
    res = await api.request('POST', '/visitors', { body });
  }
  session = { token: res.token, visitor: res.visitor, external_id: identity.id };
  saveSession();
}

/** The widget signed another user in (or out) after the page loaded. */
async function changeIdentity(next) {
  if (next?.id === identity?.id && next?.hash === identity?.hash) return;
  identity = next;
  try {
    await signIn();
  } catch (err) {
    console.warn('parley: could not sign in the site user', err);
  }
  // What the form requires depends on what is known of the visitor now.
  if (team) applyTeam(team);
  resume();
}

function saveSession() {
  if (session) store.set(SESSION_KEY, session);
  else store.remove(SESSION_KEY);
}

/** On load: show the conversation this browser already has, if any. Nothing is created. */
async function resume() {
  await identityKnown;
  try {
    await signIn();
  } catch (err) {
    console.warn('parley: could not sign in the site user', err);
  }
  // What the form requires depends on what is known of the visitor now.
  if (team) applyTeam(team);
  if (!session) {
    if (outbox.waiting) outbox.flush();
    return;
  }
  resuming = true;
  updateIndicator();
  try {
    const found = await conn.run(async () => {
      if (session.chat_id) {
        try {
          return (await api.request('GET', `/chats/${encodeURIComponent(session.chat_id)}`)).chat;
        } catch (err) {
          if (err.status !== 404 && err.status !== 403) throw err;
        }
      }
      try {
        return (await api.request('GET', '/chats/mine')).chat;
      } catch (err) {
        if (err.status === 404) return null;
        throw err;
      }
    });
    if (found && !chat) openChat(found);
  } catch (err) {
    if (err.status === 401) forgetSession();
  } finally {
    resuming = false;
  }
  updateIndicator();
  if (outbox.waiting) outbox.flush();
}

/**
 * A continuity link from an email (`/?continue=…&chat=…`): become that visitor in this
 * browser, with a token of its own, and show that chat. The link leaves the address bar at
 * once, so it is neither bookmarked nor shared by accident.
 */
async function continueFromLink() {
  const link = params.get('continue');
  if (!link) return;
  const chatId = params.get('chat');
  const url = new URL(location.href);
  url.searchParams.delete('continue');
  url.searchParams.delete('chat');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  try {
    const res = await api.request('POST', '/visitors/continue', { body: { link } });
    session = { token: res.token, visitor: res.visitor };
    if (chatId) session.chat_id = chatId;
    saveSession();
    els.detailsForm.elements.name.value = res.visitor.name ?? '';
    els.detailsForm.elements.email.value = res.visitor.email ?? '';
  } catch (err) {
    toast(err.status === 403
      ? 'This link has expired. Write to us and we will answer here.'
      : 'Could not open your conversation from the link.');
  }
}

let sessionPromise = null;
function ensureSession() {
  // Another tab of this browser may have become a visitor meanwhile: be the same one.
  session ??= validSession(store.get(SESSION_KEY));
  if (session) return Promise.resolve(session);
  sessionPromise ??= (async () => {
    if (identity) {
      await signIn();
      if (session) return session;
    }
    const name = els.detailsForm.elements.name.value.trim();
    const email = els.detailsForm.elements.email.value.trim();
    const body = { page_url: pageUrl() };
    if (name) body.name = name;
    if (email && els.detailsForm.elements.email.checkValidity()) body.email = email;
    let res;
    try {
      res = await api.request('POST', '/visitors', { body });
    } catch (err) {
      // Details the server refuses must never stop a visitor from writing.
      if (err.status !== 400 && err.status !== 422) throw err;
      res = await api.request('POST', '/visitors', { body: {} });
    }
    session = { token: res.token, visitor: res.visitor };
    saveSession();
    return session;
  })().finally(() => { sessionPromise = null; });
  return sessionPromise;
}

let chatPromise = null;
function ensureChat() {
  if (chat) return Promise.resolve(chat);
  chatPromise ??= (async () => {
    await ensureSession();
    let res;
    try {
      res = await api.request('POST', '/chats', { body: { context: currentContext() } });
    } catch (err) {
      // A context the server refuses must never stop a visitor from writing.
      if (err.status !== 400 && err.status !== 422) throw err;
      res = await api.request('POST', '/chats', { body: {} });
    }
    openChat(res.chat);
    return res.chat;
  })().finally(() => { chatPromise = null; });
  return chatPromise;
}

/** The outbox's sender: creates identity and chat on first use, heals a dead token once. */
async function sendItem(item) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const c = await ensureChat();
      const res = await api.request('POST', `/chats/${c.id}/messages`, {
        body: { body: item.body, client_id: item.client_id },
      });
      return res.message;
    } catch (err) {
      if (attempt === 0 && err.status === 401) forgetSession();
      else if (attempt === 0 && err.status === 404) forgetChat();
      else throw err;
    }
  }
}

/** The uploader's sender: like sendItem, for one file, with progress. */
async function sendUpload(item, onProgress) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const c = await ensureChat();
      const form = new FormData();
      form.append('client_id', item.client_id);
      form.append('file', item.file, item.upload.name);
      return (await api.upload(`/chats/${c.id}/attachments`, form, onProgress)).message;
    } catch (err) {
      if (attempt === 0 && err.status === 401) forgetSession();
      else if (attempt === 0 && err.status === 404) forgetChat();
      else throw err;
    }
  }
}

function currentContext() {
  return visitorContext({ pageUrl: host.url, referrer: host.referrer });
}

let contextTimer = 0;
let contextSentAt = 0;
/** Tells the server of a navigation of the host page: at most every CONTEXT_EVERY_MS. */
function sendContextSoon() {
  if (!session || contextTimer) return;
  const wait = Math.max(0, contextSentAt + CONTEXT_EVERY_MS - Date.now());
  contextTimer = setTimeout(() => {
    contextTimer = 0;
    contextSentAt = Date.now();
    if (session) api.request('PATCH', '/visitors/me', { body: { context: currentContext() } }).catch(() => {});
  }, wait);
}

function pageUrl() {
  const raw = host.url;
  if (!raw || raw.length > 2000) return undefined;
  try {
    const u = new URL(raw);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** The stored token is dead (401): start over as a new anonymous visitor on the next send. */
function forgetSession() {
  session = null;
  saveSession();
  forgetChat();
}

function forgetChat() {
  stopLive();
  chat = null;
  if (session) {
    delete session.chat_id;
    saveSession();
  }
  list.reset();
  serverRead = { visitor: 0, agent: 0 };
  readPosted = 0;
  els.loadEarlier.hidden = true;
  els.banner.hidden = true;
  syncPending();
  updateIndicator();
}

function openChat(c) {
  if (chat?.id === c.id) {
    updateChat(c);
    return;
  }
  stopLive();
  updateChat(c);
  session.chat_id = c.id;
  saveSession();
  startLive(c.id);
}

function updateChat(c) {
  chat = c;
  els.banner.hidden = c.status !== 'closed';
  renderRating(c);
}

// ---- rating ------------------------------------------------------------------------

/** After a chat is closed: five buttons [data-rating] and a comment, then a thank-you. */
function renderRating(c) {
  const offer = c.status === 'closed' && (!c.rating || (ratingFor === c.id && ratingSent));
  if (!offer) {
    els.rating.hidden = true;
    els.rating.replaceChildren();
    ratingFor = null;
    return;
  }
  if (ratingFor === c.id) return;
  ratingFor = c.id;
  ratingSent = false;
  const prompt = document.createElement('p');
  prompt.className = 'rating__prompt';
  prompt.id = 'rating-prompt';
  prompt.textContent = t('rating.prompt');
  const comment = document.createElement('textarea');
  comment.name = 'rating-comment';
  comment.className = 'rating__comment';
  comment.rows = 2;
  comment.maxLength = 1000;
  comment.placeholder = t('rating.comment');
  comment.setAttribute('aria-label', t('rating.comment'));
  const stars = document.createElement('div');
  stars.className = 'rating__stars';
  stars.setAttribute('role', 'group');
  stars.setAttribute('aria-labelledby', 'rating-prompt');
  for (let n = 1; n <= 5; n += 1) {
    const star = document.createElement('button');
    star.type = 'button';
    star.className = 'rating__star';
    star.dataset.rating = String(n);
    star.textContent = '★';
    star.setAttribute('aria-label', t(n === 1 ? 'rating.star' : 'rating.stars', { n }));
    star.addEventListener('click', () => sendRating(c.id, n, comment.value));
    stars.appendChild(star);
  }
  els.rating.replaceChildren(prompt, stars, comment);
  els.rating.hidden = false;
}

async function sendRating(chatId, rating, comment) {
  const buttons = els.rating.querySelectorAll('button');
  for (const b of buttons) b.disabled = true;
  try {
    const body = { rating };
    if (comment.trim()) body.comment = comment.trim();
    await api.request('POST', `/chats/${chatId}/rating`, { body });
  } catch (err) {
    // 409: rated already (another tab or device): thank all the same.
    if (err.status !== 409) {
      for (const b of buttons) b.disabled = false;
      toast(t('rating.failed'));
      return;
    }
  }
  if (ratingFor !== chatId) return;
  ratingSent = true;
  const thanks = document.createElement('p');
  thanks.className = 'rating__thanks';
  thanks.setAttribute('data-rating-thanks', '');
  thanks.textContent = t('rating.thanks');
  els.rating.replaceChildren(thanks);
}

/** Tells the widget's page of each new message (`Parley.on('message')`), only that page. */
function tellParent(messages) {
  if (!embed || !parentOrigin) return;
  for (const m of messages) {
    if (m.seq <= toldSeq || m.private) continue;
    toldSeq = m.seq;
    const message = {
      id: m.id, chat_id: m.chat_id, seq: m.seq, sender: m.sender, event: m.event ?? null,
      author: m.author?.name ?? null, body: m.body, created_at: m.created_at,
    };
    parent.postMessage({ type: 'parley:message', message }, parentOrigin);
  }
}

// ---- live updates ----------------------------------------------------------------

function startLive(chatId) {
  const abort = new AbortController();
  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('parley-' + chatId) : null;
  const me = { chatId, abort, channel, cursor: 0, leader: false, leaderState: null };
  live = me;
  // Listen before loading history: whatever the leader polls from now on reaches this tab.
  if (channel) {
    channel.onmessage = (e) => onChannel(me, e.data);
    channel.postMessage({ type: 'hello' });
  }
  conn.set('connecting');
  (async () => {
    try {
      await conn.run(() => loadLatest(me), abort.signal);
      if (navigator.locks) {
        await navigator.locks.request('parley-poll-' + chatId, { signal: abort.signal }, () => lead(me));
      } else {
        await lead(me);
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err.status === 401) forgetSession();
      else if (err.status === 404 || err.status === 403) forgetChat();
      else {
        console.error('parley: live updates stopped', err);
        setTimeout(() => { if (live === me) { stopLive(); startLive(chatId); } }, 5000);
      }
    }
  })();
}

function stopLive() {
  if (!live) return;
  live.abort.abort();
  live.channel?.close();
  live = null;
}

async function loadLatest(me) {
  const { chat: c } = await api.request('GET', `/chats/${me.chatId}`, { signal: me.abort.signal });
  const page = await api.request('GET', `/chats/${me.chatId}/messages`, {
    query: { before: c.last_seq + 1, limit: HISTORY_PAGE }, signal: me.abort.signal,
  });
  if (live !== me) return;
  updateChat(c);
  list.add(page.messages);
  me.cursor = Math.max(me.cursor, c.last_seq);
  toldSeq = Math.max(toldSeq, c.last_seq);
  els.loadEarlier.hidden = !page.has_more;
  applyMarkers(page);
  render('bottom');
}

/** The leader: holds the one long poll of this browser for this chat and shares each answer. */
async function lead(me) {
  me.leader = true;
  const unsubscribe = conn.subscribe((state) => me.channel?.postMessage({ type: 'state', state }));
  try {
    await pollLoop(conn, me.abort.signal, async (signal) => {
      const res = await api.request('GET', `/chats/${me.chatId}/messages`, {
        // `state` makes the server answer at once if typing or read ticks changed meanwhile.
        query: { after: me.cursor, wait: WAIT_S, state: me.state }, signal, timeout: (WAIT_S + 15) * 1000,
      });
      if (live !== me) return false;
      me.state = res.state;
      me.channel?.postMessage({ type: 'poll', data: res });
      applyPoll(me, res);
      return res.messages.length > 0;
    });
  } finally {
    unsubscribe();
    me.leader = false;
  }
}

function onChannel(me, data) {
  if (live !== me || !data) return;
  if (data.type === 'poll') applyPoll(me, data.data);
  else if (data.type === 'hello' && me.leader) me.channel.postMessage({ type: 'state', state: conn.state });
  else if (data.type === 'state' && !me.leader) {
    me.leaderState = data.state;
    updateIndicator();
    if (data.state === 'connected' && outbox.waiting) outbox.flush();
  }
}

function applyPoll(me, res) {
  if (live !== me || !res) return;
  if (res.next > me.cursor) me.cursor = res.next;
  list.add(res.messages);
  tellParent(res.messages);
  if (res.chat) updateChat(res.chat);
  applyMarkers(res);
  render();
}

function applyMarkers(res) {
  if (res.read) {
    serverRead = { visitor: res.read.visitor ?? 0, agent: res.read.agent ?? 0 };
    list.setOtherRead(serverRead.agent);
  }
  if (res.typing) showTyping(!!res.typing.agent);
}

function showEarlier() {
  const me = live;
  if (!me) return;
  loadEarlier({
    api, list, button: els.loadEarlier, chatId: me.chatId, stillCurrent: () => live === me,
    render, toast,
  });
}

// ---- reading, unread, indicator --------------------------------------------------------

/** Tells the server the visitor has seen the agent's messages, when they really are on screen. */
function markRead() {
  if (!chat || !live || document.visibilityState !== 'visible' || !embedOpen || !list.nearBottom()) return;
  const already = Math.max(readPosted, serverRead.visitor);
  if (list.countTheirsAfter(already) === 0) return;
  const seq = list.maxSeq;
  const before = readPosted;
  readPosted = seq;
  api.request('POST', `/chats/${chat.id}/read`, { body: { seq } }).catch(() => { readPosted = before; });
  updateUnread();
}

function updateUnread() {
  const count = list.countTheirsAfter(Math.max(readPosted, serverRead.visitor));
  const base = els.title.textContent;
  document.title = count && document.visibilityState === 'hidden' ? `(${count}) ${base}` : base;
  if (embed && count !== lastUnread) {
    lastUnread = count;
    parent.postMessage({ type: 'parley:unread', count }, '*');
  }
}

function updateIndicator() {
  let state = 'idle';
  if (live) state = live.leader || !live.leaderState ? conn.state : live.leaderState;
  else if (resuming) state = conn.state;
  if (navigator.onLine === false) state = 'offline';
  else if ((state === 'idle' || state === 'connected') && outbox.items.some((it) => it.state === 'queued')) {
    state = 'reconnecting';
  }
  els.conn.dataset.connection = state;
  els.conn.querySelector('.conn__text').textContent = t('conn.' + state);
}

// ---- rendering -------------------------------------------------------------------

function syncPending() {
  list.setPending([...outbox.items, ...uploader.items]);
  render();
  updateIndicator();
}

function render(mode = 'auto') {
  list.render(mode);
  const empty = list.size === 0;
  els.welcome.hidden = !empty;
  const open = detailsOpen ?? (heldBack || (empty && detailsWanted()));
  els.details.hidden = !open;
  els.detailsToggle.setAttribute('aria-expanded', String(open));
  updateUnread();
}

function setDetailsOpen(open) {
  detailsOpen = open;
  els.details.hidden = !open;
  els.detailsToggle.setAttribute('aria-expanded', String(open));
  if (open) els.detailsForm.elements.name.focus();
}

async function saveDetails(e) {
  e.preventDefault();
  const f = els.detailsForm.elements;
  if (!f.email.checkValidity()) {
    f.email.reportValidity();
    return;
  }
  if (!f.name.checkValidity()) {
    f.name.reportValidity();
    return;
  }
  const body = { name: f.name.value.trim() || null, email: f.email.value.trim() || null };
  if (!session) {
    // Nothing to update yet: the details go along with the first message.
    els.detailsStatus.textContent = t('details.thanks');
    sendHeldBack();
    return;
  }
  els.detailsStatus.textContent = t('details.saving');
  try {
    const res = await api.request('PATCH', '/visitors/me', { body });
    session.visitor = res.visitor;
    saveSession();
    els.detailsStatus.textContent = t('details.saved');
    sendHeldBack();
    setTimeout(() => { if (els.detailsStatus.textContent === t('details.saved')) setDetailsOpen(false); }, 900);
  } catch (err) {
    els.detailsStatus.textContent = err.status === 422 || err.status === 400 ? t('details.invalid') : t('details.failed');
  }
}

// ---- availability and the details the page asks for ----------------------------------

/** What the page asks for now: the pre-chat setting, and always the email while nobody is online. */
function asks() {
  const prechat = team?.prechat ?? { ask_name: 'optional', ask_email: 'optional' };
  // A server without the field (older) counts as online: nothing is required then.
  const away = team?.online === false;
  return { name: prechat.ask_name, email: away ? 'required' : prechat.ask_email };
}

/** Whether the visitor's `name` or `email` is known already: saved, or given by the site
 *  that signed the visitor in (the pre-chat form skips what the host page told us). */
function known(field) {
  return !!(session?.visitor?.[field] || identity?.[field]);
}

/** The field still missing before a first message may go, if any. */
function missingField() {
  const a = asks();
  const f = els.detailsForm.elements;
  if (a.email === 'required' && !known('email') && !(f.email.value.trim() && f.email.checkValidity())) return f.email;
  if (a.name === 'required' && !known('name') && !f.name.value.trim()) return f.name;
  return null;
}

/** Whether the pre-chat form shows by itself on an empty conversation. */
function detailsWanted() {
  const a = asks();
  if (a.email === 'required' && !known('email')) return true;
  if (a.name === 'required' && !known('name')) return true;
  const asked = a.name !== 'off' || a.email !== 'off';
  return asked && !known('name') && !known('email');
}

/**
 * The composer's guard: a first message waits for the details the page requires (the
 * email while nobody is online); later messages always go. Details typed but not saved
 * go along.
 */
function detailsReady() {
  const missing = isFirstMessage() ? missingField() : null;
  if (missing) {
    heldBack = true;
    detailsOpen = true;
    render();
    els.detailsStatus.textContent = missing.name === 'email' ? t('details.needEmail') : t('details.needName');
    missing.focus();
    return false;
  }
  if (session) saveTypedDetails();
  return true;
}

function isFirstMessage() {
  return list.size === 0 && !outbox.items.length && !chat;
}

/** Saves details typed into the form but not saved, quietly (they never hold a message back). */
function saveTypedDetails() {
  const f = els.detailsForm.elements;
  const body = {};
  const name = f.name.value.trim();
  const email = f.email.value.trim();
  if (name && name !== session.visitor?.name) body.name = name;
  if (email && f.email.checkValidity() && email !== session.visitor?.email) body.email = email;
  if (!Object.keys(body).length) return;
  api.request('PATCH', '/visitors/me', { body }).then((res) => {
    if (!session) return;
    session.visitor = res.visitor;
    saveSession();
  }).catch(() => {});
}

/** The details the page waited for are in: send the message that waited (also a draft kept over a reload). */
function sendHeldBack() {
  const a = asks();
  const required = a.email === 'required' || a.name === 'required';
  const waiting = heldBack || (required && isFirstMessage() && els.textarea.value.trim());
  if (!waiting || missingField()) return;
  heldBack = false;
  els.form.requestSubmit();
}

/** Marks an admin's text with its language when the server named one (screen readers, hyphenation). */
function setTextLang(el, textLang) {
  if (textLang) el.lang = textLang;
  else el.removeAttribute('lang');
}

function applyTeam(config) {
  team = config;
  const online = config.online !== false;
  els.chat.dataset.teamStatus = online ? 'online' : 'away';
  els.team.hidden = false;
  els.team.dataset.online = String(online);
  const away = !online && config.away_message;
  els.teamText.textContent = online ? t('team.online') : (away || t('team.away'));
  setTextLang(els.teamText, away && config.text_lang);
  // The admins' greeting stands for the page's whole welcome ("Hi there!" and its text).
  els.welcomeHi.hidden = !!config.greeting;
  els.welcomeText.textContent = config.greeting || t('welcome.text');
  setTextLang(els.welcomeText, config.greeting && config.text_lang);
  const back = online ? null : formatBackAt(config.next_open_at);
  els.teamBack.textContent = back ? t('team.backAt', { when: back }) : '';
  els.teamBack.hidden = !back;

  const a = asks();
  const f = els.detailsForm.elements;
  f.email.required = a.email === 'required' && !known('email');
  f.name.required = a.name === 'required' && !known('name');
  const required = f.email.required || f.name.required;
  els.detailsTitle.replaceChildren(
    !online ? t('details.titleAway') : required ? t('details.titleRequired') : t('details.title'),
  );
  if (!required) {
    const mark = document.createElement('span');
    mark.className = 'muted';
    mark.textContent = ' ' + t('details.optional');
    els.detailsTitle.append(mark);
  }
  render();
}

let toastTimer = 0;
function toast(text) {
  els.toast.textContent = text;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { els.toast.hidden = true; }, 4000);
}

function applyParams() {
  const title = (params.get('title') ?? '').trim().slice(0, 80);
  if (title) els.title.textContent = title;
  document.title = els.title.textContent;
  const accent = params.get('accent') ?? '';
  if (/^#(?:[0-9a-f]{3}){1,2}$/i.test(accent)) {
    const root = document.documentElement.style;
    root.setProperty('--accent', accent);
    root.setProperty('--accent-contrast', contrastOn(accent));
  }
  if (embed) document.body.classList.add('embed');
}

/** Black or white, whichever reads better on `hex`. */
function contrastOn(hex) {
  let v = hex.slice(1);
  if (v.length === 3) v = [...v].map((c) => c + c).join('');
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(v.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.45 ? '#111318' : '#ffffff';
}
