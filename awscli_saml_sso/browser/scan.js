// Read the page as a person does: which visible fields ask for a username, a password or a
// one-time code, which control sends them, what the IdP says. Runs in the page (Chromium and
// Firefox); returns plain values and element references. Fields in open shadow roots count
// too; frames are listed (``frames``) for the caller to scan inside when this document has
// no field (an element reference works only in its own frame).
const doc = document;
if (!window.__assDoc) { window.__assDoc = Math.random().toString(36).slice(2); }
const squash = (t) => (t || '').replace(/\s+/g, ' ').trim();

// The document and every open shadow root in it, the document first.
function roots() {
  const found = [];
  const visit = (root) => {
    found.push(root);
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) visit(el.shadowRoot);
  };
  visit(doc);
  return found;
}
const ROOTS = roots();
const all = (selector) => ROOTS.flatMap((r) => [...r.querySelectorAll(selector)]);

// Visible to a person: rendered, not transparent, not hidden for assistive technology
// either, of some size, and not pushed off the page.
function shown(el) {
  if (!el || !el.isConnected) return false;
  if (el.closest('[hidden], [aria-hidden=true]')) return false;
  if (el.checkVisibility && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) {
    return false;
  }
  const st = el.ownerDocument.defaultView.getComputedStyle(el);
  if (st.visibility === 'hidden' || st.display === 'none' || st.opacity === '0') return false;
  const r = el.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1) return false;
  return r.right > 0 && r.bottom > 0;
}
function textOf(el) { return el ? squash(el.innerText || el.textContent) : ''; }
function byId(el, id) {
  const root = el.getRootNode();
  return (root.getElementById && root.getElementById(id)) || el.ownerDocument.getElementById(id);
}

// What a person reads next to a field, nearest first: its own label, its accessible name,
// its placeholder; then the closest text before it that belongs to no other field.
function ownLabel(el) {
  const parts = [];
  if (el.labels) for (const l of el.labels) if (shown(l)) parts.push(textOf(l));
  for (const id of (el.getAttribute('aria-labelledby') || '').split(/\s+/)) {
    const x = id && byId(el, id);
    if (x) parts.push(textOf(x));
  }
  for (const a of ['aria-label', 'placeholder', 'title']) {
    if (el.getAttribute(a)) parts.push(el.getAttribute(a));
  }
  return squash(parts.join(' '));
}
const FIELDS = 'input:not([type=hidden]), textarea, select';
function nearbyText(el) {
  let node = el;
  for (let depth = 0; depth < 4 && node && node.parentElement; depth++) {
    for (let sib = node.previousElementSibling; sib; sib = sib.previousElementSibling) {
      if (sib.matches(FIELDS) || sib.querySelector(FIELDS)) return '';  // another field's
      const t = shown(sib) ? textOf(sib) : '';
      if (t) return t.length <= 80 ? t : '';
    }
    node = node.parentElement;
  }
  return '';
}
const HEADING = 'h1, h2, h3, legend, [role=heading]';
function headingText() {
  for (const h of all(HEADING)) if (shown(h) && textOf(h)) return textOf(h);
  return '';
}
const PAGE_HEADING = headingText();

// Words people read. A one-time code is named as such; a password field labelled as a code
// is a code field; "password" beats "username"/"email" ("your email password").
const OTP_WORDS = new RegExp('(one.?time|\\botp\\b|\\btotp\\b|passcode|\\bcode\\b|token|' +
  'verification|authenticator|two.?factor|\\b2fa\\b|\\bmfa\\b)', 'i');
