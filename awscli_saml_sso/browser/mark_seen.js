// Run right before a submit: errors already on screen are not answers to it. Also counts what
// the page does from now on (form submits, DOM changes; requests are in Resource Timing), so a
// click the page ignored can be told from one it is still acting on. Returns that count.
const squash = (t) => (t || '').replace(/\s+/g, ' ').trim();
for (const el of document.querySelectorAll('[role=alert], [aria-live], [id], [class]')) {
  el.__assSeen = squash(el.innerText);
}
if (!window.__assWatching) {
  window.__assWatching = true;
  window.__assActivity = 0;
  const bump = () => { window.__assActivity += 1; };
  document.addEventListener('submit', bump, true);
  new MutationObserver(bump).observe(document.documentElement,
    {childList: true, subtree: true, characterData: true});
}
return window.__assActivity + performance.getEntriesByType('resource').length;
