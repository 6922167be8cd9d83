// uploads.js: files on their way into a chat, shared by both pages. Every way in (the
// attach button, drag and drop, paste) ends in one Uploader, which checks each file
// against the server's limit, then sends them one at a time with progress, each with
// its own client_id so a retry never duplicates.

import { sleep, timeOrderedId } from './api.js';
import { formatSize } from './format.js';

/** The server's default limit, for when GET /api/v1/config cannot be read. */
export const DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024;
/** A rate-limited upload waits and tries again this many times before it counts as failed. */
const RATE_LIMIT_RETRIES = 3;

/** The server's upload limit in bytes (from GET /api/v1/config), read once per page. */
export function loadMaxUpload(api) {
  return api.request('GET', '/config').then(
    (res) => (Number.isFinite(res?.max_upload) && res.max_upload > 0 ? res.max_upload : DEFAULT_MAX_UPLOAD),
    () => DEFAULT_MAX_UPLOAD,
  );
}

export class Uploader {
  /**
   * @param {object} o
   * @param {(item, onProgress: (loaded, total) => void) => Promise<object>} o.send
   *        uploads one item (`item.file`, `item.client_id`), resolves with the server message
   * @param {() => Promise<number>} o.maxUpload  the size limit in bytes
   * @param {() => void} o.onChange              items were added, removed or changed state
   * @param {(item) => void} [o.onProgress]      `item.progress` (0…1) moved
   * @param {(message, item) => void} [o.onSent]
   * @param {(text: string) => void} [o.onError] a file was refused, in words for the user
   */
  constructor(o) {
    Object.assign(this, { onProgress: null, onSent: null, onError: null }, o);
    /** [{client_id, body, created_at, state, file, upload: {name, size}, progress, error, retryable}] */
    this.items = [];
    this.running = false;
    this.limit = DEFAULT_MAX_UPLOAD;
  }

  /** Queues files; each shows at once, a file that cannot be sent as failed with the reason. */
  async add(files) {
    files = [...files];
    if (!files.length) return;
    this.limit = await this.maxUpload();
    const refused = [];
    for (const file of files) {
      const item = {
        client_id: timeOrderedId('u'),
        body: '',
        created_at: new Date().toISOString(),
        state: 'sending',
        file,
        upload: { name: file.name || 'file', size: file.size },
        progress: 0,
      };
      const problem = this.check(file);
      if (problem) {
        Object.assign(item, { state: 'failed', error: problem, retryable: false });
        refused.push(problem);
      }
      this.items.push(item);
    }
    this.onChange();
    for (const text of refused) this.onError?.(text);
    this.run();
  }

  /** Why `file` cannot be sent, or null. */
  check(file) {
    const name = file.name || 'file';
    if (file.isDirectory) return `“${name}” is a folder. Only files can be sent.`;
    if (file.size === 0) return `“${name}” is empty.`;
    if (file.size > this.limit) return this.tooLarge(name, file.size);
    return null;
  }

  tooLarge(name, size) {
    return `“${name}” is too large (${formatSize(size)}). Files can be at most ${formatSize(this.limit)}.`;
  }

  /** Sends a failed item again, with the same client_id. */
  retry(clientId) {
    const item = this.find(clientId);
    if (!item || item.state !== 'failed' || item.retryable === false) return;
    Object.assign(item, { state: 'sending', error: undefined, progress: 0 });
    this.onChange();
    this.run();
  }

  discard(clientId) {
    const before = this.items.length;
    this.items = this.items.filter((it) => it.client_id !== clientId || it.state !== 'failed');
    if (this.items.length !== before) this.onChange();
  }

  find(clientId) {
    return this.items.find((it) => it.client_id === clientId);
  }

  has(clientId) {
    return !!this.find(clientId);
  }

