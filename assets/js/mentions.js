// mentions.js: the `@` picker of a private note. Typing `@` (and part of a name) in note mode
// lists the colleagues it may mean; arrows move, Enter or Tab or a click inserts `@handle`,
// Esc closes. A handle is the local part of the agent's email, as the server reads it.

import { h } from './format.js';

/** A cached team list older than this is fetched again when the picker opens. */
const STALE_MS = 60000;
/** An `@` that starts a word, and what follows it up to the caret. */
const TRIGGER = /(?:^|[^\p{L}\p{N}_])@([\p{L}\p{N}._+-]*)$/u;

export function handleOf(agent) {
  return String(agent.email || '').split('@')[0].toLowerCase();
}

/**
 * @param {object} o
 * @param {HTMLTextAreaElement} o.textarea
 * @param {HTMLElement} o.listbox  a `ul[role=listbox]`
 * @param {{request: Function}} o.api
 * @param {() => boolean} o.active  whether the composer writes a note now
 * @param {() => string|undefined} o.me  the signed-in agent's id (not offered)
 */
export function setupMentionPicker({ textarea, listbox, api, active, me }) {
  let team = [];
  let fetchedAt = 0;
  let shown = [];
  let current = 0;
  let start = -1;

  const isOpen = () => !listbox.hidden;

  async function loadTeam() {
    if (fetchedAt && Date.now() - fetchedAt < STALE_MS) return team;
    try {
      const res = await api.request('GET', '/agents');
      team = (res.agents ?? []).filter((a) => !a.disabled);
      fetchedAt = Date.now();
    } catch {
      // Keep what we had: a picker is a help, not a requirement.
    }
    return team;
  }

  function close() {
    listbox.hidden = true;
    listbox.replaceChildren();
    shown = [];
    start = -1;
  }

  function render() {
    listbox.replaceChildren(...shown.map((a, i) => h('li', {
      id: 'mention-option-' + i,
      role: 'option',
      className: 'canned-option',
      dataset: { mentionHandle: handleOf(a) },
      'aria-selected': String(i === current),
      on: { mousedown: (e) => e.preventDefault(), click: () => pick(a) },
    }, h('span', { className: 'canned-option__shortcut' }, '@' + handleOf(a)),
    h('span', { className: 'canned-option__body' }, a.name))));
    listbox.hidden = shown.length === 0;
    if (shown.length) textarea.setAttribute('aria-activedescendant', 'mention-option-' + current);
    else textarea.removeAttribute('aria-activedescendant');
  }

  async function update() {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const m = active() ? TRIGGER.exec(before) : null;
    if (!m) {
      if (isOpen()) close();
      return;
    }
    const query = m[1].toLowerCase();
    start = before.length - m[1].length - 1;
    const agents = await loadTeam();
    shown = agents
      .filter((a) => a.id !== me())
      .filter((a) => handleOf(a).includes(query) || a.name.toLowerCase().replace(/\s+/g, '').includes(query))
      .slice(0, 8);
    current = 0;
    render();
  }

  function pick(agent) {
    const at = start;
    const caret = textarea.selectionStart;
    close();
    if (at < 0) return;
    const insert = '@' + handleOf(agent) + ' ';
    textarea.value = textarea.value.slice(0, at) + insert + textarea.value.slice(caret);
    const end = at + insert.length;
    textarea.focus();
    textarea.setSelectionRange(end, end);
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  }

  textarea.addEventListener('input', update);
  textarea.addEventListener('blur', () => { if (isOpen()) close(); });
  // Capture: runs before the composer's Enter-sends handler.
  textarea.addEventListener('keydown', (e) => {
    if (!isOpen() || e.isComposing) return;
    const n = shown.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      current = (current + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      render();
    } else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
      pick(shown[current]);
    } else if (e.key === 'Escape') {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  }, { capture: true });

  return { close };
}
