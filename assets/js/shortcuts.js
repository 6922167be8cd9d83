// shortcuts.js: the inbox's keyboard — j/k and the arrows move through the visible list,
// Enter opens (the items are links), `/` goes to search, `?` shows the sheet of shortcuts,
// Esc leaves a field or closes what is open. None of it acts while the agent types.

import { dialogOpen, openDialog } from './dialogs.js';

/** Inputs where letters are text, not commands. */
const TEXT_INPUTS = new Set(['text', 'search', 'email', 'password', 'url', 'tel', 'number', 'date', 'time']);

/**
 * @param {object} o
 * @param {() => HTMLElement|null} o.list  the list of `[data-chat-id]` items shown now
 * @param {HTMLInputElement} o.search
 * @param {HTMLDialogElement} o.sheet     the shortcut sheet
 * @param {() => void} o.onEscape         Esc outside any field and popup
 */
export function setupShortcuts({ list, search, sheet, onEscape }) {
  document.addEventListener('keydown', (e) => {
    // defaultPrevented: a popup took the key (the canned list's Esc, arrows, Enter).
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    // A modal dialog handles its own keys; the browser closes it on Esc.
    if (dialogOpen()) return;
    const target = e.target instanceof Element ? e.target : null;
    if (target && isField(target)) {
      if (e.key === 'Escape') {
        e.preventDefault();
        target.blur();
      }
      return;
    }
    switch (e.key) {
      case 'j':
      case 'ArrowDown':
        if (move(list(), 1)) e.preventDefault();
        break;
      case 'k':
      case 'ArrowUp':
        if (move(list(), -1)) e.preventDefault();
        break;
      case '/':
        e.preventDefault();
        search.focus();
        search.select();
        break;
      case '?':
        e.preventDefault();
        openDialog(sheet, sheet.querySelector('[data-close]'));
        break;
      case 'Escape':
        onEscape();
        break;
      default:
    }
  });
}

function isField(el) {
  if (el.isContentEditable) return true;
  if (el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return true;
  return el instanceof HTMLInputElement && TEXT_INPUTS.has(el.type);
}

/** Focuses the item `step` away from the focused one (or from the open chat); false when none. */
function move(box, step) {
  if (!box) return false;
  const items = [...box.querySelectorAll('[data-chat-id]')].filter((el) => el.offsetParent !== null);
  if (!items.length) return false;
  let i = items.indexOf(document.activeElement);
  if (i < 0) {
    const current = items.findIndex((el) => el.getAttribute('aria-current') === 'true');
    i = current >= 0 ? current : step > 0 ? -1 : items.length;
  }
  const next = items[Math.max(0, Math.min(items.length - 1, i + step))];
  next.focus();
  next.scrollIntoView({ block: 'nearest' });
  return true;
}
