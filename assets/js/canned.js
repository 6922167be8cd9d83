// canned.js: canned responses in the agent inbox — the list an agent opens by typing `/` at
// the start of the composer (a listbox: arrows move, Enter or a click inserts, Esc closes),
// the placeholders filled in on insert, and the admins' panel to add, edit and delete them.

import { h } from './format.js';
import { openDialog, wireDialog } from './dialogs.js';

/** A cached list older than this is fetched again when the picker opens. */
const STALE_MS = 30000;
/** What the composer must hold for the picker to show: `/` and part of a shortcut. */
const TRIGGER = /^\/([^\s/]*)$/;
const SHORTCUT = /^[a-z0-9_-]{1,32}$/;
const PLACEHOLDER = /\{\{\s*(visitor\.name|visitor\.email|agent\.name)\s*\}\}/g;

/** The team's canned responses, fetched once and shared by the picker and the admin panel. */
export class CannedStore {
  constructor(api) {
    this.api = api;
    this.items = [];
    this.fetchedAt = 0;
    this.pending = null;
  }

  /** The list, fetched again when stale or when `force`; an error keeps the old list. */
  async load({ force = false } = {}) {
    if (!force && this.fetchedAt && Date.now() - this.fetchedAt < STALE_MS) return this.items;
    this.pending ??= this.api.request('GET', '/canned').then((res) => {
      this.items = sortByShortcut(res.canned ?? []);
      this.fetchedAt = Date.now();
      return this.items;
    }).finally(() => { this.pending = null; });
    return this.pending;
  }

  /** Puts a created or edited response into the cached list. */
  put(canned) {
    this.items = sortByShortcut([...this.items.filter((c) => c.id !== canned.id), canned]);
  }

  remove(id) {
    this.items = this.items.filter((c) => c.id !== id);
  }

  clear() {
    this.items = [];
    this.fetchedAt = 0;
  }
}

function sortByShortcut(list) {
  return [...list].sort((a, b) => a.shortcut.localeCompare(b.shortcut));
}

/** Fills `{{visitor.name}}`, `{{visitor.email}}` and `{{agent.name}}`; unknown values become ''. */
export function fillPlaceholders(body, { visitor, agent } = {}) {
  const values = { 'visitor.name': visitor?.name, 'visitor.email': visitor?.email, 'agent.name': agent?.name };
  return String(body).replace(PLACEHOLDER, (_, key) => values[key] ?? '');
}

/** The responses whose shortcut holds `query`: those that start with it first. */
export function matchCanned(items, query) {
  const q = query.toLowerCase();
  const hits = items.filter((c) => c.shortcut.toLowerCase().includes(q));
  const starts = (c) => (c.shortcut.toLowerCase().startsWith(q) ? 0 : 1);
  return hits.sort((a, b) => starts(a) - starts(b) || a.shortcut.localeCompare(b.shortcut));
}

/**
 * The `/` picker on the composer.
 * @param {object} o
 * @param {HTMLTextAreaElement} o.textarea
 * @param {HTMLElement} o.listbox  a `ul[role=listbox]`
 * @param {CannedStore} o.store
 * @param {() => {visitor, agent}} o.context  what the placeholders are filled from
 * @returns {{close: () => void}}
 */
