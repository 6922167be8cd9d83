// agent.js: the agent inbox (`/agent`) — sign-in, the chat list kept live by one inbox
// long poll, and the open conversation with its own long poll, paging, typing, read
// markers, close/reopen, assignment and transfer, labels, private notes, the visitor's
// other chats; search, canned responses and the keyboard live in their own modules.

import { createApi, store } from './api.js';
import { CannedStore, setupCannedAdmin, setupCannedPicker } from './canned.js';
import { setupMentionPicker } from './mentions.js';
import { setupComposer, typingIndicator } from './composer.js';
import { Connection, pollLoop } from './connection.js';
import { openDialog, wireDialog } from './dialogs.js';
import { formatFull, h, hueOf, icon, initials, relativeTime, safeLink, visitorName } from './format.js';
import { HISTORY_PAGE, loadEarlier, MessageList } from './messages.js';
import { Outbox } from './outbox.js';
import { setupAvailability } from './availability.js';
import { setupSearch } from './search.js';
import { setupSettings } from './settings.js';
import { setupShortcuts } from './shortcuts.js';
import { loadMaxUpload, setupFileSources, Uploader } from './uploads.js';

const SESSION_KEY = 'parley.agent';
const FILTER_KEY = 'parley.agent.filter';
const SOUND_KEY = 'parley.agent.sound';
const WAIT_S = 25;
const BASE_TITLE = 'Parley inbox';
const FILTERS = ['open', 'mine', 'closed', 'all'];
const CONN_TEXT = { connecting: 'Connecting…', connected: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };
/** Messages per request while paging back to a message found by search. */
const REVEAL_PAGE = 200;
/** The contract's limits on a chat's labels. */
const LABEL_MAX_CHARS = 32;
const LABELS_MAX = 20;

const $ = (id) => document.getElementById(id);
const els = {
  login: $('login-view'), loginForm: $('login-form'), loginError: $('login-error'),
  app: $('app-view'), conn: $('conn'), me: $('me'), notifyBtn: $('notify-btn'), soundBtn: $('sound-btn'),
  emailBtn: $('email-btn'),
  logoutBtn: $('logout-btn'), filters: [...document.querySelectorAll('[data-filter]')], chatList: $('chat-list'),
  listEmpty: $('list-empty'), convEmpty: $('conv-empty'), conv: $('conv'), backBtn: $('back-btn'),
  avatar: $('conv-avatar'), title: $('conv-title'), status: $('conv-status'), assignee: $('conv-assignee'),
  rating: $('conv-rating'),
  assignMe: $('assign-me'), assignSelect: $('assign-select'), statusBtn: $('status-btn'), detailsBtn: $('details-btn'),
  scroller: $('scroller'), messages: $('messages'), pill: $('new-pill'), loadEarlier: $('load-earlier'),
  typing: $('typing'), form: $('composer'), textarea: $('message'), attach: $('attach'), file: $('file'),
  detailsPanel: $('details-panel'), detailsClose: $('details-close'), detailsList: $('details-list'), toast: $('toast'),
  dropzone: $('dropzone'),
  cannedBtn: $('canned-btn'), shortcutsBtn: $('shortcuts-btn'), search: $('search'), searchView: $('search-view'),
  searchResults: $('search-results'), searchStatus: $('search-status'), labelFilter: $('label-filter'),
  labelFilterClear: $('label-filter-clear'), knownLabels: $('known-labels'), transferBtn: $('transfer-btn'),
  convLabels: $('conv-labels'), labelInput: $('label-input'), earlier: $('earlier'), earlierTitle: $('earlier-title'),
  earlierList: $('earlier-list'), composerWrap: $('composer-wrap'), cannedList: $('canned-list'),
  mentionList: $('mention-list'),
  privateToggle: $('private-toggle'), noteHint: $('note-hint'), sendBtn: document.querySelector('#composer .send-btn'),
  shortcutsDialog: $('shortcuts-dialog'), transferDialog: $('transfer-dialog'), transferForm: $('transfer-form'),
  cannedDialog: $('canned-dialog'),
};

/** {token, agent} as stored under `parley.agent`. */
let session = store.get(SESSION_KEY);
if (!session?.token) session = null;
/** Every chat seen, by id; the filter picks what the list shows. */
const chats = new Map();
let filter = FILTERS.includes(store.get(FILTER_KEY)) ? store.get(FILTER_KEY) : 'open';
/** Only chats with this label (compared case-insensitively), or '' for any. */
let labelFilter = '';
let knownLabelsSig = '';
/** A message found by search, to scroll to once its chat is open: {chatId, messageId, seq}. */
let revealing = null;
let inbox = null;
let inboxCursor = 0;
/** The open conversation: {chatId, abort, cursor, readPosted, serverRead}. */
let conv = null;
const outboxes = new Map();
/** Per chat: the files on their way there (they keep going while another chat is open). */
const uploaders = new Map();
let maxUpload = null;
const drafts = new Map();
const listNodes = new Map();
let agents = null;
let soundOn = store.get(SOUND_KEY) !== false;
let audio = null;
let openedFromList = false;

const api = createApi({
  getToken: () => session?.token ?? null,
  onUnauthorized: (token) => {
    if (session?.token === token) signOut('Your session has ended. Please sign in again.');
  },
});
const inboxConn = new Connection();
const chatConn = new Connection();
const showTyping = typingIndicator(els.typing);

