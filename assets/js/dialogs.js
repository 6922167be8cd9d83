// dialogs.js: modal <dialog>s of the agent inbox — opened with the focus inside, closed by
// Esc (the browser's own), a close button or a click on the backdrop, and the focus given
// back to whatever had it before.

/** Opens `dialog` modally and focuses `first` (or the browser's pick); the focus returns on close. */
export function openDialog(dialog, first = null) {
  if (dialog.open) return;
  const opener = document.activeElement;
  dialog.showModal();
  first?.focus();
  dialog.addEventListener('close', () => {
    if (opener && opener !== document.body && opener.isConnected && !opener.closest('[hidden]')) opener.focus();
  }, { once: true });
}

/** `[data-close]` buttons close `dialog`, and so does a click on its backdrop. */
export function wireDialog(dialog) {
  for (const btn of dialog.querySelectorAll('[data-close]')) btn.addEventListener('click', () => dialog.close());
  // A click on the backdrop targets the <dialog> itself, outside its content box.
  dialog.addEventListener('click', (e) => {
    if (e.target !== dialog) return;
    const r = dialog.getBoundingClientRect();
    const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
    if (!inside) dialog.close();
  });
}

/** True while any modal dialog of the page is open. */
export function dialogOpen() {
  return !!document.querySelector('dialog[open]');
}