export function setupCannedPicker({ textarea, listbox, store, context }) {
  let shown = [];
  let active = 0;
  /** The composer text the agent closed the list on: it stays closed until the text changes. */
  let dismissed = null;
  let generation = 0;

  const isOpen = () => !listbox.hidden;

  function close() {
    generation += 1;
    listbox.hidden = true;
    listbox.replaceChildren();
    shown = [];
    textarea.removeAttribute('aria-activedescendant');
  }

  function render() {
    listbox.replaceChildren(...shown.map((c, i) => h('li', {
      id: 'canned-option-' + i,
      role: 'option',
      className: 'canned-option',
      dataset: { cannedShortcut: c.shortcut },
      'aria-selected': String(i === active),
      on: {
        // Keep the focus (and the caret) in the composer.
        mousedown: (e) => e.preventDefault(),
        click: () => pick(c),
      },
    }, h('span', { className: 'canned-option__shortcut' }, '/' + c.shortcut),
    h('span', { className: 'canned-option__body' }, c.body.replace(/\s+/g, ' ')))));
    listbox.hidden = shown.length === 0;
    if (shown.length) {
      textarea.setAttribute('aria-activedescendant', 'canned-option-' + active);
      listbox.children[active]?.scrollIntoView({ block: 'nearest' });
    } else {
      textarea.removeAttribute('aria-activedescendant');
    }
  }

  async function update() {
    const m = TRIGGER.exec(textarea.value);
    if (!m || textarea.value === dismissed) {
      if (isOpen() || shown.length) close();
      if (!m) dismissed = null;
      return;
    }
    const mine = ++generation;
    let items = store.items;
    if (!store.fetchedAt || Date.now() - store.fetchedAt >= STALE_MS) {
      // Show what we have at once; the fresh list replaces it when it comes.
      if (store.fetchedAt) show(items, m[1]);
      try {
        items = await store.load();
      } catch {
        // No list (a network error, or a server without canned responses): nothing to show.
      }
      if (mine !== generation) return;
    }
    show(items, m[1]);
  }

  function show(items, query) {
    const previous = shown[active]?.id;
    shown = matchCanned(items, query);
    const keep = shown.findIndex((c) => c.id === previous);
    active = keep >= 0 ? keep : 0;
    render();
  }

  function pick(c) {
    const text = fillPlaceholders(c.body, context());
    close();
    dismissed = text;
    textarea.value = text;
    textarea.focus();
    textarea.setSelectionRange(text.length, text.length);
    // The composer grows, the draft is kept and typing is reported as for typed text.
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  }

  textarea.addEventListener('input', update);
  textarea.addEventListener('blur', () => {
    if (isOpen()) close();
  });
  // Capture: runs before the composer's own Enter-sends handler, which skips a prevented key.
  textarea.addEventListener('keydown', (e) => {
    if (!isOpen() || e.isComposing) return;
    const n = shown.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      active = (active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
    } else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
      pick(shown[active]);
    } else if (e.key === 'Escape') {
      dismissed = textarea.value;
      close();
      e.preventDefault();
      return;
    } else {
      return;
    }
    e.preventDefault();
    if (isOpen()) render();
  }, { capture: true });

  return { close };
}

/**
 * The admins' panel: the list with edit and delete, and a form that adds or saves one.
 * @param {object} o
 * @param {HTMLDialogElement} o.dialog
 * @param {{request: Function}} o.api
 * @param {CannedStore} o.store
 * @param {(text: string) => void} o.toast
 * @returns {{open: () => void}}
 */