const list = new MessageList({
  scroller: els.scroller,
  list: els.messages,
  pill: els.pill,
  me: 'agent',
  authorLabel: (m) => {
    if (m.sender === 'visitor') return null;
    const name = m.author?.name ?? 'Agent';
    return m.author?.id && m.author.id === session?.agent?.id ? null : name;
  },
  onRetry: (id) => {
    if (!conv) return;
    const up = uploaderFor(conv.chatId);
    if (up.has(id)) up.retry(id);
    else outboxFor(conv.chatId).retry(id);
  },
  onDiscard: (id) => {
    if (!conv) return;
    const up = uploaderFor(conv.chatId);
    if (up.has(id)) up.discard(id);
    else outboxFor(conv.chatId).discard(id);
  },
  onSeen: () => markRead(),
  onError: (text) => toast(text),
  fetchBlob: (url) => api.blob(url),
});

// ---- set-up ----------------------------------------------------------------------

els.loginForm.addEventListener('submit', login);
els.logoutBtn.addEventListener('click', logout);
// The agent's own setting, kept on the server (`PATCH /agents/me`).
els.emailBtn.addEventListener('click', async () => {
  if (!session) return;
  const on = session.agent.email_notifications === false;
  try {
    const res = await api.request('PATCH', '/agents/me', { body: { email_notifications: on } });
    session.agent = res.agent;
    store.set(SESSION_KEY, session);
    renderMe();
    toast(on ? 'You will get email about chats nobody read.' : 'No more email about unread chats.');
  } catch {
    toast('Could not change the email setting.');
  }
});
els.soundBtn.addEventListener('click', () => {
  soundOn = !soundOn;
  store.set(SOUND_KEY, soundOn);
  renderSoundBtn();
  if (soundOn) ding();
});
els.notifyBtn.addEventListener('click', async () => {
  await Notification.requestPermission();
  renderNotifyBtn();
});
for (const btn of els.filters) btn.addEventListener('click', () => setFilter(btn.dataset.filter));
els.chatList.addEventListener('click', (e) => {
  const item = e.target.closest('[data-chat-id]');
  if (!item || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(item.dataset.chatId);
});
els.backBtn.addEventListener('click', back);
els.assignMe.addEventListener('click', () => patchChat({ assignee_id: session.agent.id }));
els.assignSelect.addEventListener('change', () => patchChat({ assignee_id: els.assignSelect.value || null }));
els.statusBtn.addEventListener('click', () => {
  const c = conv && chats.get(conv.chatId);
  if (c) patchChat({ status: c.status === 'open' ? 'closed' : 'open' });
});
els.detailsBtn.addEventListener('click', () => setDetailsOpen(els.detailsPanel.hidden));
els.detailsClose.addEventListener('click', () => setDetailsOpen(false));
els.loadEarlier.addEventListener('click', showEarlier);
setupFileSources({
  button: els.attach,
  input: els.file,
  dropTarget: els.conv,
  dropzone: els.dropzone,
  textarea: els.textarea,
  enabled: () => !!conv,
  onFiles: (files) => {
    if (!conv) return;
    // An attachment always reaches the visitor: never let one pass for a private note.
    if (els.privateToggle.checked) toast('Files always reach the visitor: turn off “Private note” to send them.');
    else uploaderFor(conv.chatId).add(files);
  },
});
els.textarea.addEventListener('input', () => conv && drafts.set(conv.chatId, els.textarea.value));
const composer = setupComposer({
  form: els.form,
  textarea: els.textarea,
  onSend: (body) => {
    if (!conv) return;
    drafts.delete(conv.chatId);
    outboxFor(conv.chatId).add(body, els.privateToggle.checked ? { private: true } : {});
    // The toggle makes the next message a note, not every one after it.
    setPrivate(false);
    list.render('bottom');
  },
  onTyping: (typing) => {
    if (conv) api.request('POST', `/chats/${conv.chatId}/typing`, { body: { typing } }).catch(() => {});
  },
});
addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markRead();
});

const canned = new CannedStore(api);
setupCannedPicker({
  textarea: els.textarea,
  listbox: els.cannedList,
  store: canned,
  context: () => ({ visitor: conv && chats.get(conv.chatId)?.visitor, agent: session?.agent }),
});
setupMentionPicker({
  textarea: els.textarea,
  listbox: els.mentionList,
  api,
  active: () => els.privateToggle.checked,
  me: () => session?.agent?.id,
});
const cannedAdmin = setupCannedAdmin({ dialog: els.cannedDialog, api, store: canned, toast });
const availability = setupAvailability({ api, input: $('availability'), text: $('availability-text'), toast });
const settingsDialog = $('settings-dialog');
wireDialog(settingsDialog);
const teamSettings = setupSettings({ dialog: settingsDialog, api, toast, openDialog });
$('settings-btn').addEventListener('click', () => teamSettings.open());
els.cannedBtn.addEventListener('click', () => cannedAdmin.open());
els.privateToggle.addEventListener('change', () => setPrivate(els.privateToggle.checked));

const search = setupSearch({
  input: els.search,
  view: els.searchView,
  results: els.searchResults,
  status: els.searchStatus,
  hide: [els.chatList, els.listEmpty],
  api,
  chatName: (id) => (chats.has(id) ? visitorName(chats.get(id).visitor) : 'Chat'),
  onOpen: openFound,
});

