// i18n.js: the words of the visitor page (and the widget's frame), one table per language.
// English is complete; another table may leave a key out and English stands in. To add a
// language, add its table here: nothing else changes. Dates and times are not here: they
// go through Intl in the browser's own conventions (format.js).

const en = {
  'rating.prompt': 'How was this conversation?',
  'rating.comment': 'Anything to add? (optional)',
  'rating.star': '1 star',
  'rating.stars': '{n} stars',
  'rating.thanks': 'Thank you for your feedback!',
  'rating.failed': 'Could not send your rating. Try again.',
  'team.online': "We're online",
  'team.away': "We're away right now. Leave a message and your email, and we'll get back to you.",
  'team.backAt': "We'll be back {when}.",
  'details.titleRequired': 'Tell us who you are before you write',
  'details.titleAway': 'Leave your email so we can get back to you',
  'details.needEmail': 'Please leave your email first, so we can answer you. Your message waits here.',
  'details.needName': 'Please tell us your name first. Your message waits here.',
  title: 'Chat with us',
  'conn.idle': 'We usually reply in minutes',
  'conn.connecting': 'Connecting…',
  'conn.connected': 'Connected',
  'conn.reconnecting': 'Reconnecting…',
  'conn.offline': 'Offline — we will retry',
  'details.toggle': 'Your details',
  'details.title': 'Tell us who you are',
  'details.optional': '(optional)',
  'details.name': 'Name',
  'details.namePlaceholder': 'Your name',
  'details.email': 'Email',
  'details.save': 'Save',
  'details.thanks': 'Thanks! We will see this with your first message.',
  'details.saving': 'Saving…',
  'details.saved': 'Saved',
  'details.invalid': 'Please check these details.',
  'details.failed': 'Could not save. Try again.',
  close: 'Close chat',
  closedBanner: 'This conversation was closed. Write a message to reopen it.',
  'welcome.hi': 'Hi there!',
  'welcome.text': 'Ask us anything — we\'ll get back to you right here.',
  loadEarlier: 'Show earlier messages',
  loadEarlierFailed: 'Could not load earlier messages.',
  messages: 'Messages',
  newMessages: 'New messages',
  drop: 'Drop files to send them',
  typing: 'Agent is typing…',
  message: 'Message',
  attach: 'Attach files',
  files: 'Files to attach',
  placeholder: 'Write a message…',
  send: 'Send message',
  support: 'Support',
  'status.sending': 'Sending…',
  'status.queued': 'Waiting for connection',
  'status.failed': 'Not sent',
  'status.sent': 'Sent',
  'status.read': 'Read',
  'event.closed': 'Chat closed',
  'event.reopened': 'Chat reopened',
  'event.assigned': 'Chat assigned',
  'event.other': 'Update',
  retry: 'Retry',
  discard: 'Delete',
  uploading: 'Uploading {name}',
  download: 'Download {name}',
  openInTab: 'Open {name} in a new tab',
  downloadFailed: 'Could not download the file.',
};