const PASS_WORDS = /(password|passwort|mot de passe|contraseña|passphrase)/i;
const USER_WORDS = /(user|login|log in|e.?mail|account|identifier|\bid\b|upn|principal|phone|name)/i;
function kindFromWords(text) {
  if (!text) return null;
  if (/one.?time.?pass/i.test(text) || (OTP_WORDS.test(text) && !PASS_WORDS.test(text))) {
    return 'otp';
  }
  if (PASS_WORDS.test(text)) return 'password';
  if (USER_WORDS.test(text)) return 'user';
  return null;
}
// Weaker evidence, from the markup a person does not see. Ids are split into words, so a
// fragment like the "Token" of "idToken1" is only a word among others, and only consulted
// when nothing visible names the field.
const splitWords = (s) => (s || '').replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_\-.\d]+/g, ' ');
function kindFromMarkup(el, type) {
  const ac = (el.getAttribute('autocomplete') || '').toLowerCase();
  if (ac.includes('one-time-code')) return 'otp';
  if (ac.includes('password')) return 'password';
  if (ac.includes('username') || ac.includes('email')) return 'user';
  if (type === 'password') return 'password';
  if (type === 'email') return 'user';
  const names = splitWords((el.name || '') + ' ' + (el.id || ''));
  if (/(otp|totp|one time|passcode|mfa|2fa|verification code|token)/i.test(names)) return 'otp?';
  if (/(user|login|e ?mail|account|identifier|upn|principal)/i.test(names)) return 'user';
  const maxlen = el.maxLength;
  const numeric = (el.getAttribute('inputmode') || '').toLowerCase() === 'numeric';
  if (numeric && (maxlen < 0 || (maxlen >= 4 && maxlen <= 8))) return 'otp?';
  if (maxlen >= 6 && maxlen <= 8) return 'otp?';
  return null;
}
function classify(el) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  const own = ownLabel(el);
  const near = own ? '' : nearbyText(el);
  const seen = kindFromWords(own) || kindFromWords(near);
  if (seen) return {kind: seen, label: own || near};
  const markup = kindFromMarkup(el, type);
  // Only the page's heading names the field: it may say what a lone unlabeled field is for.
  const headed = kindFromWords(PAGE_HEADING);
  if (markup === 'otp?' && headed && headed !== 'otp') return {kind: headed, label: PAGE_HEADING};
  if (markup) return {kind: markup, label: own || near || PAGE_HEADING};
  if (type === 'password') return {kind: 'password', label: PAGE_HEADING};
  return {kind: headed === 'otp' ? 'otp?' : null, label: PAGE_HEADING};
}

const TEXTLIKE = ['', 'text', 'email', 'tel', 'number', 'password'];
const inputs = all('input, textarea').filter(
  (el) => TEXTLIKE.includes((el.getAttribute('type') || '').toLowerCase()) &&
          shown(el) && !el.disabled);
let user = null, pass = [], otp = null, prefilledUser = null, otpLabel = '', guessedOtp = false;
const texts = [];
for (const el of inputs) {
  const {kind, label} = classify(el);
  if (kind === 'otp' || kind === 'otp?') {
    if (!otp && !el.readOnly) { otp = el; otpLabel = label; guessedOtp = kind === 'otp?'; }
    continue;
  }
  if (kind === 'password') { if (!el.readOnly) pass.push(el); continue; }
  if (kind === 'user' && !user && !prefilledUser) {
    if (el.readOnly) prefilledUser = el; else user = el;
    continue;
  }
  texts.push(el);
}
// A code guessed from markup alone, before a password and with no username field, is the
// username: people are asked for who they are before a second factor.
if (otp && guessedOtp && !user && pass.length &&
    (otp.compareDocumentPosition(pass[0]) & Node.DOCUMENT_POSITION_FOLLOWING)) {
  user = otp; otp = null;
}
if (!user && pass.length && texts.length === 1 && !texts[0].readOnly) user = texts[0];

// The IdP's error text: innermost visible alert-like elements, not info or success banners.
const ERR = /(error|alert|danger|invalid|feedback)/i;
const NOT_ERR = /(^|[-_\s])(info|success|warning|valid-feedback)([-_\s]|$)/i;
const candidates = all('[role=alert], [aria-live], [id], [class]').filter((el) => {
  if (['INPUT', 'TEXTAREA', 'SELECT', 'BUTTON', 'FORM', 'BODY', 'HTML'].includes(el.tagName)) {
    return false;
  }
  const cls = (typeof el.className === 'string' ? el.className : '') + ' ' + (el.id || '');
  const role = (el.getAttribute('role') || '').toLowerCase();
  const live = (el.getAttribute('aria-live') || '').toLowerCase();
  const errorish = role === 'alert' || live === 'assertive' || ERR.test(cls);
  if (!errorish || NOT_ERR.test(cls)) return false;
  if (el.querySelector('input, textarea, select, form')) return false;
  const t = textOf(el);
  return t.length > 0 && t.length < 500 && shown(el);
});
const errors = [];
for (const el of candidates) {
  if (candidates.some((o) => o !== el && el.contains(o))) continue;
  const t = textOf(el);
  if (el.__assSeen === t) continue;
  if (!errors.includes(t)) errors.push(t);
}

// Controls: real buttons, and what a page makes look like one (a span or div with a
// pointer cursor or a click handler).
const CONTROLS = 'button, input[type=submit], input[type=image], input[type=button], ' +
  '[role=button], a[href], [onclick], [tabindex], span, div';