els.labelFilter.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.isComposing) {
    e.preventDefault();
    setLabelFilter(els.labelFilter.value);
  }
});
els.labelFilter.addEventListener('change', () => setLabelFilter(els.labelFilter.value));
els.labelFilterClear.addEventListener('click', () => {
  setLabelFilter('');
  els.labelFilter.focus();
});
els.labelInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.isComposing) {
    e.preventDefault();
    addLabel();
  }
});
els.earlierList.addEventListener('click', (e) => {
  const item = e.target.closest('[data-chat-id]');
  if (!item || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(item.dataset.chatId);
});

wireDialog(els.transferDialog);
els.transferBtn.addEventListener('click', openTransfer);
els.transferForm.addEventListener('submit', transfer);

wireDialog(els.shortcutsDialog);
els.shortcutsBtn.addEventListener('click', () => openDialog(els.shortcutsDialog, els.shortcutsDialog.querySelector('[data-close]')));
setupShortcuts({
  list: () => (search.active() ? els.searchResults : els.chatList),
  search: els.search,
  sheet: els.shortcutsDialog,
  onEscape: () => {
    if (!els.detailsPanel.hidden) {
      setDetailsOpen(false);
      els.detailsBtn.focus();
    } else if (els.app.dataset.view === 'chat' && matchMedia('(max-width: 760px)').matches) {
      back();
    }
  },
});
// Browsers only let sound play after a gesture; unlock it on the first one.
for (const ev of ['pointerdown', 'keydown']) {
  addEventListener(ev, () => {
    audio ??= 'AudioContext' in window ? new AudioContext() : null;
    audio?.resume?.();
  }, { once: true, capture: true });
}
inboxConn.subscribe((state) => {
  els.conn.dataset.connection = state;
  els.conn.querySelector('.conn__text').textContent = CONN_TEXT[state] ?? state;
});
chatConn.subscribe((state) => {
  if (state === 'connected' && conv) outboxFor(conv.chatId).flush();
});
setInterval(renderList, 30000);
renderSoundBtn();

if (session) start();
else showLogin();

// ---- sign-in ---------------------------------------------------------------------

function showLogin(message = '') {
  els.app.hidden = true;
  els.login.hidden = false;
  els.loginError.textContent = message;
  els.loginError.hidden = !message;
  document.title = BASE_TITLE;
  els.loginForm.elements.email.focus();
}

async function login(e) {
  e.preventDefault();
  const f = els.loginForm.elements;
  const email = f.email.value.trim();
  const password = f.password.value;
  if (!email || !password) {
    showLogin('Enter your email and password.');
    return;
  }
  const submit = els.loginForm.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    const res = await api.request('POST', '/agents/login', { body: { email, password } });
    session = { token: res.token, agent: res.agent };
    store.set(SESSION_KEY, session);
    f.password.value = '';
    start();
  } catch (err) {
    const text = err.status === 401 ? 'Wrong email or password.'
      : err.status === 429 ? 'Too many attempts. Please wait a moment.'
        : 'Cannot sign in right now. Please try again.';
    showLogin(text);
  } finally {
    submit.disabled = false;
  }
}

async function logout() {
  const token = session?.token;
  signOut();
  if (token) {
    await fetch('/api/v1/agents/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + token } }).catch(() => {});
  }
}

function signOut(message = '') {
  availability.stop();
  stopInbox();
  closeConv();
  session = null;
  store.remove(SESSION_KEY);
  chats.clear();
  listNodes.clear();
  outboxes.clear();
  uploaders.clear();
  drafts.clear();
  agents = null;
  inboxCursor = 0;
  canned.clear();
  search.clear();
  labelFilter = '';
  els.labelFilter.value = '';
  els.labelFilterClear.hidden = true;
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  els.chatList.replaceChildren();
  showLogin(message);
}

function start() {
  els.login.hidden = true;
  els.app.hidden = false;
  renderMe();
  renderNotifyBtn();
  setFilter(filter, { load: false });
  startInbox();
  route();
  // Refresh the stored profile; a dead token answers 401, which signs out.
  api.request('GET', '/agents/me').then((res) => {
    if (!session) return;
    session.agent = res.agent;
    store.set(SESSION_KEY, session);
    renderMe();
  }, () => {});
}

function renderMe() {
  els.me.textContent = session ? `Signed in as ${session.agent.name || session.agent.email}` : '';
  els.cannedBtn.hidden = session?.agent?.role !== 'admin';
  $('settings-btn').hidden = session?.agent?.role !== 'admin';
  if (session) availability.show(session.agent);
  els.emailBtn.setAttribute('aria-pressed', String(session?.agent?.email_notifications !== false));
}

// ---- inbox -----------------------------------------------------------------------

function startInbox() {
  stopInbox();
  const me = { abort: new AbortController() };
  inbox = me;
  (async () => {
    try {
      await inboxConn.run(() => loadList(filter, me.abort.signal), me.abort.signal);
      // The first answer only catches up with chats outside the loaded filter: no alerts for those.
      let caughtUp = false;
      await pollLoop(inboxConn, me.abort.signal, async (signal) => {
        const res = await api.request('GET', '/inbox', {
          query: { after: inboxCursor, wait: caughtUp ? WAIT_S : 0 }, signal, timeout: (WAIT_S + 15) * 1000,
        });
        if (inbox !== me) return false;
        applyInbox(res, caughtUp);
        caughtUp = true;
        return res.chats.length > 0;
      });
    } catch (err) {
      if (me.abort.signal.aborted || err.status === 401) return;
      console.error('parley: inbox updates stopped', err);
      toast('Live updates stopped; retrying…');
      setTimeout(() => { if (inbox === me) startInbox(); }, 5000);
    }
  })();
}

function stopInbox() {
  inbox?.abort.abort();
  inbox = null;
}

/** Fetches the chats of a filter (the inbox poll only brings chats that change). */
async function loadList(which, signal) {
  const query = which === 'mine' ? { status: 'open', assignee: 'me' } : { status: which };
  if (labelFilter) query.label = labelFilter;
  const res = await api.request('GET', '/chats', { query, signal });
  for (const c of res.chats) {
    upsertChat(c);
    inboxCursor = Math.max(inboxCursor, c.last_seq ?? 0);
  }
  renderList();
}

function applyInbox(res, alert) {
  for (const c of res.chats ?? []) {
    const old = chats.get(c.id);
    const last = c.last_message;
    if (alert && last?.sender === 'visitor' && last.seq > inboxCursor && (!old || last.seq > old.last_seq)) {
      newVisitorMessage(c);
    }
    upsertChat(c);
  }
  if (Number.isFinite(res.next)) inboxCursor = Math.max(inboxCursor, res.next);
  renderList();
}

/**
 * Keeps the newest copy of a chat; unread stays 0 for what this agent has just read.
 * `force`: the server's answer to our own change (labels change no seq), kept even if older.
 */
function upsertChat(c, { force = false } = {}) {
  const old = chats.get(c.id);
  if (!force && old && (c.last_seq ?? 0) < (old.last_seq ?? 0)) return old;
  const chat = { ...c };
  if (conv?.chatId === c.id && conv.readPosted >= (c.last_seq ?? 0)) {
    chat.unread = 0;
    chat.mentioned = false;
  }
  chats.set(c.id, chat);
  return chat;
}

function newVisitorMessage(c) {
  const watching = conv?.chatId === c.id && document.visibilityState === 'visible';
  if (!watching) ding();
  if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    const body = previewOf({ ...c.last_message, sender: 'visitor' });
    try {
      const n = new Notification(`New message from ${visitorName(c.visitor)}`, { body: body.slice(0, 140), tag: 'parley-' + c.id });
      n.onclick = () => {
        focus();
        navigate(c.id);
        n.close();
      };
    } catch {
      // Some browsers only notify through a service worker; the sound and the title still tell.
    }
  }
}