const de = {
  'rating.prompt': 'Wie war dieses Gespräch?',
  'rating.comment': 'Möchten Sie etwas ergänzen? (freiwillig)',
  'rating.star': '1 Stern',
  'rating.stars': '{n} Sterne',
  'rating.thanks': 'Vielen Dank für Ihr Feedback!',
  'rating.failed': 'Ihre Bewertung konnte nicht gesendet werden. Bitte erneut versuchen.',
  'team.online': 'Wir sind online',
  'team.away': 'Wir sind gerade nicht da. Hinterlassen Sie eine Nachricht und Ihre E-Mail, wir melden uns.',
  'team.backAt': 'Wir sind {when} wieder da.',
  'details.titleRequired': 'Sagen Sie uns vor dem Schreiben, wer Sie sind',
  'details.titleAway': 'Hinterlassen Sie Ihre E-Mail, damit wir antworten können',
  'details.needEmail': 'Bitte geben Sie zuerst Ihre E-Mail an, damit wir antworten können. Ihre Nachricht wartet hier.',
  'details.needName': 'Bitte nennen Sie uns zuerst Ihren Namen. Ihre Nachricht wartet hier.',
  title: 'Schreiben Sie uns',
  'conn.idle': 'Wir antworten meist innerhalb von Minuten',
  'conn.connecting': 'Verbinde…',
  'conn.connected': 'Verbunden',
  'conn.reconnecting': 'Verbinde erneut…',
  'conn.offline': 'Offline – wir versuchen es weiter',
  'details.toggle': 'Ihre Angaben',
  'details.title': 'Sagen Sie uns, wer Sie sind',
  'details.optional': '(freiwillig)',
  'details.name': 'Name',
  'details.namePlaceholder': 'Ihr Name',
  'details.email': 'E-Mail',
  'details.save': 'Speichern',
  'details.thanks': 'Danke! Wir sehen das mit Ihrer ersten Nachricht.',
  'details.saving': 'Speichere…',
  'details.saved': 'Gespeichert',
  'details.invalid': 'Bitte prüfen Sie diese Angaben.',
  'details.failed': 'Speichern fehlgeschlagen. Bitte erneut versuchen.',
  close: 'Chat schließen',
  closedBanner: 'Dieses Gespräch wurde beendet. Schreiben Sie eine Nachricht, um es wieder zu öffnen.',
  'welcome.hi': 'Hallo!',
  'welcome.text': 'Fragen Sie uns alles – wir antworten Ihnen gleich hier.',
  loadEarlier: 'Frühere Nachrichten anzeigen',
  loadEarlierFailed: 'Frühere Nachrichten konnten nicht geladen werden.',
  messages: 'Nachrichten',
  newMessages: 'Neue Nachrichten',
  drop: 'Dateien hier ablegen, um sie zu senden',
  typing: 'Ein Mitarbeiter schreibt…',
  message: 'Nachricht',
  attach: 'Dateien anhängen',
  files: 'Anzuhängende Dateien',
  placeholder: 'Nachricht schreiben…',
  send: 'Nachricht senden',
  support: 'Support',
  'status.sending': 'Wird gesendet…',
  'status.queued': 'Warte auf Verbindung',
  'status.failed': 'Nicht gesendet',
  'status.sent': 'Gesendet',
  'status.read': 'Gelesen',
  'event.closed': 'Chat beendet',
  'event.reopened': 'Chat wieder geöffnet',
  'event.assigned': 'Chat zugewiesen',
  'event.other': 'Änderung',
  retry: 'Erneut versuchen',
  discard: 'Löschen',
  uploading: '{name} wird hochgeladen',
  download: '{name} herunterladen',
  openInTab: '{name} in neuem Tab öffnen',
  downloadFailed: 'Die Datei konnte nicht geladen werden.',
};

const fr = {
  'rating.prompt': 'Comment s’est passée cette conversation ?',
  'rating.comment': 'Quelque chose à ajouter ? (facultatif)',
  'rating.star': '1 étoile',
  'rating.stars': '{n} étoiles',
  'rating.thanks': 'Merci pour votre avis !',
  'rating.failed': 'Impossible d’envoyer votre note. Réessayez.',
  'team.online': 'Nous sommes en ligne',
  'team.away': 'Nous sommes absents pour le moment. Laissez un message et votre e-mail, nous vous répondrons.',
  'team.backAt': 'De retour {when}.',
  'details.titleRequired': 'Dites-nous qui vous êtes avant d’écrire',
  'details.titleAway': 'Laissez votre e-mail pour que nous puissions vous répondre',
  'details.needEmail': 'Indiquez d’abord votre e-mail pour que nous puissions vous répondre. Votre message attend ici.',
  'details.needName': 'Indiquez d’abord votre nom. Votre message attend ici.',
  title: 'Discutons',
  'conn.idle': 'Nous répondons en général en quelques minutes',
  'conn.connecting': 'Connexion…',
  'conn.connected': 'Connecté',
  'conn.reconnecting': 'Reconnexion…',
  'conn.offline': 'Hors ligne — nous réessayons',
  'details.toggle': 'Vos coordonnées',
  'details.title': 'Dites-nous qui vous êtes',
  'details.optional': '(facultatif)',
  'details.name': 'Nom',
  'details.namePlaceholder': 'Votre nom',
  'details.email': 'E-mail',
  'details.save': 'Enregistrer',
  'details.thanks': 'Merci ! Nous le verrons avec votre premier message.',
  'details.saving': 'Enregistrement…',
  'details.saved': 'Enregistré',
  'details.invalid': 'Veuillez vérifier ces informations.',
  'details.failed': 'Échec de l’enregistrement. Réessayez.',
  close: 'Fermer la discussion',
  closedBanner: 'Cette conversation est terminée. Écrivez un message pour la rouvrir.',
  'welcome.hi': 'Bonjour !',
  'welcome.text': 'Posez-nous vos questions — nous vous répondons ici même.',
  loadEarlier: 'Afficher les messages précédents',
  loadEarlierFailed: 'Impossible de charger les messages précédents.',
  messages: 'Messages',
  newMessages: 'Nouveaux messages',
  drop: 'Déposez des fichiers pour les envoyer',
  typing: 'Un conseiller écrit…',
  message: 'Message',
  attach: 'Joindre des fichiers',
  files: 'Fichiers à joindre',
  placeholder: 'Écrivez un message…',
  send: 'Envoyer le message',
  support: 'Assistance',
  'status.sending': 'Envoi…',
  'status.queued': 'En attente de connexion',
  'status.failed': 'Non envoyé',
  'status.sent': 'Envoyé',
  'status.read': 'Lu',
  'event.closed': 'Discussion fermée',
  'event.reopened': 'Discussion rouverte',
  'event.assigned': 'Discussion attribuée',
  'event.other': 'Mise à jour',
  retry: 'Réessayer',
  discard: 'Supprimer',
  uploading: 'Envoi de {name}',
  download: 'Télécharger {name}',
  openInTab: 'Ouvrir {name} dans un nouvel onglet',
  downloadFailed: 'Impossible de télécharger le fichier.',
};

