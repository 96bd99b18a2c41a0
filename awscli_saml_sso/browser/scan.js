const doc = document;
if (!window.__assDoc) { window.__assDoc = Math.random().toString(36).slice(2); }
const squash = (t) => (t || '').replace(/\s+/g, ' ').trim();
function shown(el) {
  if (!el || !el.isConnected) return false;
  if (el.checkVisibility && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) {
    return false;
  }
  const st = getComputedStyle(el);
  if (st.visibility === 'hidden' || st.display === 'none') return false;
  const r = el.getBoundingClientRect();
  return r.width > 1 && r.height > 1;
}
function labelOf(el) {
  const parts = [];
  if (el.labels) for (const l of el.labels) parts.push(l.innerText);
  for (const a of ['aria-label', 'placeholder', 'title']) {
    if (el.getAttribute(a)) parts.push(el.getAttribute(a));
  }
  const ids = (el.getAttribute('aria-labelledby') || '') + ' ' +
              (el.getAttribute('aria-describedby') || '');
  for (const id of ids.split(/\s+/)) {
    const x = id && doc.getElementById(id);
    if (x) parts.push(x.innerText);
  }
  return squash(parts.join(' '));
}
const OTP = /(otp|totp|one.?time|passcode|code|token|mfa|2fa|two.?factor|verif|authenticat)/i;
const USER = /(user|login|e.?mail|account|identifier|upn|principal)/i;
const TEXTLIKE = ['', 'text', 'email', 'tel', 'number', 'password'];
const inputs = [...doc.querySelectorAll('input, textarea')].filter(
  (el) => TEXTLIKE.includes((el.getAttribute('type') || '').toLowerCase()) &&
          shown(el) && !el.disabled);
let user = null, pass = [], otp = null, prefilledUser = null;
const texts = [];
for (const el of inputs) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  const ac = (el.getAttribute('autocomplete') || '').toLowerCase();
  const names = (el.name || '') + ' ' + (el.id || '');
  const label = labelOf(el);
  const maxlen = el.maxLength;
  const numeric = (el.getAttribute('inputmode') || '').toLowerCase() === 'numeric';
  const isOtp = ac.includes('one-time-code') || OTP.test(names) ||
    (type !== 'password' && OTP.test(label)) ||
    (type !== 'password' && numeric && (maxlen < 0 || (maxlen >= 6 && maxlen <= 8))) ||
    (type !== 'password' && !USER.test(names + ' ' + label) && maxlen >= 6 && maxlen <= 8);
  if (isOtp) { if (!otp && !el.readOnly) otp = el; continue; }
  if (type === 'password') { if (!el.readOnly) pass.push(el); continue; }
  const isUser = type === 'email' || ac.includes('username') || ac.includes('email') ||
    USER.test(names) || USER.test(label);
  if (isUser && !user) { if (el.readOnly) prefilledUser = el; else user = el; continue; }
  texts.push(el);
}
if (!user && pass.length && texts.length === 1 && !texts[0].readOnly) user = texts[0];
// The IdP's error text: innermost visible alert-like elements, not info or success banners.
const ERR = /(error|alert|danger|invalid|feedback)/i;
const NOT_ERR = /(^|[-_\s])(info|success|warning|valid-feedback)([-_\s]|$)/i;
const candidates = [...doc.querySelectorAll(
  '[role=alert], [aria-live], [id], [class]')].filter((el) => {
  if (['INPUT', 'TEXTAREA', 'SELECT', 'BUTTON', 'FORM', 'BODY', 'HTML'].includes(el.tagName)) {
    return false;
  }
  const cls = (typeof el.className === 'string' ? el.className : '') + ' ' + (el.id || '');
  const role = (el.getAttribute('role') || '').toLowerCase();
  const live = (el.getAttribute('aria-live') || '').toLowerCase();
  const errorish = role === 'alert' || live === 'assertive' || ERR.test(cls);
  if (!errorish || NOT_ERR.test(cls)) return false;
  if (el.querySelector('input, textarea, select, form')) return false;
  const t = squash(el.innerText);
  return t.length > 0 && t.length < 500 && shown(el);
});
const errors = [];
for (const el of candidates) {
  if (candidates.some((o) => o !== el && el.contains(o))) continue;
  const t = squash(el.innerText);
  if (el.__assSeen === t) continue;
  if (!errors.includes(t)) errors.push(t);
}
function submitFor(el) {
  const scope = (el && el.form) || doc;
  const buttons = [...scope.querySelectorAll(
    'button, input[type=submit], input[type=image], input[type=button], [role=button]')]
    .filter((b) => shown(b) && !b.disabled);
  const text = (b) => squash(b.innerText || b.value || b.getAttribute('aria-label') || '');
  const NO = /(cancel|back|forgot|reset|another|sign ?up|register|create|help|show|resend)/i;
  const YES = /(sign ?in|log ?in|next|continue|verify|submit|confirm|ok\b|anmelden|weiter)/i;
  const isSubmit = (b) => b.type === 'submit' || b.type === 'image' ||
    (b.tagName === 'BUTTON' && !b.getAttribute('type') && b.form);
  return buttons.find((b) => isSubmit(b) && YES.test(text(b))) ||
    buttons.find((b) => isSubmit(b) && !NO.test(text(b))) ||
    buttons.find((b) => YES.test(text(b)) && !NO.test(text(b))) || null;
}
const firstField = user || pass[0] || otp;
const root = doc.querySelector('main, [role=main]') || doc.body;
const heading = doc.querySelector('h1, h2, legend');
return {
  doc: window.__assDoc,
  ready: doc.readyState,
  url: location.href,
  title: doc.title,
  user: user,
  userValue: user ? user.value : '',
  prefilledUser: !!prefilledUser,
  passwords: pass,
  passwordEmpty: pass.length ? !pass[0].value : true,
  otp: otp,
  otpValue: otp ? otp.value : '',
  otpHint: otp ? (labelOf(otp) || squash(heading && heading.innerText)) : '',
  submit: firstField ? submitFor(firstField) : null,
  errors: errors,
  text: squash(root ? root.innerText : '').slice(0, 400),
};