function setFilter(next, { load = true } = {}) {
  filter = FILTERS.includes(next) ? next : 'open';
  store.set(FILTER_KEY, filter);
  for (const btn of els.filters) btn.setAttribute('aria-pressed', String(btn.dataset.filter === filter));
  renderList();
  if (load && inbox) loadList(filter).catch(() => toast('Could not load the chats.'));
}

function matches(c) {
  if (labelFilter && !hasLabel(c, labelFilter)) return false;
  switch (filter) {
    case 'open': return c.status === 'open';
    case 'closed': return c.status === 'closed';
    case 'mine': return c.status === 'open' && c.assignee?.id === session?.agent?.id;
    default: return true;
  }
}

function hasLabel(c, label) {
  const wanted = label.toLowerCase();
  return (c.labels ?? []).some((l) => l.toLowerCase() === wanted);
}

/** Shows only the chats with `label` ('' for any), asking the server for those not loaded yet. */
function setLabelFilter(label) {
  const next = String(label ?? '').trim();
  els.labelFilter.value = next;
  els.labelFilterClear.hidden = !next;
  if (next === labelFilter) return;
  labelFilter = next;
  // A click on a label chip shows the list, not search results.
  search.clear();
  renderList();
  if (inbox) loadList(filter).catch(() => toast('Could not load the chats.'));
}

function activity(c) {
  return Date.parse(c.last_message_at || c.created_at) || 0;
}