const es = {
  'rating.prompt': '¿Qué tal fue esta conversación?',
  'rating.comment': '¿Algo que añadir? (opcional)',
  'rating.star': '1 estrella',
  'rating.stars': '{n} estrellas',
  'rating.thanks': '¡Gracias por su opinión!',
  'rating.failed': 'No se pudo enviar su valoración. Inténtelo de nuevo.',
  'team.online': 'Estamos en línea',
  'team.away': 'Ahora no estamos. Deje un mensaje y su correo y le responderemos.',
  'team.backAt': 'Volvemos {when}.',
  'details.titleRequired': 'Díganos quién es antes de escribir',
  'details.titleAway': 'Deje su correo para que podamos responderle',
  'details.needEmail': 'Primero deje su correo para que podamos responderle. Su mensaje espera aquí.',
  'details.needName': 'Primero díganos su nombre. Su mensaje espera aquí.',
  title: 'Hable con nosotros',
  'conn.idle': 'Solemos responder en minutos',
  'conn.connecting': 'Conectando…',
  'conn.connected': 'Conectado',
  'conn.reconnecting': 'Reconectando…',
  'conn.offline': 'Sin conexión — lo seguiremos intentando',
  'details.toggle': 'Sus datos',
  'details.title': 'Díganos quién es',
  'details.optional': '(opcional)',
  'details.name': 'Nombre',
  'details.namePlaceholder': 'Su nombre',
  'details.email': 'Correo electrónico',
  'details.save': 'Guardar',
  'details.thanks': '¡Gracias! Lo veremos con su primer mensaje.',
  'details.saving': 'Guardando…',
  'details.saved': 'Guardado',
  'details.invalid': 'Revise estos datos, por favor.',
  'details.failed': 'No se pudo guardar. Inténtelo de nuevo.',
  close: 'Cerrar chat',
  closedBanner: 'Esta conversación se cerró. Escriba un mensaje para reabrirla.',
  'welcome.hi': '¡Hola!',
  'welcome.text': 'Pregúntenos lo que quiera: le responderemos aquí mismo.',
  loadEarlier: 'Mostrar mensajes anteriores',
  loadEarlierFailed: 'No se pudieron cargar los mensajes anteriores.',
  messages: 'Mensajes',
  newMessages: 'Mensajes nuevos',
  drop: 'Suelte archivos para enviarlos',
  typing: 'Un agente está escribiendo…',
  message: 'Mensaje',
  attach: 'Adjuntar archivos',
  files: 'Archivos para adjuntar',
  placeholder: 'Escriba un mensaje…',
  send: 'Enviar mensaje',
  support: 'Soporte',
  'status.sending': 'Enviando…',
  'status.queued': 'Esperando conexión',
  'status.failed': 'No enviado',
  'status.sent': 'Enviado',
  'status.read': 'Leído',
  'event.closed': 'Chat cerrado',
  'event.reopened': 'Chat reabierto',
  'event.assigned': 'Chat asignado',
  'event.other': 'Actualización',
  retry: 'Reintentar',
  discard: 'Eliminar',
  uploading: 'Subiendo {name}',
  download: 'Descargar {name}',
  openInTab: 'Abrir {name} en una pestaña nueva',
  downloadFailed: 'No se pudo descargar el archivo.',
};

