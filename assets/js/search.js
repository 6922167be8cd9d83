// search.js: the inbox's message search — the box (debounced as the agent types, at once on
// Enter), the results in place of the chat list, each with its snippet, whose `<mark>`s are
// rebuilt as elements and everything else as text.

import { appendSnippet, formatFull, h, relativeTime } from './format.js';

const DEBOUNCE_MS = 250;
const LIMIT = 30;

/**
 * @param {object} o
 * @param {HTMLInputElement} o.input      `input[name=search]`
 * @param {HTMLElement} o.view            shown instead of `o.hide` while the box holds a query
 * @param {HTMLElement} o.results         the results list
 * @param {HTMLElement} o.status          "3 messages found", errors
 * @param {HTMLElement[]} o.hide          what the results replace (the chat list)
 * @param {{request: Function}} o.api
 * @param {(chatId: string) => string} o.chatName
 * @param {(chatId: string, message: object) => void} o.onOpen
 * @param {(active: boolean) => void} [o.onToggle]
 * @returns {{active: () => boolean, clear: () => void}}
 */
export function setupSearch({ input, view, results, status, hide, api, chatName, onOpen, onToggle }) {
  let timer = 0;
  let controller = null;
  let lastQuery = '';

  const active = () => !view.hidden;

  function setActive(on) {
    if (on === active()) return;
    view.hidden = !on;
    for (const el of hide) el.classList.toggle('is-replaced', on);
    onToggle?.(on);
  }

  function clear() {
    clearTimeout(timer);
    controller?.abort();
    controller = null;
    lastQuery = '';
    input.value = '';
    results.replaceChildren();
    status.textContent = '';
    setActive(false);
  }

  async function run(force = false) {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) {
      clear();
      return;
    }
    if (q === lastQuery && !force) return;
    lastQuery = q;
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    setActive(true);
    status.textContent = 'Searching…';
    view.setAttribute('aria-busy', 'true');
    try {
      const res = await api.request('GET', '/search', { query: { q, limit: LIMIT }, signal: mine.signal });
      if (controller !== mine) return;
      render(res.results ?? []);
    } catch (err) {
      if (controller !== mine || err.name === 'AbortError') return;
      results.replaceChildren();
      status.textContent = err.status === 400 || err.status === 422 ? 'That search cannot be run.' : 'Search failed. Press Enter to try again.';
      lastQuery = '';
    } finally {
      if (controller === mine) view.removeAttribute('aria-busy');
    }
  }

  function render(found) {
    status.textContent = found.length === 0 ? 'No messages found.'
      : found.length === 1 ? '1 message found.' : `${found.length} messages found.`;
    results.replaceChildren(...found.map((r) => {
      const m = r.message ?? {};
      const when = m.created_at;
      const a = h('a', {
        className: 'chat-item search-result',
        href: '#chat=' + encodeURIComponent(r.chat_id),
        // Not `data-message-id`: that hook means a message rendered in a conversation.
        dataset: { chatId: r.chat_id, resultMessageId: m.id ?? '' },
        on: {
          click: (e) => {
            if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
            e.preventDefault();
            onOpen(r.chat_id, m);
          },
        },
      },
      h('span', { className: 'chat-item__main' },
        h('span', { className: 'chat-item__top' },
          h('span', { className: 'chat-item__name' }, chatName(r.chat_id)),
          m.private ? h('span', { className: 'tag tag--note' }, 'Note') : null,
          when ? h('time', { className: 'chat-item__time', dateTime: when, title: formatFull(when) }, relativeTime(when)) : null),
        appendSnippet(h('span', { className: 'search-result__snippet' }), r.snippet ?? '')));
      return h('li', {}, a);
    }));
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    if (!input.value.trim()) {
      clear();
      return;
    }
    timer = setTimeout(() => run(), DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) {
      e.preventDefault();
      run(true);
    } else if (e.key === 'ArrowDown' && active()) {
      // From the box straight into the results.
      e.preventDefault();
      results.querySelector('[data-chat-id]')?.focus();
    }
  });

  return { active, clear };
}