function renderList() {
  if (!session) return;
  const shown = [...chats.values()].filter(matches).sort((a, b) => activity(b) - activity(a) || b.last_seq - a.last_seq);
  let cursor = els.chatList.firstChild;
  const keep = new Set();
  for (const c of shown) {
    keep.add(c.id);
    const view = listItemView(c);
    let node = listNodes.get(c.id);
    if (!node || node.sig !== view.sig) {
      node = { el: buildListItem(c, view), sig: view.sig };
      listNodes.set(c.id, node);
    }
    if (node.el === cursor) cursor = cursor.nextSibling;
    else els.chatList.insertBefore(node.el, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
  for (const id of listNodes.keys()) if (!keep.has(id)) listNodes.delete(id);
  els.listEmpty.hidden = shown.length > 0;
  els.listEmpty.textContent = labelFilter ? `No chats labelled “${labelFilter}” here.` : 'No chats here yet.';
  renderKnownLabels();

  let unread = 0;
  for (const c of chats.values()) if (c.status === 'open') unread += c.unread ?? 0;
  document.title = unread ? `(${unread}) ${BASE_TITLE}` : BASE_TITLE;
}

function listItemView(c) {
  const name = visitorName(c.visitor);
  const when = c.last_message_at || c.created_at;
  const age = relativeTime(when);
  const preview = previewOf(c.last_message);
  const unread = c.unread ?? 0;
  const active = conv?.chatId === c.id;
  const labels = c.labels ?? [];
  const mentioned = Boolean(c.mentioned);
  return {
    name, when, age, preview, unread, active, labels, mentioned,
    sig: [name, age, preview, unread, active, mentioned, c.status, c.assignee?.id, ...labels].join('\u0001'),
  };
}

/** The labels of every chat seen, offered by both label inputs. */
function renderKnownLabels() {
  const known = new Set();
  for (const c of chats.values()) for (const l of c.labels ?? []) known.add(l);
  const sorted = [...known].sort((a, b) => a.localeCompare(b));
  const sig = sorted.join('\u0001');
  if (sig === knownLabelsSig) return;
  knownLabelsSig = sig;
  els.knownLabels.replaceChildren(...sorted.map((l) => h('option', { value: l })));
}

function previewOf(m) {
  if (!m) return 'No messages yet';
  let text = m.attachment && (!m.body?.trim() || m.body === m.attachment.name) ? `📎 ${m.attachment.name}` : m.body?.trim() ?? '';
  text = text.replace(/\s+/g, ' ').slice(0, 120);
  if (m.sender === 'agent') {
    return (m.author?.id === session?.agent?.id ? 'You' : m.author?.name || 'Agent') + (m.private ? ' (note): ' : ': ') + text;
  }
  return text;
}

function buildListItem(c, v) {
  const a = h('a', {
    className: 'chat-item' + (v.unread ? ' chat-item--unread' : ''),
    href: '#chat=' + encodeURIComponent(c.id),
    dataset: { chatId: c.id, status: c.status },
    'aria-current': v.active ? 'true' : null,
  },
  fillAvatar(h('span', { className: 'avatar', 'aria-hidden': 'true' }), c),
  h('span', { className: 'chat-item__main' },
    h('span', { className: 'chat-item__top' },
      h('span', { className: 'chat-item__name' }, v.name),
      h('time', { className: 'chat-item__time', dateTime: v.when, title: formatFull(v.when) }, v.age)),
    h('span', { className: 'chat-item__bottom' },
      h('span', { className: 'chat-item__preview' }, v.preview),
      c.status === 'closed' ? h('span', { className: 'tag' }, 'Closed') : null,
      c.assignee && c.assignee.id !== session?.agent?.id ? h('span', { className: 'tag', title: 'Assigned to ' + c.assignee.name }, initials(c.assignee.name)) : null,
      v.unread ? h('span', { className: 'badge', 'aria-hidden': 'true' }, v.unread > 99 ? '99+' : String(v.unread)) : null,
      // The link's name is its visible text (WCAG 2.5.3); the count is spoken, not the badge.
      v.unread ? h('span', { className: 'visually-hidden' }, `, ${v.unread} unread`) : null,
      v.mentioned ? h('span', { className: 'tag tag--mention', title: 'You were mentioned in a note', dataset: { mentioned: 'true' } },
        '@', h('span', { className: 'visually-hidden' }, ' you were mentioned')) : null),
    v.labels.length ? h('span', { className: 'chat-item__labels', 'aria-label': 'Labels: ' + v.labels.join(', ') },
      ...v.labels.map((l) => h('span', { className: 'tag tag--label' }, l))) : null));
  return h('li', {}, a);
}

/** Initials of a known visitor, a person glyph for an anonymous one; the hue follows the id. */
function fillAvatar(el, c) {
  const v = c.visitor ?? {};
  if (v.name || v.email) el.replaceChildren(initials(v.name || v.email));
  else el.replaceChildren(icon('M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21a8 8 0 0 1 16 0'));
  el.style.setProperty('--hue', hueOf(v.id ?? c.id));
  return el;
}

// ---- navigation ------------------------------------------------------------------

function navigate(chatId) {
  openedFromList = true;
  const hash = '#chat=' + encodeURIComponent(chatId);
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (!session) return;
  const m = /^#chat=([^&]+)$/.exec(location.hash);
  if (m) openChat(decodeURIComponent(m[1]));
  else {
    closeConv();
    showView('list');
  }
}

function back() {
  if (openedFromList) {
    openedFromList = false;
    history.back();
  } else {
    history.pushState(null, '', location.pathname + location.search);
    route();
  }
}

function showView(view) {
  els.app.dataset.view = view;
}

// ---- conversation ------------------------------------------------------------------

function outboxFor(chatId) {
  let ob = outboxes.get(chatId);
  if (ob) return ob;
  ob = new Outbox({
    key: null,
    send: async (item) => (await api.request('POST', `/chats/${chatId}/messages`, {
      body: { body: item.body, client_id: item.client_id, ...(item.private ? { private: true } : {}) },
    })).message,
    onChange: () => {
      if (conv?.chatId !== chatId) return;
      list.setPending(pendingOf(chatId));
      list.render();
    },
    onSent: (message) => {
      if (conv?.chatId !== chatId) return;
      list.add([message]);
      list.render('bottom');
    },
  });
  outboxes.set(chatId, ob);
  return ob;
}

function uploaderFor(chatId) {
  let up = uploaders.get(chatId);
  if (up) return up;
  up = new Uploader({
    send: async (item, onProgress) => {
      const form = new FormData();
      form.append('client_id', item.client_id);
      form.append('file', item.file, item.upload.name);
      return (await api.upload(`/chats/${chatId}/attachments`, form, onProgress)).message;
    },
    maxUpload: () => (maxUpload ??= loadMaxUpload(api)),
    onChange: () => {
      if (conv?.chatId !== chatId) return;
      list.setPending(pendingOf(chatId));
      list.render('bottom');
    },
    onProgress: (item) => conv?.chatId === chatId && list.setProgress(item.client_id, item.progress),
    onSent: (message) => {
      if (conv?.chatId === chatId) list.add([message]);
    },
    onError: (text) => {
      if (conv?.chatId === chatId) toast(text);
    },
  });
  uploaders.set(chatId, up);
  return up;
}

/** What this agent has written into a chat that the server has not confirmed yet. */
function pendingOf(chatId) {
  return [...outboxFor(chatId).items, ...uploaderFor(chatId).items];
}

async function openChat(chatId) {
  showView('chat');
  if (conv?.chatId === chatId) return;
  composer.stopTyping();
  closeConv();
  const me = { chatId, abort: new AbortController(), cursor: 0, readPosted: 0, serverRead: { visitor: 0, agent: 0 } };
  conv = me;
  els.convEmpty.hidden = true;
  els.conv.hidden = false;
  const cached = chats.get(chatId);
  if (cached) renderHeader(cached);
  else els.title.textContent = 'Loading…';
  list.setPending(pendingOf(chatId));
  list.render('bottom');
  els.textarea.value = drafts.get(chatId) ?? '';
  setPrivate(false);
  els.labelInput.value = '';
  composer.grow();
  if (!matchMedia('(pointer: coarse)').matches) els.textarea.focus({ preventScroll: true });
  renderList();
  if (!agents) loadAgents();
  try {
    await chatConn.run(() => loadLatest(me), me.abort.signal);
    revealFound(me);
    loadOtherChats(me);
    await pollLoop(chatConn, me.abort.signal, async (signal) => {
      const res = await api.request('GET', `/chats/${chatId}/messages`, {
        // `state` makes the server answer at once if typing or read ticks changed meanwhile.
        query: { after: me.cursor, wait: WAIT_S, state: me.state }, signal, timeout: (WAIT_S + 15) * 1000,
      });
      if (conv !== me) return false;
      me.state = res.state;
      if (res.next > me.cursor) me.cursor = res.next;
      list.add(res.messages);
      if (res.chat) renderHeader(upsertChat(res.chat));
      applyMarkers(me, res);
      list.render();
      renderList();
      return res.messages.length > 0;
    });
  } catch (err) {
    if (me.abort.signal.aborted || err.status === 401) return;
    toast(err.status === 404 ? 'That chat does not exist.' : 'Could not load the conversation.');
    if (conv === me) {
      history.replaceState(null, '', location.pathname + location.search);
      route();
    }
  }
}

function closeConv() {
  if (!conv) return;
  conv.abort.abort();
  conv = null;
  list.reset();
  showTyping(false);
  setDetailsOpen(false);
  els.conv.hidden = true;
  els.convEmpty.hidden = false;
  els.loadEarlier.hidden = true;
  els.earlier.hidden = true;
  els.earlierList.replaceChildren();
  delete els.convLabels.dataset.sig;
  renderList();
}

async function loadLatest(me) {
  const { chat } = await api.request('GET', `/chats/${me.chatId}`, { signal: me.abort.signal });
  const page = await api.request('GET', `/chats/${me.chatId}/messages`, {
    query: { before: chat.last_seq + 1, limit: HISTORY_PAGE }, signal: me.abort.signal,
  });
  if (conv !== me) return;
  renderHeader(upsertChat(chat));
  list.add(page.messages);
  me.cursor = Math.max(me.cursor, chat.last_seq);
  els.loadEarlier.hidden = !page.has_more;
  applyMarkers(me, page);
  list.render('bottom');
  renderList();
}

function applyMarkers(me, res) {
  if (res.read) {
    me.serverRead = { visitor: res.read.visitor ?? 0, agent: res.read.agent ?? 0 };
    list.setOtherRead(me.serverRead.visitor);
  }
  if (res.typing) showTyping(!!res.typing.visitor);
}

function showEarlier() {
  const me = conv;
  if (!me) return;
  loadEarlier({
    api, list, button: els.loadEarlier, chatId: me.chatId, stillCurrent: () => conv === me,
    render: (mode) => list.render(mode), toast,
  });
}

/** Moves this agent's read marker when the latest visitor messages are really on screen. */
function markRead() {
  const me = conv;
  if (!me || document.visibilityState !== 'visible' || !list.nearBottom()) return;
  const already = Math.max(me.readPosted, me.serverRead.agent);
  const mentioned = Boolean(chats.get(me.chatId)?.mentioned);
  // A mention of this agent is read by opening the chat, even with nothing new from the visitor.
  if (list.countTheirsAfter(already) === 0 && !mentioned) return;
  const seq = list.maxSeq;
  const before = me.readPosted;
  me.readPosted = seq;
  api.request('POST', `/chats/${me.chatId}/read`, { body: { seq } }).catch(() => { me.readPosted = before; });
  const c = chats.get(me.chatId);
  if (c) {
    c.unread = 0;
    c.mentioned = false;
    renderList();
  }
}

function renderHeader(c) {
  if (!c || conv?.chatId !== c.id) return;
  const name = visitorName(c.visitor);
  els.title.textContent = name;
  fillAvatar(els.avatar, c);
  els.status.textContent = c.status === 'open' ? 'Open' : 'Closed';
  els.status.dataset.status = c.status;
  const mine = c.assignee?.id === session?.agent?.id;
  els.assignee.textContent = c.assignee ? `· ${mine ? 'Assigned to you' : 'Assigned to ' + c.assignee.name}` : '· Unassigned';
  els.assignMe.hidden = mine;
  renderRating(c.rating);
  els.statusBtn.textContent = c.status === 'open' ? 'Close' : 'Reopen';
  els.statusBtn.setAttribute('aria-label', c.status === 'open' ? 'Close chat' : 'Reopen chat');
  renderAssignSelect(c);
  renderLabels(c);
  if (!els.detailsPanel.hidden) renderDetails(c);
}

/** The visitor's rating of a closed chat: stars in the header, the comment as its tooltip. */
function renderRating(rating) {
  els.rating.hidden = !rating;
  if (!rating) return;
  const stars = Math.max(1, Math.min(5, Number(rating.rating) || 0));
  els.rating.dataset.rating = String(stars);
  els.rating.textContent = `${'★'.repeat(stars)}${'☆'.repeat(5 - stars)}`;
  const label = `Rated ${stars} of 5${rating.comment ? `: “${rating.comment}”` : ''}`;
  els.rating.title = label;
  els.rating.setAttribute('aria-label', label);
}

async function loadAgents() {
  try {
    agents = (await api.request('GET', '/agents')).agents ?? [];
  } catch {
    agents = null;
    return;
  }
  const c = conv && chats.get(conv.chatId);
  if (c) renderAssignSelect(c);
}

function renderAssignSelect(c) {
  const options = [h('option', { value: '' }, 'Unassigned')];
  const known = new Map((agents ?? []).map((a) => [a.id, a]));
  if (c.assignee && !known.has(c.assignee.id)) known.set(c.assignee.id, c.assignee);
  for (const a of known.values()) {
    options.push(h('option', { value: a.id }, a.id === session?.agent?.id ? `${a.name} (you)` : a.name));
  }
  els.assignSelect.replaceChildren(...options);
  els.assignSelect.value = c.assignee?.id ?? '';
}

/** Changes the open chat; true when the server took the change. */
async function patchChat(body) {
  const me = conv;
  if (!me) return false;
  const controls = [els.assignMe, els.assignSelect, els.statusBtn, els.transferBtn];
  for (const el of controls) el.disabled = true;
  try {
    const res = await api.request('PATCH', `/chats/${me.chatId}`, { body });
    renderHeader(upsertChat(res.chat, { force: true }));
    renderList();
    return true;
  } catch (err) {
    if (err.status !== 401) toast(err.message ? `Could not update the chat: ${err.message}` : 'Could not update the chat.');
    const c = chats.get(me.chatId);
    if (c) renderHeader(c);
    return false;
  } finally {
    for (const el of controls) el.disabled = false;
  }
}

// ---- labels ------------------------------------------------------------------------

/** The open chat's labels as chips: the name filters the inbox by it, × removes it. */
function renderLabels(c) {
  const labels = c.labels ?? [];
  const sig = labels.join('\u0001');
  // Re-rendered only on a change, so a poll answer never takes the focus from a chip.
  if (els.convLabels.dataset.sig === sig) return;
  els.convLabels.dataset.sig = sig;
  els.convLabels.replaceChildren(...labels.map((label) => h('li', { className: 'label-chip', dataset: { label } },
    h('button', {
      type: 'button', className: 'label-chip__name', title: `Show only chats labelled “${label}”`,
      on: { click: () => setLabelFilter(label) },
    }, label),
    h('button', {
      type: 'button', className: 'label-chip__remove', 'aria-label': `Remove label ${label}`, title: 'Remove label',
      on: { click: () => removeLabel(label) },
    }, icon('M7 7l10 10M17 7L7 17')))));
}

async function addLabel() {
  const c = conv && chats.get(conv.chatId);
  if (!c) return;
  const label = els.labelInput.value.trim().replace(/\s+/g, ' ');
  if (!label) return;
  const labels = c.labels ?? [];
  if (hasLabel(c, label)) {
    els.labelInput.value = '';
    return;
  }
  if ([...label].length > LABEL_MAX_CHARS) {
    toast(`A label is at most ${LABEL_MAX_CHARS} characters.`);
    return;
  }
  if (labels.length >= LABELS_MAX) {
    toast(`A chat has at most ${LABELS_MAX} labels.`);
    return;
  }
  if (await patchChat({ labels: [...labels, label] })) els.labelInput.value = '';
}

async function removeLabel(label) {
  const c = conv && chats.get(conv.chatId);
  if (!c) return;
  // The chip goes away with the focus on it: give the focus to the label box.
  els.labelInput.focus();
  await patchChat({ labels: (c.labels ?? []).filter((l) => l !== label) });
}

// ---- transfer ----------------------------------------------------------------------

async function openTransfer() {
  const c = conv && chats.get(conv.chatId);
  if (!c) return;
  if (!agents) await loadAgents();
  const f = els.transferForm;
  const choices = (agents ?? []).filter((a) => !a.disabled && a.id !== c.assignee?.id);
  if (!choices.length) {
    toast('There is no other agent to transfer this chat to.');
    return;
  }
  // Someone else first: handing a chat over is what a transfer is for.
  choices.sort((a, b) => (a.id === session?.agent?.id) - (b.id === session?.agent?.id));
  f.elements['transfer-agent'].replaceChildren(...choices.map((a) => h('option', { value: a.id },
    a.id === session?.agent?.id ? `${a.name} (you)` : a.name)));
  f.elements['transfer-note'].value = '';
  setTransferError('');
  openDialog(els.transferDialog, f.elements['transfer-agent']);
}

function setTransferError(text) {
  const el = els.transferForm.querySelector('.form-error');
  el.textContent = text;
  el.hidden = !text;
}

async function transfer(e) {
  e.preventDefault();
  const me = conv;
  if (!me) return;
  const f = els.transferForm;
  const assigneeId = f.elements['transfer-agent'].value;
  const note = f.elements['transfer-note'].value.trim();
  const name = f.elements['transfer-agent'].selectedOptions[0]?.textContent ?? 'the agent';
  if (!assigneeId) return;
  const submit = f.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    const res = await api.request('PATCH', `/chats/${me.chatId}`, {
      body: { assignee_id: assigneeId, ...(note ? { note } : {}) },
    });
    if (conv === me) renderHeader(upsertChat(res.chat, { force: true }));
    renderList();
    els.transferDialog.close();
    toast(`Transferred to ${name}.`);
  } catch (err) {
    setTransferError(err.message ? `Could not transfer the chat: ${err.message}` : 'Could not transfer the chat.');
  } finally {
    submit.disabled = false;
  }
}

// ---- the visitor's other chats ------------------------------------------------------

/** Lists the other chats of the open chat's visitor, for a returning visitor. */
async function loadOtherChats(me) {
  const current = chats.get(me.chatId);
  const visitorId = current?.visitor?.id;
  if (!visitorId) return;
  let res;
  try {
    res = await api.request('GET', '/chats', { query: { visitor_id: visitorId, status: 'all' }, signal: me.abort.signal });
  } catch {
    return;
  }
  if (conv !== me) return;
  // Filtered here too: a server that ignored visitor_id must not list strangers' chats.
  const others = (res.chats ?? []).filter((c) => c.id !== me.chatId && c.visitor?.id === visitorId)
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  for (const c of others) upsertChat(c);
  const allEarlier = others.every((c) => Date.parse(c.created_at) <= Date.parse(current.created_at));
  els.earlierTitle.textContent = allEarlier ? 'Earlier chats' : 'Other chats';
  els.earlierList.replaceChildren(...others.map((c) => h('li', {},
    h('a', { className: 'earlier__item', href: '#chat=' + encodeURIComponent(c.id), dataset: { chatId: c.id } },
      h('time', { className: 'earlier__when', dateTime: c.created_at, title: formatFull(c.created_at) }, relativeTime(c.created_at)),
      c.status === 'closed' ? h('span', { className: 'tag' }, 'Closed') : h('span', { className: 'tag tag--open' }, 'Open'),
      h('span', { className: 'earlier__preview' }, previewOf(c.last_message))))));
  els.earlier.hidden = others.length === 0;
  renderList();
}

// ---- search results ------------------------------------------------------------------

/** Opens the chat of a message found by search and scrolls to that message. */
function openFound(chatId, message) {
  revealing = { chatId, messageId: message.id, seq: message.seq };
  if (conv?.chatId === chatId) {
    showView('chat');
    revealFound(conv);
  } else {
    navigate(chatId);
  }
}

/** Pages back (`before=`) until the message being revealed is loaded, then highlights it. */
async function revealFound(me) {
  const target = revealing;
  if (!target || target.chatId !== me.chatId || conv !== me) return;
  revealing = null;
  try {
    while (!list.has(target.messageId)) {
      const before = list.minSeq;
      if (before === null || (Number.isFinite(target.seq) && before <= target.seq)) break;
      const page = await api.request('GET', `/chats/${me.chatId}/messages`, {
        query: { before, limit: REVEAL_PAGE }, signal: me.abort.signal,
      });
      if (conv !== me) return;
      list.add(page.messages);
      els.loadEarlier.hidden = !page.has_more;
      if (!page.messages?.length || !page.has_more) break;
    }
  } catch (err) {
    if (me.abort.signal.aborted || conv !== me) return;
    toast('Could not load that message.');
  }
  if (conv !== me) return;
  list.render('prepend');
  if (!list.highlight(target.messageId)) toast('That message is no longer in this chat.');
}

// ---- private notes -------------------------------------------------------------------

/** Whether the next message goes out as a private note; the composer turns yellow. */
function setPrivate(on) {
  els.privateToggle.checked = on;
  els.composerWrap.dataset.private = String(on);
  els.noteHint.hidden = !on;
  els.textarea.placeholder = on ? 'Write a private note (only agents see it; @name notifies a colleague)…' : 'Write a reply…';
  els.sendBtn.setAttribute('aria-label', on ? 'Add private note' : 'Send reply');
  els.attach.disabled = on;
  els.attach.title = on ? 'Files cannot be private notes' : '';
}

function setDetailsOpen(open) {
  els.detailsPanel.hidden = !open;
  els.detailsBtn.setAttribute('aria-expanded', String(open));
  els.app.classList.toggle('app--details', open);
  const c = conv && chats.get(conv.chatId);
  if (open && c) renderDetails(c);
}

function renderDetails(c) {
  const v = c.visitor ?? {};
  const rows = [
    ['Name', v.name || '—'],
    ['Email', v.email || '—'],
    ['First seen', v.created_at ? formatFull(v.created_at) : '—'],
    ['First page', v.page_url ? safeLink(v.page_url, v.page_url) ?? v.page_url : '—'],
    ...contextRows(v.context),
    ['Chat started', c.created_at ? formatFull(c.created_at) : '—'],
    ['Status', c.status === 'open' ? 'Open' : 'Closed'],
    ['Assignee', c.assignee?.name ?? 'Unassigned'],
    ['Rating', c.rating ? `${c.rating.rating} of 5` : '—'],
    ...(c.rating?.comment ? [['Comment', c.rating.comment]] : []),
    ...(v.external_id ? [['Site user id', v.external_id]] : []),
    ['Chat id', h('code', {}, c.id)],
  ];
  els.detailsList.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** Where the visitor is now, as its page last said: page, referrer, browser, language, local time. */
function contextRows(context) {
  if (!context) return [];
  const link = (url) => (url ? safeLink(url, url) ?? url : '—');
  const browser = [context.browser, context.os].filter(Boolean).join(' · ');
  return [
    ['Now on', link(context.page_url)],
    ['Came from', link(context.referrer)],
    ['Browser', browser || '—'],
    ['Language', context.locale || '—'],
    ['Local time', localTime(context.timezone)],
  ];
}

/** The visitor's own clock now, e.g. "14:05 (Europe/Berlin)". */
function localTime(zone) {
  if (!zone) return '—';
  try {
    const time = new Intl.DateTimeFormat(undefined, { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit' }).format(new Date());
    return `${time} (${zone})`;
  } catch {
    return zone;
  }
}

// ---- sound, notifications, toasts --------------------------------------------------------

/** A short two-tone chime made with an oscillator (no audio file). */
function ding() {
  if (!soundOn || !audio || audio.state !== 'running') return;
  const t = audio.currentTime;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = 'sine';
  osc.frequency.setValueAtTime(880, t);
  osc.frequency.setValueAtTime(1320, t + 0.1);
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(0.18, t + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
  osc.connect(gain).connect(audio.destination);
  osc.start(t);
  osc.stop(t + 0.36);
}

function renderSoundBtn() {
  els.soundBtn.setAttribute('aria-pressed', String(soundOn));
  els.soundBtn.classList.toggle('is-off', !soundOn);
}

function renderNotifyBtn() {
  els.notifyBtn.hidden = !('Notification' in window) || Notification.permission !== 'default';
}

let toastTimer = 0;
function toast(text) {
  els.toast.textContent = text;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { els.toast.hidden = true; }, 4000);
}
