// composer.js: the message box shared by both pages — Enter sends, Shift+Enter adds a
// line, it grows with its text, and it reports typing (at most once a second, and
// "stopped" after 3 s idle or on send).

const TYPING_EVERY_MS = 1000;
const TYPING_IDLE_MS = 3000;
const MAX_HEIGHT_PX = 160;

/**
 * @param {object} o
 * @param {HTMLFormElement} o.form
 * @param {HTMLTextAreaElement} o.textarea
 * @param {(body: string) => void} o.onSend
 * @param {(typing: boolean) => void} [o.onTyping]
 * @param {(body: string) => boolean} [o.canSend] false keeps the text in the box, unsent
 */
export function setupComposer({ form, textarea, onSend, onTyping, canSend }) {
  let lastTyping = 0;
  let typing = false;
  let idle = 0;

  const grow = () => {
    textarea.style.height = 'auto';
    const wanted = textarea.scrollHeight + 2;
    textarea.style.height = Math.min(wanted, MAX_HEIGHT_PX) + 'px';
    textarea.style.overflowY = wanted > MAX_HEIGHT_PX ? 'auto' : 'hidden';
  };

  const stopTyping = () => {
    clearTimeout(idle);
    if (!typing) return;
    typing = false;
    lastTyping = 0;
    onTyping?.(false);
  };

  const submit = () => {
    const body = textarea.value;
    if (!body.trim()) return;
    if (canSend && !canSend(body)) return;
    stopTyping();
    textarea.value = '';
    grow();
    onSend(body);
  };

  textarea.addEventListener('keydown', (e) => {
    // defaultPrevented: a popup on the composer (the agent's canned responses) took the key.
    // isComposing / 229: Enter that confirms an IME composition is not a send.
    if (e.defaultPrevented || e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    submit();
  });

  textarea.addEventListener('input', () => {
    grow();
    if (!onTyping) return;
    if (!textarea.value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - lastTyping >= TYPING_EVERY_MS) {
      lastTyping = now;
      typing = true;
      onTyping(true);
    }
    clearTimeout(idle);
    idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const before = textarea.value;
    submit();
    // Kept back (canSend): the page has moved the focus to what it asks for.
    if (textarea.value !== before || !before.trim()) textarea.focus();
  });

  grow();
  return { grow, stopTyping };
}

/** Shows a "… is typing" row from poll answers, hiding it by itself should the poll go quiet. */
export function typingIndicator(el) {
  let timer = 0;
  return (on) => {
    clearTimeout(timer);
    el.hidden = !on;
    // The server expires typing 5 s after the last ping; do not trust a stale "true" longer.
    if (on) timer = setTimeout(() => { el.hidden = true; }, 6000);
  };
}