const pt = {
  'rating.prompt': 'Como correu esta conversa?',
  'rating.comment': 'Algo a acrescentar? (opcional)',
  'rating.star': '1 estrela',
  'rating.stars': '{n} estrelas',
  'rating.thanks': 'Obrigado pela sua opinião!',
  'rating.failed': 'Não foi possível enviar a sua avaliação. Tente de novo.',
  'team.online': 'Estamos online',
  'team.away': 'Neste momento não estamos. Deixe uma mensagem e o seu e-mail e respondemos depois.',
  'team.backAt': 'Voltamos {when}.',
  'details.titleRequired': 'Diga-nos quem é antes de escrever',
  'details.titleAway': 'Deixe o seu e-mail para lhe podermos responder',
  'details.needEmail': 'Deixe primeiro o seu e-mail para lhe podermos responder. A sua mensagem espera aqui.',
  'details.needName': 'Diga-nos primeiro o seu nome. A sua mensagem espera aqui.',
  title: 'Fale connosco',
  'conn.idle': 'Costumamos responder em minutos',
  'conn.connecting': 'A ligar…',
  'conn.connected': 'Ligado',
  'conn.reconnecting': 'A religar…',
  'conn.offline': 'Sem ligação — vamos tentar de novo',
  'details.toggle': 'Os seus dados',
  'details.title': 'Diga-nos quem é',
  'details.optional': '(opcional)',
  'details.name': 'Nome',
  'details.namePlaceholder': 'O seu nome',
  'details.email': 'E-mail',
  'details.save': 'Guardar',
  'details.thanks': 'Obrigado! Vamos vê-lo com a sua primeira mensagem.',
  'details.saving': 'A guardar…',
  'details.saved': 'Guardado',
  'details.invalid': 'Verifique estes dados, por favor.',
  'details.failed': 'Não foi possível guardar. Tente de novo.',
  close: 'Fechar conversa',
  closedBanner: 'Esta conversa foi encerrada. Escreva uma mensagem para a reabrir.',
  'welcome.hi': 'Olá!',
  'welcome.text': 'Pergunte-nos o que quiser — respondemos aqui mesmo.',
  loadEarlier: 'Mostrar mensagens anteriores',
  loadEarlierFailed: 'Não foi possível carregar as mensagens anteriores.',
  messages: 'Mensagens',
  newMessages: 'Novas mensagens',
  drop: 'Largue ficheiros para os enviar',
  typing: 'Um agente está a escrever…',
  message: 'Mensagem',
  attach: 'Anexar ficheiros',
  files: 'Ficheiros a anexar',
  placeholder: 'Escreva uma mensagem…',
  send: 'Enviar mensagem',
  support: 'Suporte',
  'status.sending': 'A enviar…',
  'status.queued': 'À espera de ligação',
  'status.failed': 'Não enviada',
  'status.sent': 'Enviada',
  'status.read': 'Lida',
  'event.closed': 'Conversa encerrada',
  'event.reopened': 'Conversa reaberta',
  'event.assigned': 'Conversa atribuída',
  'event.other': 'Atualização',
  retry: 'Tentar de novo',
  discard: 'Eliminar',
  uploading: 'A enviar {name}',
  download: 'Transferir {name}',
  openInTab: 'Abrir {name} num novo separador',
  downloadFailed: 'Não foi possível transferir o ficheiro.',
};

export const TABLES = { en, de, fr, es, pt };

/** Languages written right to left: the page's direction follows the chosen table. */
const RTL = new Set(['ar', 'fa', 'he', 'ur']);

/** The first of the visitor's preferred languages that has a table (`de-AT` → `de`), else English. */
export function pickLanguage(preferred) {
  for (const tag of preferred) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (Object.hasOwn(TABLES, base)) return base;
  }
  return 'en';
}

/** The page's language. English until a page opts in with [`useVisitorLanguage`]: the
 *  inbox shares some modules with the visitor page and stays in one language. */
export let lang = 'en';

/** The languages to ask the admins' texts in (GET /config?lang=), best first: the visitor's
 *  preferences down to the one the page speaks, so that a visitor who reads Japanese best
 *  gets the admins' Japanese texts on an English page, but one who prefers English gets the
 *  default texts rather than the German ones of a language the browser lists after English. */
export let textLanguages = ['en'];

/** Speaks the visitor's language: `?lang=` (the widget's `data-lang`), else the browser's. */
export function useVisitorLanguage() {
  const override = new URLSearchParams(location.search).get('lang');
  const preferred = [override, ...(navigator.languages ?? []), navigator.language];
  lang = pickLanguage(preferred);
  const tags = [];
  for (const tag of preferred) {
    const clean = String(tag || '').trim();
    if (!/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(clean) || tags.includes(clean)) continue;
    tags.push(clean);
    if (clean.toLowerCase().split('-')[0] === lang) break;
  }
  if (!tags.some((tag) => tag.toLowerCase().split('-')[0] === lang)) tags.push(lang);
  textLanguages = tags.slice(0, 8);
}

/** The text for `key` in the page's language, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = TABLES[lang][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/**
 * Translates the static page: `data-i18n="key"` sets an element's text,
 * `data-i18n-attr="aria-label:key;placeholder:key"` its attributes.
 */
export function localize(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  document.documentElement.lang = lang;
  document.documentElement.dir = RTL.has(lang) ? 'rtl' : 'ltr';
}