export function setupCannedAdmin({ dialog, api, store, toast }) {
  const list = dialog.querySelector('#canned-admin-list');
  const empty = dialog.querySelector('#canned-admin-empty');
  const form = dialog.querySelector('#canned-form');
  const title = dialog.querySelector('#canned-form-title');
  const error = form.querySelector('.form-error');
  const submit = form.querySelector('[type=submit]');
  const cancelEdit = form.querySelector('[data-cancel-edit]');
  /** The response being edited, or null while the form adds a new one. */
  let editing = null;
  /** The response whose delete waits for a second click. */
  let confirming = null;

  wireDialog(dialog);
  dialog.addEventListener('close', () => {
    confirming = null;
    resetForm();
  });
  cancelEdit.addEventListener('click', () => {
    const id = editing?.id;
    resetForm();
    list.querySelector(`[data-canned-id="${CSS.escape(id ?? '')}"] button`)?.focus();
  });
  form.addEventListener('submit', save);

  function setError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  function resetForm() {
    editing = null;
    form.reset();
    setError('');
    title.textContent = 'Add a canned response';
    submit.textContent = 'Add';
    cancelEdit.hidden = true;
  }

  function edit(c) {
    editing = c;
    confirming = null;
    render();
    form.elements.shortcut.value = c.shortcut;
    form.elements.body.value = c.body;
    setError('');
    title.textContent = `Edit /${c.shortcut}`;
    submit.textContent = 'Save';
    cancelEdit.hidden = false;
    form.elements.body.focus();
  }

  async function save(e) {
    e.preventDefault();
    const shortcut = form.elements.shortcut.value.trim().toLowerCase();
    const body = form.elements.body.value;
    if (!SHORTCUT.test(shortcut)) {
      setError('A shortcut is 1 to 32 of a–z, 0–9, _ and -.');
      form.elements.shortcut.focus();
      return;
    }
    if (!body.trim()) {
      setError('Write the text of the response.');
      form.elements.body.focus();
      return;
    }
    submit.disabled = true;
    try {
      const res = editing
        ? await api.request('PATCH', `/canned/${editing.id}`, { body: { shortcut, body } })
        : await api.request('POST', '/canned', { body: { shortcut, body } });
      store.put(res.canned);
      toast(editing ? `Saved /${shortcut}.` : `Added /${shortcut}.`);
      resetForm();
      render();
      form.elements.shortcut.focus();
    } catch (err) {
      setError(err.status === 409 ? `There is already a /${shortcut}.`
        : err.status === 403 ? 'Only admins can change canned responses.'
          : err.message || 'Could not save it.');
    } finally {
      submit.disabled = false;
    }
  }

  async function remove(c) {
    try {
      await api.request('DELETE', `/canned/${c.id}`);
      store.remove(c.id);
      if (editing?.id === c.id) resetForm();
      toast(`Deleted /${c.shortcut}.`);
    } catch (err) {
      toast(err.message ? `Could not delete it: ${err.message}` : 'Could not delete it.');
    }
    confirming = null;
    render();
    form.elements.shortcut.focus();
  }

  function render() {
    list.replaceChildren(...store.items.map((c) => {
      const actions = confirming === c.id
        ? [h('span', { className: 'canned-admin__ask' }, `Delete /${c.shortcut}?`),
          h('button', { type: 'button', className: 'btn btn--small btn--danger', on: { click: () => remove(c) } }, 'Delete'),
          h('button', {
            type: 'button', className: 'btn btn--small',
            on: { click: () => { confirming = null; render(); focusRow(c.id); } },
          }, 'Keep')]
        : [h('button', { type: 'button', className: 'btn btn--small', 'aria-label': `Edit /${c.shortcut}`, on: { click: () => edit(c) } }, 'Edit'),
          h('button', {
            type: 'button', className: 'btn btn--small btn--danger', 'aria-label': `Delete /${c.shortcut}`,
            on: { click: () => { confirming = c.id; render(); focusRow(c.id, '.btn--danger'); } },
          }, 'Delete')];
      return h('li', { className: 'canned-admin__item', dataset: { cannedId: c.id }, 'aria-current': editing?.id === c.id ? 'true' : null },
        h('code', { className: 'canned-admin__shortcut' }, '/' + c.shortcut),
        h('span', { className: 'canned-admin__body' }, c.body),
        h('span', { className: 'canned-admin__actions' }, ...actions));
    }));
    empty.hidden = store.items.length > 0;
  }

  function focusRow(id, css = 'button') {
    list.querySelector(`[data-canned-id="${CSS.escape(id)}"] ${css}`)?.focus();
  }

  return {
    async open() {
      resetForm();
      render();
      openDialog(dialog, form.elements.shortcut);
      try {
        await store.load({ force: true });
        render();
      } catch {
        setError('Could not load the canned responses.');
      }
    },
  };
}
