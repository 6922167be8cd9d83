// team.js: is the team there? The visitor page reads GET /api/v1/config (public) now and
// then, so an agent's online/away switch or the end of business hours shows within a
// minute; and the visitor's context (page, referrer, language, time zone) as the API takes it.

const MIN_EVERY_S = 1;
const MAX_EVERY_S = 60;
export const DEFAULT_EVERY_S = 30;

/**
 * Calls `onChange(config)` with the server's config now, then every `everyS` seconds and
 * whenever the page becomes visible again. A failed read keeps the last answer. `lang`
 * (comma-separated tags, best first) asks for the admins' texts in those languages.
 * @returns {() => void} stops watching
 */
export function watchTeam({ api, everyS = DEFAULT_EVERY_S, lang, onChange }) {
  const every = Math.min(MAX_EVERY_S, Math.max(MIN_EVERY_S, Number(everyS) || DEFAULT_EVERY_S)) * 1000;
  let timer = 0;
  let stopped = false;
  const read = async () => {
    clearTimeout(timer);
    try {
      const query = lang ? `?lang=${encodeURIComponent(lang)}` : '';
      const config = await api.request('GET', `/config${query}`, { timeout: 10000 });
      if (!stopped) onChange(config);
    } catch { /* offline or restarting: keep what the page shows */ }
    if (!stopped) timer = setTimeout(read, every);
  };
  const onVisible = () => { if (document.visibilityState === 'visible') read(); };
  document.addEventListener('visibilitychange', onVisible);
  read();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}

/**
 * "Monday 09:00" in the visitor's own language and time zone; with the date when it is a
 * week or more away. Null for a missing or unreadable time.
 */
export function formatBackAt(iso, now = new Date()) {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return null;
  const soon = at - now < 6 * 24 * 3600 * 1000;
  const options = soon
    ? { weekday: 'long', hour: '2-digit', minute: '2-digit' }
    : { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(undefined, options).format(at);
}

/** An http(s) URL the server accepts (≤ 2048 bytes), or undefined. */
export function webUrl(raw) {
  if (!raw || raw.length > 2048) return undefined;
  try {
    const u = new URL(raw);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.href.length <= 2048 ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** The visitor's context for POST /chats and PATCH /visitors/me; fields the server would refuse are left out. */
export function visitorContext({ pageUrl, referrer }) {
  const context = {};
  const page = webUrl(pageUrl);
  if (page) context.page_url = page;
  const ref = webUrl(referrer);
  if (ref) context.referrer = ref;
  const locale = navigator.language;
  if (locale && locale.length <= 35 && /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(locale)) context.locale = locale;
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && zone.length <= 64 && /^[A-Za-z][A-Za-z0-9/_+-]*$/.test(zone)) context.timezone = zone;
  } catch { /* no Intl time zones */ }
  return context;
}