const controlText = (b) => squash(b.innerText || b.value || b.getAttribute('aria-label') || '');
function controls(scope) {
  const found = [...scope.querySelectorAll(CONTROLS)].filter((b) => {
    if (b.disabled || !shown(b)) return false;
    const outer = b.parentElement && b.parentElement.closest('button, a[href], [role=button]');
    if (outer) return false;  // a part of a real control: the control itself counts
    if (b.matches('span, div') && !b.matches('[role=button], [onclick], [tabindex]')) {
      if (getComputedStyle(b).cursor !== 'pointer') return false;
    }
    if (b.matches('a[href], span, div') && b.querySelector('button, input, a[href]')) return false;
    const t = controlText(b);
    return t.length > 0 && t.length <= 80;
  });
  return found.filter((b) => !found.some((o) => o !== b && o.contains(b)));  // the outermost
}
const NO = /(cancel|back|forgot|reset|another|sign ?up|register|create|help|show|resend|no\b|not now|don.?t|privacy|terms|learn more|use a different|switch)/i;
const YES = /(sign ?in|log ?in|next|continue|verify|submit|confirm|ok\b|yes\b|anmelden|weiter|proceed)/i;
const isSubmit = (b) => b.type === 'submit' || b.type === 'image' ||
  (b.tagName === 'BUTTON' && !b.getAttribute('type') && b.form);
function submitFor(el) {
  const scopes = [el.form, el.getRootNode(), doc].filter((s) => s && s.querySelectorAll);
  for (const scope of scopes) {
    const buttons = controls(scope);
    const found = buttons.find((b) => isSubmit(b) && YES.test(controlText(b))) ||
      buttons.find((b) => isSubmit(b) && !NO.test(controlText(b))) ||
      buttons.find((b) => YES.test(controlText(b)) && !NO.test(controlText(b)));
    if (found) return found;
  }
  return null;
}

// Pages without fields: a choice of second-factor methods, or one affirmative action.
const METHOD_CODE = /(code|authenticator app|one.?time|passcode|verification)/i;
const METHOD_PUSH = /(push|approve|notification|sign.?in request|send.*(request|prompt))/i;
const METHOD_OTHER = /(text me|sms|call me|phone call|voice|security key|passkey|face|fingerprint|windows hello)/i;
let methodCode = null, methodPush = null, lone = null, actions = [];
if (!user && !otp && !pass.length && !prefilledUser) {
  actions = controls(doc).filter((b) => !/(privacy|terms|help|learn more|cookie)/i.test(controlText(b)));
  const methods = actions.filter((b) => METHOD_CODE.test(controlText(b)) ||
    METHOD_PUSH.test(controlText(b)) || METHOD_OTHER.test(controlText(b)));
  if (methods.length >= 2) {
    methodCode = methods.find((b) => METHOD_CODE.test(controlText(b)) &&
      !/(text|sms|call|email)/i.test(controlText(b))) || null;
    methodPush = methods.find((b) => METHOD_PUSH.test(controlText(b))) || null;
  } else if (actions.length === 1 && YES.test(controlText(actions[0]))) {
    lone = actions[0];
  }
}

// A number to match on a push page: a short number shown larger than the text around it.
let matchNumber = '';
for (const el of (user || otp || pass.length) ? [] : all('body *')) {
  const t = textOf(el);
  if (!/^\d{1,3}$/.test(t) || !shown(el) || el.children.length) continue;
  const size = parseFloat(getComputedStyle(el).fontSize);
  const base = parseFloat(getComputedStyle(doc.body).fontSize);
  if (size >= base * 1.5) { matchNumber = t; break; }
}

const firstField = user || pass[0] || otp;
const root = doc.querySelector('main, [role=main]') || doc.body;
return {
  doc: window.__assDoc,
  ready: doc.readyState,
  url: location.href.startsWith('about:') ? doc.baseURI : location.href,  // srcdoc frames
  title: doc.title,
  user: user,
  userValue: user ? user.value : '',
  prefilledUser: !!prefilledUser,
  passwords: pass,
  passwordEmpty: pass.length ? !pass[0].value : true,
  otp: otp,
  otpValue: otp ? otp.value : '',
  otpHint: otp ? (otpLabel || PAGE_HEADING) : '',
  submit: firstField ? submitFor(firstField) : null,
  errors: errors,
  text: squash(root ? root.innerText : '').slice(0, 400),
  heading: PAGE_HEADING,
  methodCode: methodCode,
  methodPush: methodPush,
  lone: lone,
  loneText: lone ? controlText(lone) : '',
  matchNumber: matchNumber,
  activity: (window.__assActivity || 0) + performance.getEntriesByType('resource').length,
  frames: firstField ? [] : all('iframe, frame').filter(shown),
};
