// availability.js: the agent's online/away switch in the inbox header. The inbox sets
// "away" by itself after IDLE_MS without any input and back to "online" on the next input
// (only when it was the inbox, not the agent, that chose away).

/** No input for this long sets the agent away. */
const IDLE_MS = 15 * 60 * 1000;
/** Input events reset the idle timer at most this often (mousemove fires a lot). */
const RESET_EVERY_MS = 5000;

/**
 * @param {object} o
 * @param {{request: Function}} o.api
 * @param {HTMLInputElement} o.input the `input[name=availability]` checkbox (checked = online)
 * @param {HTMLElement} o.text its label text
 * @param {(text: string) => void} o.toast
 */
export function setupAvailability({ api, input, text, toast }) {
  let current = null;
  let auto = false;
  let idleTimer = 0;
  let lastReset = 0;
  let active = false;

  function render() {
    input.checked = current === 'online';
    text.textContent = current === 'away' ? 'Away' : 'Online';
    input.closest('label')?.setAttribute('data-availability', current ?? 'online');
  }

  async function set(next, { automatic = false } = {}) {
    if (next === current) return;
    const before = current;
    current = next;
    auto = automatic && next === 'away';
    render();
    try {
      const res = await api.request('PATCH', '/agents/me', { body: { availability: next } });
      if (current === next) {
        current = res.agent.availability;
        render();
      }
    } catch (err) {
      if (err.status === 401) return;
      current = before;
      auto = false;
      render();
      toast('Could not change your availability. Try again.');
    }
  }

  function resetIdle() {
    clearTimeout(idleTimer);
    lastReset = Date.now();
    idleTimer = setTimeout(() => {
      if (active && current === 'online') set('away', { automatic: true });
    }, IDLE_MS);
  }

  function onInput() {
    if (!active) return;
    if (auto && current === 'away') set('online');
    if (Date.now() - lastReset >= RESET_EVERY_MS) resetIdle();
  }

  input.addEventListener('change', () => set(input.checked ? 'online' : 'away'));
  for (const type of ['pointerdown', 'keydown', 'mousemove', 'wheel', 'touchstart']) {
    addEventListener(type, onInput, { passive: true, capture: true });
  }

  return {
    /** Shows the signed-in agent's availability and starts the idle timer. */
    show(agent) {
      active = true;
      if (!auto) current = agent.availability ?? 'online';
      render();
      resetIdle();
    },
    stop() {
      active = false;
      auto = false;
      current = null;
      clearTimeout(idleTimer);
    },
  };
}
