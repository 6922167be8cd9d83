// settings.js: the admins' team settings dialog — business hours per weekday in a time
// zone, the away message visitors see while nobody is online, the greeting instead of the
// page's welcome text, both again per language, and the pre-chat form.

const DAYS = [['mon', 'Monday'], ['tue', 'Tuesday'], ['wed', 'Wednesday'], ['thu', 'Thursday'],
  ['fri', 'Friday'], ['sat', 'Saturday'], ['sun', 'Sunday']];
const INTERVAL = /^(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})$/;

const pad = (n) => String(n).padStart(2, '0');

/** The languages the visitor page ships; an admin may add any other primary tag. */
const LANGUAGES = { de: 'Deutsch', en: 'English', es: 'Español', fr: 'Français', pt: 'Português' };
const LANGUAGE_KEY = /^[a-z]{2,3}$/;
/** As the server's limit. */
const MAX_LANGUAGES = 20;
const TEXTS = [['away_message', 'Away message', 3], ['greeting', 'Greeting', 2]];

/** "09:00-12:00, 13:00-17:00" → [{open, close}], or null when it does not read. */
function parseDay(raw) {
  const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
  const out = [];
  for (const part of parts) {
    const m = INTERVAL.exec(part);
    if (!m) return null;
    out.push({ open: `${pad(m[1])}:${m[2]}`, close: `${pad(m[3])}:${m[4]}` });
  }
  return out;
}

/**
 * @param {object} o
 * @param {HTMLDialogElement} o.dialog
 * @param {{request: Function}} o.api
 * @param {(text: string) => void} o.toast
 * @param {(dialog: HTMLDialogElement, first?: HTMLElement) => void} o.openDialog
 */
export function setupSettings({ dialog, api, toast, openDialog }) {
  const form = dialog.querySelector('form');
  const f = form.elements;
  const error = form.querySelector('.form-error');
  const days = dialog.querySelector('[data-days]');
  const zones = dialog.querySelector('#timezones');
  const langs = dialog.querySelector('[data-langs]');

  /** One language's two texts, with a button that removes them. */
  function addLanguage(lang, texts = {}) {
    const box = document.createElement('div');
    box.className = 'settings__lang';
    box.dataset.lang = lang;
    const head = document.createElement('div');
    head.className = 'settings__lang-head';
    const name = document.createElement('span');
    name.textContent = LANGUAGES[lang] ? `${LANGUAGES[lang]} (${lang})` : lang;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'btn';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove the texts in ${name.textContent}`);
    remove.addEventListener('click', () => { box.remove(); f['new-lang-pick'].focus(); });
    head.append(name, remove);
    box.append(head);
    for (const [field, label, rows] of TEXTS) {
      const wrap = document.createElement('label');
      wrap.className = 'field';
      const span = document.createElement('span');
      span.className = 'field__label';
      span.textContent = `${label} (${lang})`;
      const area = document.createElement('textarea');
      area.dataset.field = field;
      area.rows = rows;
      area.maxLength = 500;
      area.value = texts[field] ?? '';
      wrap.append(span, area);
      box.append(wrap);
    }
    langs.append(box);
    return box;
  }

  function onAddLanguage() {
    error.hidden = true;
    const lang = (f['new-lang-tag'].value.trim() || f['new-lang-pick'].value).toLowerCase();
    const problem = !LANGUAGE_KEY.test(lang) ? 'Write a language as 2 or 3 letters, like "it".'
      : langs.querySelector(`[data-lang="${lang}"]`) ? `There are texts in "${lang}" already.`
      : langs.children.length >= MAX_LANGUAGES ? `At most ${MAX_LANGUAGES} languages.` : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    f['new-lang-tag'].value = '';
    addLanguage(lang).querySelector('textarea').focus();
  }
  dialog.querySelector('[data-add-lang]').addEventListener('click', onAddLanguage);
  f['new-lang-tag'].addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); onAddLanguage(); }
  });

  for (const [day, name] of DAYS) {
    const label = document.createElement('label');
    label.className = 'field settings__day';
    const span = document.createElement('span');
    span.className = 'field__label';
    span.textContent = name;
    const input = document.createElement('input');
    input.type = 'text';
    input.name = `hours-${day}`;
    input.placeholder = 'closed';
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.maxLength = 60;
    label.append(span, input);
    days.append(label);
  }
  try {
    for (const zone of Intl.supportedValuesOf('timeZone')) {
      const option = document.createElement('option');
      option.value = zone;
      zones.append(option);
    }
  } catch { /* an older browser: the zone is typed */ }

  const renderEnabled = () => {
    for (const el of dialog.querySelectorAll('[data-hours] input')) el.disabled = !f['hours-enabled'].checked;
  };
  f['hours-enabled'].addEventListener('change', renderEnabled);

  function fill(settings) {
    const hours = settings.business_hours;
    f['hours-enabled'].checked = !!hours;
    f.timezone.value = hours?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
    for (const [day] of DAYS) {
      const intervals = (hours?.weekly ?? []).filter((i) => i.day === day);
      f[`hours-${day}`].value = intervals.map((i) => `${i.open}-${i.close}`).join(', ');
    }
    f['away-message'].value = settings.away_message ?? '';
    f.greeting.value = settings.greeting ?? '';
    langs.replaceChildren();
    for (const [lang, texts] of Object.entries(settings.translations ?? {})) addLanguage(lang, texts);
    f['ask-name'].value = settings.prechat?.ask_name ?? 'optional';
    f['ask-email'].value = settings.prechat?.ask_email ?? 'optional';
    renderEnabled();
  }

  function read() {
    let business_hours = null;
    if (f['hours-enabled'].checked) {
      const weekly = [];
      for (const [day, name] of DAYS) {
        const intervals = parseDay(f[`hours-${day}`].value);
        if (!intervals) throw new Error(`${name}: write times like 09:00-17:00 (several with commas).`);
        for (const i of intervals) weekly.push({ day, ...i });
      }
      business_hours = { timezone: f.timezone.value.trim(), weekly };
    }
    const translations = {};
    for (const box of langs.children) {
      const texts = {};
      for (const area of box.querySelectorAll('textarea')) texts[area.dataset.field] = area.value.trim() || null;
      translations[box.dataset.lang] = texts;
    }
    return {
      business_hours,
      away_message: f['away-message'].value.trim() || null,
      greeting: f.greeting.value.trim() || null,
      translations,
      prechat: { ask_name: f['ask-name'].value, ask_email: f['ask-email'].value },
    };
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    let body;
    try {
      body = read();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    const submit = form.querySelector('[type=submit]');
    submit.disabled = true;
    try {
      const res = await api.request('PUT', '/settings', { body });
      fill(res.settings);
      dialog.close();
      toast('Settings saved');
    } catch (err) {
      error.textContent = err.message || 'Could not save the settings.';
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  return {
    async open() {
      error.hidden = true;
      try {
        fill((await api.request('GET', '/settings')).settings);
      } catch (err) {
        toast(err.message || 'Could not load the settings.');
        return;
      }
      openDialog(dialog, f['hours-enabled']);
    },
  };
}
