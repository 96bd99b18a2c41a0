const squash = (t) => (t || '').replace(/\s+/g, ' ').trim();
for (const el of document.querySelectorAll('[role=alert], [aria-live], [id], [class]')) {
  el.__assSeen = squash(el.innerText);
}