  /** Uploads the waiting items one after another. Safe to call any time. */
  async run() {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const item = this.items.find((it) => it.state === 'sending');
        if (!item) return;
        await this.sendOne(item);
      }
    } finally {
      this.running = false;
    }
  }

  async sendOne(item) {
    for (let attempt = 0; ; attempt += 1) {
      item.progress = 0;
      this.onProgress?.(item);
      try {
        const message = await this.send(item, (loaded, total) => {
          item.progress = total ? Math.min(1, loaded / total) : 0;
          this.onProgress?.(item);
        });
        // Show the confirmed message before its pending copy goes, so nothing flickers.
        this.onSent?.(message, item);
        this.items = this.items.filter((it) => it !== item);
        this.onChange();
        return;
      } catch (err) {
        if (err?.status === 429 && attempt < RATE_LIMIT_RETRIES) {
          await sleep((err.retryAfter || 2) * 1000);
          if (this.items.includes(item)) continue;
          return;
        }
        const error = this.describe(err, item);
        Object.assign(item, { state: 'failed', error, retryable: err?.status !== 413 && !isRefusal(err) });
        this.onChange();
        this.onError?.(error);
        return;
      }
    }
  }

  /** The reason a send failed, in words for the user; the server's own message when it refused. */
  describe(err, item) {
    const { name, size } = item.upload;
    // A server may answer a too-large body by closing the connection mid-upload.
    if (err?.status === 413 || (err?.status === 0 && size > this.limit)) return this.tooLarge(name, size);
    if (!err?.status) return `“${name}” was not sent: cannot reach the server.`;
    if (err.status >= 500) return `“${name}” was not sent: the server had a problem.`;
    if (err.status === 429) return `“${name}” was not sent: too many messages at once. Try again in a moment.`;
    const reason = String(err.message || 'refused').replace(/\.$/, '');
    return `“${name}” was not sent: ${reason}.`;
  }
}

/** A 4xx other than a rate limit: sending the same file again will not help. */
function isRefusal(err) {
  return err?.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
}

/**
 * Wires every way a file comes in to `onFiles(files)`: the attach button with its file
 * input, files dragged onto `dropTarget` (showing `dropzone` meanwhile), and files pasted
 * into `textarea`. `enabled()` says whether files are welcome right now.
 */
export function setupFileSources({ button, input, dropTarget, dropzone, textarea, onFiles, enabled = () => true }) {
  button.addEventListener('click', () => {
    if (enabled()) input.click();
  });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length && enabled()) onFiles(files);
  });

  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  let depth = 0;
  const show = (on) => {
    dropzone.hidden = !on;
    dropTarget.classList.toggle('is-dropping', on);
  };
  dropTarget.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || !enabled()) return;
    e.preventDefault();
    depth += 1;
    show(true);
  });
  dropTarget.addEventListener('dragover', (e) => {
    if (!hasFiles(e) || !enabled()) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  dropTarget.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) show(false);
  });
  dropTarget.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    show(false);
    if (enabled()) onFiles(droppedFiles(e.dataTransfer));
  });
  // A file dropped beside the target must not make the browser leave the page to show it.
  for (const type of ['dragover', 'drop']) {
    addEventListener(type, (e) => {
      if (hasFiles(e) && !dropTarget.contains(e.target)) e.preventDefault();
    });
  }
  addEventListener('dragend', () => { depth = 0; show(false); });

  textarea.addEventListener('paste', (e) => {
    const data = e.clipboardData;
    const files = [...(data?.files ?? [])];
    // Office apps put a picture of the copied text beside it: with HTML there, paste the text.
    if (!files.length || data.types.includes('text/html') || !enabled()) return;
    e.preventDefault();
    onFiles(files);
  });
}

/** The files of a drop; a dropped folder becomes a marker the Uploader refuses with a clear reason. */
function droppedFiles(dt) {
  const items = [...(dt.items ?? [])].filter((it) => it.kind === 'file');
  if (!items.length) return [...dt.files];
  return items.flatMap((it) => {
    const entry = it.webkitGetAsEntry?.();
    const file = it.getAsFile();
    if (entry?.isDirectory) return [{ name: entry.name, size: 0, isDirectory: true }];
    return file ? [file] : [];
  });
}
