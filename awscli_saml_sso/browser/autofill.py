"""Sign in at the identity provider in the browser until the capture proxy has the assertion.

With autofill on, every page is scanned (one script round trip, scan.js) for visible
username, password and one-time-code fields, read as a person reads them: by the words next
to each field (label, accessible name, placeholder, the text just before it, the page's
heading), with autocomplete, type, name and id only as weaker evidence, never by one
vendor's element ids. What is present is filled and submitted, page after page, until the
capture, an error shown by the IdP, or the deadline. A submit the page ignores (no request,
no change, no navigation) is tried a second way: Enter in the field, then the form's own
submit. Pages without fields: a choice of second-factor methods gets a one-time code when
one can be given, else a push; a page whose only action is an affirmative one ("Continue",
"OK") is pressed once it has settled; any other page is announced (with the number to
match, if one is shown) and waited for. With autofill off, the person types in a visible
browser and we only wait.

Rules kept for the person's account: the password is asked for at most once and submitted
at most once per run (lockout policies count attempts); the IdP's own error text is shown
verbatim, less any terminal control sequence (`text.printable`); an IdP session still
alive means no form is touched at all.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from awscli_saml_sso.errors import AssError, SignInError, WrongPassword
from awscli_saml_sso.files import ensure_private_dir
from awscli_saml_sso.model import Prompter, is_capture_host, is_loopback, origin_of
from awscli_saml_sso.text import printable

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

    from awscli_saml_sso.browser.proxy import CaptureProxy

logger = logging.getLogger(__name__)

BROWSER_CLOSED = "The browser was closed before sign-in finished."


class NeedsHandOver(SignInError):
    """Headless autofill cannot finish this page; the person can, in a visible window."""


# Pages where the person acts elsewhere (a phone): waiting is right, a new window is not.
_ELSEWHERE = ("approve", "notification", "push", "your phone", "on your device")
# Pages only the person can get past in a browser they see.
_PERSON_ONLY = ("security key", "passkey", "webauthn", "captcha", "robot", "touch your", "fido")
# Where no event exists (the DOM), the page is polled at this interval.
_POLL = 0.15
# A page without fields must stay unchanged this long before its text counts as an
# instruction (a push or number-matching page), so redirect pages are not announced.
_SETTLE = 1.0
# After the password field comes back, how long to wait for the IdP's error text.
_ERROR_GRACE = 1.5
_MAX_SAME_STEP = 3
# A filled username step still on screen this long after our submit is submitted again
# (before that, it is a single-page app still moving to its next step).
_RESUBMIT_AFTER = 5.0
# A submit after which the page did nothing at all (no request, no DOM change, no
# navigation) for this long is tried the next way: click, Enter, the form's own submit.
_IGNORED_AFTER = 2.0
_SUBMIT_WAYS = ("click", "enter", "form")
# A password field emptied on the same page without any message: an XHR sign-in on its way
# to a script redirect, or a silent refusal; after this long it counts as asked again.
_CLEARED_GRACE = 5.0

# Fragments of WebDriver errors that mean the window or the whole browser is gone.
_CLOSED_MARKERS = (
    "no such window",
    "invalid session id",
    "not reachable",
    "disconnected",
    "target window already closed",
    "session deleted",
    "no such session",
    "web view not found",
    "not connected to devtools",
)


def _script(name: str) -> str:
    """A page script shipped beside this module (package data, linted and tested on its own)."""
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


# One round trip per poll: classify the page's visible fields, its error and instruction texts.
# Runs in the page; returns plain values and element references.
_SCAN_JS = _script("scan.js")

# Run right before a submit: errors already on screen then are not answers to this submit.
_MARK_SEEN_JS = _script("mark_seen.js")


@dataclass
class _Page:
    """One scan of the current page, as returned by _SCAN_JS."""

    doc: str
    ready: str
    url: str
    title: str
    user: WebElement | None
    user_value: str
    prefilled_user: bool
    passwords: list[WebElement]
    password_empty: bool
    otp: WebElement | None
    otp_value: str
    otp_hint: str
    submit: WebElement | None
    errors: list[str]
    text: str
    heading: str = ""
    method_code: WebElement | None = None
    method_push: WebElement | None = None
    lone: WebElement | None = None
    lone_text: str = ""
    match_number: str = ""
    activity: int = 0
    frames: list[WebElement] = field(default_factory=list)

    @classmethod
    def from_script(cls, raw: dict[str, Any]) -> _Page:
        return cls(
            doc=str(raw.get("doc") or ""),
            ready=str(raw.get("ready") or ""),
            url=str(raw.get("url") or ""),
            title=printable(str(raw.get("title") or "")),
            user=raw.get("user"),
            user_value=str(raw.get("userValue") or ""),
            prefilled_user=bool(raw.get("prefilledUser")),
            passwords=list(raw.get("passwords") or []),
            password_empty=bool(raw.get("passwordEmpty")),
            otp=raw.get("otp"),
            otp_value=str(raw.get("otpValue") or ""),
            otp_hint=printable(str(raw.get("otpHint") or "")),
            submit=raw.get("submit"),
            errors=[printable(str(e)) for e in raw.get("errors") or []],
            text=printable(str(raw.get("text") or "")),
            heading=printable(str(raw.get("heading") or "")),
            method_code=raw.get("methodCode"),
            method_push=raw.get("methodPush"),
            lone=raw.get("lone"),
            lone_text=printable(str(raw.get("loneText") or "")),
            match_number=printable(str(raw.get("matchNumber") or "")),
            activity=int(raw.get("activity") or 0),
            frames=list(raw.get("frames") or []),
        )


@dataclass
class _Pending:
    """A submit whose effect is not seen yet."""

    doc: str
    activity: int
    since: float
    ways: list[str]
    target: WebElement | None
    control: WebElement | None


@dataclass
class _Run:
    """What this sign-in has done so far: asked, filled and submitted.

    The password and a pending one-time code never show in `repr` (nor does the prompter).
    """

    prompter: Prompter = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    submitted: bool = False
    submitted_kinds: set[str] = field(default_factory=set)  # username, password, otp
    password_doc: str | None = None
    otp_submits: int = 0
    pending_code: str | None = field(default=None, repr=False)  # asked, not yet submitted
    otp_doc: str | None = None
    step_counts: dict[str, int] = field(default_factory=dict)
    last_submit: tuple[str, float] = ("", 0.0)  # document and time of our last submit
    announced: set[str] = field(default_factory=set)
    approved: set[str] = field(default_factory=set)  # origins the prompter approved
    last_origin: str = ""  # of the last page shown before AWS's sign-in page ("": none)
    quiet_since: tuple[str, str, float] | None = None
    last_page: _Page | None = None
    # Our last submit, to try it another way if the page ignores it: the page's document,
    # its activity count right before, when, the ways tried, the field and the control.
    pending: _Pending | None = None
    pressed: set[str] = field(default_factory=set)  # field-less pages' controls we pressed
    in_frame: bool = False  # the driver is switched into a frame of the page

    def get_username(self) -> str:
        if self.username is None:
            self.username = self.prompter.username()
        return self.username

    def get_password(self) -> str:
        if self.password is None:
            self.password = self.prompter.password()
        return self.password


def fill_forms(
    driver: WebDriver,
    proxy: CaptureProxy,
    start_url: str,
    *,
    prompter: Prompter,
    autofill: bool,
    timeout: float,
    debug_dir: Path | None = None,
    hand_over_after: float | None = None,
) -> str:
    """Open ``start_url`` and sign in until the proxy captures the SAMLResponse; return it.

    With ``hand_over_after``, a page without fields that stays unchanged that long (at
    once for a security key, passkey or captcha page; never for a push page) raises
    NeedsHandOver, so the caller can reopen the sign-in where the person sees it.

    Raises SignInError with the IdP's own error text, on timeout (naming the page it was
    stuck on; with ``debug_dir`` the page source is saved there, 0600, and its path given),
    and when the browser is closed before the capture.
    """
    from selenium.common.exceptions import UnexpectedAlertPresentException

    deadline = time.monotonic() + timeout
    run = _Run(prompter)
    home = origin_of(start_url)
    if home:  # the login URL's own origin is the IdP's
        run.approved.add(home)
        proxy.allow_origin(home)
    try:
        driver.set_script_timeout(10)
        driver.get(start_url)
        while True:
            _check_posts(proxy, run)
            if proxy.captured.is_set():
                return _result(proxy)
            if proxy.fatal_error:  # the upstream proxy's 407, an untrusted certificate
                raise SignInError(proxy.fatal_error)
            if time.monotonic() >= deadline:
                raise _stuck(driver, proxy, run, timeout, debug_dir)
            try:
                if autofill:
                    _autofill_step(driver, proxy, run, deadline)
                    _check_hand_over(run, hand_over_after)
                else:
                    _check_open(driver)
                    _note_origin(run, driver.current_url)
            except UnexpectedAlertPresentException as exc:
                _dialog_dismissed(run, exc.alert_text)
            proxy.captured.wait(_POLL)
    except SignInError:
        if proxy.captured.is_set():  # the capture won the race against a closing page
            return _result(proxy)
        raise
    except AssError:
        raise  # from the prompter (e.g. a refusal to ask under --no-prompt): the CLI's to show
    except Exception as exc:
        if proxy.captured.is_set():
            return _result(proxy)
        if _is_closed(exc):
            raise SignInError(BROWSER_CLOSED) from exc
        raise SignInError(f"The browser failed during sign-in: {_first_line(exc)}") from exc


def _dialog_dismissed(run: _Run, text: str | None) -> None:
    """A page's own dialog (alert, confirm, prompt) was open: the driver closed it as
    Cancel would (a prompt then gives the page no answer, so it takes its own default) and
    the sign-in goes on; what the dialog said is told, so an IdP message shown that way is
    not lost."""
    said = printable(text or "").strip()
    logger.debug("the page's dialog was closed: %s", said)
    if said:
        run.prompter.info(f'The page showed a dialog, closed without an answer: "{said}"')


def _check_posts(proxy: CaptureProxy, run: _Run) -> None:
    """Decide about an assertion posted from an origin not yet of this sign-in (approved
    for this IdP: taken; else refused), and fail on a post the proxy refused outright."""
    if proxy.refusals:
        raise SignInError(proxy.refusals[0])
    held = proxy.held
    if held is None or proxy.captured.is_set():
        return
    # Many IdPs send no origin with the post (`Referrer-Policy: no-referrer` makes the
    # browser say `null`): the post then counts as coming from the page the browser showed
    # last, as the browser itself reported it (a data: page has no origin).
    origin = held[0] or run.last_origin
    if origin and (origin in run.approved or run.prompter.approve_origin(origin)):
        run.approved.add(origin)
        proxy.accept_held()
        return
    where = origin or "a page without a web origin (a data: or local page)"
    raise SignInError(
        f"A page of {where} posted a SAML assertion to AWS, but that origin is not part of "
        "this sign-in at the identity provider; the assertion was refused."
    )


def _note_origin(run: _Run, url: str) -> None:
    """Remember the origin of the page the browser shows, unless it is AWS's own page."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    if not is_capture_host(host):
        run.last_origin = origin_of(url)


def _result(proxy: CaptureProxy) -> str:
    value = proxy.wait_for_saml_response(0)
    if not value:  # pragma: no cover - captured is set only with a value
        raise SignInError("The capture proxy signalled a capture without a SAMLResponse.")
    return value


def _autofill_step(driver: WebDriver, proxy: CaptureProxy, run: _Run, deadline: float) -> None:
    """Scan the page once and do what it asks for: fill, submit, report or wait."""
    page = _scan(driver, run)
    if page is None:
        return
    run.last_page = page
    _note_origin(run, page.url)
    unreachable = _unreachable(proxy, page.url)
    if unreachable and page.title.startswith("502"):
        raise SignInError(unreachable)
    if page.errors and _answers_our_submit(run, page):
        # An error beside a password field after our password submit: the IdP refused it.
        refused = run.password_doc is not None and bool(page.passwords)
        raise (WrongPassword if refused else SignInError)(" ".join(page.errors))
    if page.ready == "loading":
        return
    if len(page.passwords) > 1:
        raise SignInError(
            "The identity provider asks for more than one password (a password change?); "
            f"finish that in a visible browser first. The page says: {page.text}"
        )
    if _submit_ignored(run, page):
        _submit_another_way(driver, run)
        return
    if page.passwords and run.password_doc is not None:
        if page.doc != run.password_doc:
            # The password field is back after our password submit: the IdP refused it.
            raise WrongPassword(_error_after_password(driver, page, deadline))
        if page.password_empty and time.monotonic() - run.last_submit[1] > _CLEARED_GRACE:
            raise WrongPassword(_error_after_password(driver, page, deadline))
        return  # our submit is still in flight (an XHR sign-in may have emptied the field)
    if page.otp is not None and page.otp_value and page.doc == run.otp_doc:
        return  # our code is still in flight
    from selenium.common.exceptions import (
        ElementNotInteractableException,
        StaleElementReferenceException,
    )

    if (page.user is not None or page.passwords or page.otp is not None) and not _may_type_here(
        driver, proxy, run, page
    ):
        return  # the page moved on between the scan and now: scan again
    try:
        filled = _fill(run, page)
        if filled:
            _submit(driver, run, page, filled)
            return
    except (StaleElementReferenceException, ElementNotInteractableException) as exc:
        # The page changed under us before the submit: nothing was sent, scan again.
        logger.debug("page changed while filling: %s", _first_line(exc))
        return
    if page.user is None and page.otp is None and not page.passwords:
        if _settled(run, page) and page.errors and not run.submitted:
            # An error page with nothing to fill (e.g. a misconfigured IdP link): say so now.
            raise SignInError(_error_page(page))
        if _press_when_settled(driver, run, page):
            return
        _announce_when_settled(run, page)


def _may_type_here(driver: WebDriver, proxy: CaptureProxy, run: _Run, page: _Page) -> bool:
    """Check the page's real origin (the browser's, not the page script's) right before
    anything is typed: an origin the person did not approve for this IdP stops the sign-in.

    False when the browser is no longer on the scanned page. Raises SignInError naming the
    origin when the prompter refuses it (--no-prompt, or the person said no).
    """
    current = origin_of(driver.current_url)
    if current != origin_of(page.url):
        return False
    if not current or current not in run.approved:
        if not current or not run.prompter.approve_origin(current):
            where = current or f"a page without a web origin ({_display_url(page.url)[:40]})"
            raise SignInError(
                f"The sign-in went on to {where}, which is not approved for this identity "
                "provider; nothing was typed there. If that is where you sign in, run the tool "
                "once in a terminal to approve it; otherwise check the login URL."
            )
        run.approved.add(current)
    proxy.allow_origin(current)  # its post of the assertion is this sign-in's
    return True


def _answers_our_submit(run: _Run, page: _Page) -> bool:
    """Whether error text on this page can be the IdP's answer to something we sent.

    It can on the page we submitted, on a page without fields, and on a page that asks
    again for what we already sent. A new page asking for something new only shows hints
    about its own empty fields (say, "Please fill out this field." when its stylesheet did
    not hide them): nothing of ours was refused yet.
    """
    if not run.submitted:
        return False
    if page.doc == run.last_submit[0]:
        return True
    asks = set()
    if page.user is not None:
        asks.add("username")
    if page.passwords:
        asks.add("password")
    if page.otp is not None:
        asks.add("otp")
    return not asks or bool(asks & run.submitted_kinds)


def _refuse_unencrypted(url: str) -> None:
    """Never type a password into a plain-http page except on this machine (a test IdP).

    The start URL is checked when stored, but an IdP can redirect anywhere.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" or is_loopback(parts.hostname):
        return
    raise SignInError(
        f"The sign-in page {_display_url(url)} is not encrypted (no https); your password was "
        "not typed into it. Check the identity provider's URL."
    )


def _error_page(page: _Page) -> str:
    """A sentence for a page that shows only an error: the browser's own, or the IdP's."""
    text = " ".join(page.errors)
    if page.url.startswith("chrome-error:") or text.startswith(("ERR_", "net::ERR_")):
        return (
            f"The browser could not open the identity provider's page ({text}); check the "
            "login URL and that the identity provider is reachable from this machine."
        )
    return f"The identity provider shows an error: {text}"


def _fill(run: _Run, page: _Page) -> list[str]:
    """Type what the page asks for; return the kinds filled (username/password/otp)."""
    filled: list[str] = []
    last: WebElement | None = None
    if page.user is not None and not page.user_value:
        _type(page.user, run.get_username())
        filled.append("username")
        last = page.user
    if page.passwords:
        _refuse_unencrypted(page.url)
        _type(page.passwords[0], run.get_password())
        filled.append("password")
        last = page.passwords[0]
    if page.otp is not None and not page.otp_value:
        if run.pending_code is None:
            run.otp_submits += 1
            if run.otp_submits > _MAX_SAME_STEP:
                raise SignInError(
                    f"The identity provider asked for a one-time code {_MAX_SAME_STEP} times; "
                    f"giving up. The page says: {page.text}"
                )
            run.pending_code = run.prompter.mfa_code(page.otp_hint or page.title).strip()
        _type(page.otp, run.pending_code)
        filled.append("otp")
        last = page.otp
    recently_submitted_here = (
        run.last_submit[0] == page.doc and time.monotonic() - run.last_submit[1] < _RESUBMIT_AFTER
    )
    if (
        not filled
        and page.user is not None
        and page.user_value
        and not page.prefilled_user
        and not recently_submitted_here
    ):
        # A username step the IdP prefilled (e.g. from a login hint): just move on.
        filled.append("username")
        last = page.user
    if last is not None:
        run.quiet_since = None
    return filled


def _type(element: WebElement, value: str) -> None:
    element.clear()
    element.send_keys(value)


def _submit(driver: WebDriver, run: _Run, page: _Page, filled: list[str]) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.keys import Keys

    step = "+".join(filled)
    run.step_counts[step] = run.step_counts.get(step, 0) + 1
    if run.step_counts[step] > _MAX_SAME_STEP:
        raise SignInError(
            f"The sign-in page did not move on after {_MAX_SAME_STEP} tries. "
            f"The page says: {page.text}"
        )
    activity = int(driver.execute_script(_MARK_SEEN_JS) or 0)
    target = page.otp if "otp" in filled else page.passwords[0] if page.passwords else page.user
    clicked = False
    if page.submit is not None:
        try:
            page.submit.click()
            clicked = True
        except WebDriverException as exc:
            if _is_closed(exc):
                raise
            logger.debug("clicking the submit button failed (%s); pressing Enter", _first_line(exc))
    if not clicked and target is not None:
        target.send_keys(Keys.ENTER)
    logger.debug("submitted %s on %s", step, _display_url(page.url))
    run.submitted = True
    run.submitted_kinds.update(filled)
    run.last_submit = (page.doc, time.monotonic())
    ways = ["click"] if clicked else ["click", "enter"]
    run.pending = _Pending(page.doc, activity, time.monotonic(), ways, target, page.submit)
    if "password" in filled:
        run.password_doc = page.doc
    if "otp" in filled:
        run.otp_doc = page.doc
        run.pending_code = None  # a code is good for one submit


def _submit_ignored(run: _Run, page: _Page) -> bool:
    """Whether the page has done nothing at all since our last submit, for a while."""
    pending = run.pending
    if pending is None or pending.doc != page.doc:
        run.pending = None
        return False
    if page.activity != pending.activity or page.errors:
        run.pending = None  # it reacted: a request, a change, a message
        return False
    return time.monotonic() - pending.since >= _IGNORED_AFTER


def _submit_another_way(driver: WebDriver, run: _Run) -> None:
    """The page ignored our submit: press Enter in the field, then submit its form directly.

    Nothing was sent the first time (no request, no change), so this is not a second
    submission of the password.
    """
    from selenium.webdriver.common.keys import Keys

    pending = run.pending
    remaining = [way for way in _SUBMIT_WAYS if pending and way not in pending.ways]
    if pending is None or not remaining or pending.target is None:
        run.pending = None  # out of ways: the timeout names the page
        return
    way = remaining[0]
    activity = int(driver.execute_script(_MARK_SEEN_JS) or 0)
    logger.debug("the page ignored the submit; trying %s", way)
    if way == "enter":
        pending.target.send_keys(Keys.ENTER)
    else:
        driver.execute_script(_FORM_SUBMIT_JS, pending.target)
    pending.ways.append(way)
    pending.activity, pending.since = activity, time.monotonic()
    run.last_submit = (pending.doc, time.monotonic())


# The field's form, submitted as its submit button would (requestSubmit runs the page's
# submit handlers and validation); a form without one is submitted plainly.
_FORM_SUBMIT_JS = """
const form = arguments[0].form || arguments[0].closest('form');
if (!form) return false;
if (form.requestSubmit) form.requestSubmit(); else form.submit();
return true;
"""


def _press_when_settled(driver: WebDriver, run: _Run, page: _Page) -> bool:
    """On a settled page without fields, press what a careful person would; True if pressed.

    - A choice of second-factor methods: a one-time code when one can be given (a person
      at the terminal, or --mfa-code), else a push notification.
    - A page whose only action is an affirmative one ("Continue", "OK", "Next"): nothing is
      asked and nothing is granted, so it is pressed, once per page text.
    Anything else (a real question, e.g. "Stay signed in? Yes / No", consent) is not answered.
    """
    if not _settled(run, page):
        return False
    choice = None
    if page.method_code is not None and _can_give_code(run.prompter):
        choice = (page.method_code, "a one-time code")
    elif page.method_push is not None:
        choice = (page.method_push, "a push notification")
    elif page.lone is not None:
        choice = (page.lone, f'"{page.lone_text}"')
    key = f"{page.doc}:{page.text}"
    if choice is None or key in run.pressed:
        return False
    run.pressed.add(key)
    step = f"press:{page.text}"
    run.step_counts[step] = run.step_counts.get(step, 0) + 1
    if run.step_counts[step] > _MAX_SAME_STEP:
        return False
    element, what = choice
    logger.debug("pressing %s on %s", what, _display_url(page.url))
    if element is page.method_code or element is page.method_push:
        run.prompter.info(f"The identity provider offers several ways to confirm; using {what}.")
    driver.execute_script(_MARK_SEEN_JS)
    element.click()
    run.quiet_since = None
    return True


def _check_hand_over(run: _Run, after: float | None) -> None:
    """Raise NeedsHandOver when the settled field-less page needs the person (see fill_forms)."""
    page = run.last_page
    if after is None or page is None or run.quiet_since is None:
        return
    if page.user is not None or page.otp is not None or page.passwords:
        return
    if run.quiet_since[:2] != (page.doc, page.text):
        return
    text = f"{page.title} {page.text}".lower()
    if any(word in text for word in _ELSEWHERE):
        return
    quiet = time.monotonic() - run.quiet_since[2]
    person_only = any(word in text for word in _PERSON_ONLY)
    if quiet >= (_SETTLE if person_only else after):
        raise NeedsHandOver(f'the page "{page.title or page.heading}" needs you')


def _can_give_code(prompter: Prompter) -> bool:
    """Whether a one-time code can be had (a prompter without the question: assume so)."""
    check = getattr(prompter, "can_give_code", None)
    return bool(check()) if callable(check) else True


def _error_after_password(driver: WebDriver, page: _Page, deadline: float) -> str:
    """The password field is back after we submitted it: find the IdP's reason, briefly."""
    until = min(deadline, time.monotonic() + _ERROR_GRACE)
    while not page.errors and time.monotonic() < until:
        time.sleep(_POLL)
        page = _scan(driver) or page  # in the frame the password was in, if any
    if page.errors:
        return " ".join(page.errors)
    return (
        "The identity provider asked for the password again after it was submitted; "
        f"it was not submitted twice. The page says: {page.text}"
    )


def _settled(run: _Run, page: _Page) -> bool:
    """Whether this field-less page has stayed the same for _SETTLE seconds."""
    if page.ready != "complete":
        run.quiet_since = None
        return False
    now = time.monotonic()
    if run.quiet_since is None or run.quiet_since[:2] != (page.doc, page.text):
        run.quiet_since = (page.doc, page.text, now)
        return False
    return now - run.quiet_since[2] >= _SETTLE


def _announce_when_settled(run: _Run, page: _Page) -> None:
    """Tell the person what a waiting page (push, number matching) asks, once per text."""
    if page.text and page.text not in run.announced and _settled(run, page):
        run.announced.add(page.text)
        if page.match_number and page.match_number not in run.announced:
            run.announced.add(page.match_number)
            run.prompter.info(f">>> Number to match on your device: {page.match_number} <<<")
        run.prompter.info(page.text)


def _scan(driver: WebDriver, run: _Run | None = None) -> _Page | None:
    """Scan the current page; None while it is between documents (navigation in flight).

    With ``run``, the scan starts from the top document, and a page without fields of its
    own is scanned inside each of its visible frames: the driver stays in the first frame
    that has fields, so filling and submitting happen there.
    """
    from selenium.common.exceptions import (
        JavascriptException,
        NoSuchFrameException,
        StaleElementReferenceException,
        TimeoutException,
    )

    skipped = (
        JavascriptException,
        NoSuchFrameException,
        StaleElementReferenceException,
        TimeoutException,
    )
    try:
        if run is not None and run.in_frame:
            driver.switch_to.default_content()
            run.in_frame = False
        raw = driver.execute_script(_SCAN_JS)
        if not isinstance(raw, dict):
            return None
        page = _Page.from_script(raw)
        for frame in page.frames if run is not None else []:
            driver.switch_to.frame(frame)
            inner = driver.execute_script(_SCAN_JS)
            if isinstance(inner, dict):
                framed = _Page.from_script(inner)
                if framed.user is not None or framed.passwords or framed.otp is not None:
                    run.in_frame = True  # type: ignore[union-attr]
                    return framed
            driver.switch_to.default_content()
    except skipped as exc:
        logger.debug("page scan skipped: %s", _first_line(exc))
        return None
    return page


def _check_open(driver: WebDriver) -> None:
    """Raise SignInError if the person closed the browser; follow a tab that is still open."""
    from selenium.common.exceptions import NoSuchWindowException

    try:
        handles = driver.window_handles
    except Exception as exc:
        if _is_closed(exc):
            raise SignInError(BROWSER_CLOSED) from exc
        raise
    if not handles:
        raise SignInError(BROWSER_CLOSED)
    try:
        driver.current_window_handle  # noqa: B018 - raises if our tab was closed
    except NoSuchWindowException:
        driver.switch_to.window(handles[-1])


def _is_closed(exc: BaseException) -> bool:
    """Whether an exception from Selenium means the window or the browser is gone."""
    from selenium.common.exceptions import InvalidSessionIdException, NoSuchWindowException

    if isinstance(exc, (NoSuchWindowException, InvalidSessionIdException)):
        return True
    if "timeout" in type(exc).__name__.lower():
        return False  # a driver that stopped answering is not a closed window
    if isinstance(exc, (ConnectionError, OSError)):
        return True  # the driver process is gone: connection refused or reset
    name = type(exc).__module__
    if name.startswith(("urllib3", "http.client")):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _CLOSED_MARKERS)


def _unreachable(proxy: CaptureProxy, url: str) -> str | None:
    """A sentence about the proxy's failure to reach the page's host, if it failed."""
    if proxy.fatal_error:  # the upstream proxy's 407, an untrusted certificate: said better
        return proxy.fatal_error
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    error = proxy.upstream_failures.get(host)
    if error is None:
        return None
    return f"The capture proxy could not reach {host}: {error}."


def _stuck(
    driver: WebDriver, proxy: CaptureProxy, run: _Run, timeout: float, debug_dir: Path | None
) -> SignInError:
    """Build the timeout error naming the page it was stuck on; save the page with debug_dir."""
    title, url = "", ""
    if run.last_page is not None:
        title, url = run.last_page.title, run.last_page.url
    try:
        title, url = driver.title or title, driver.current_url or url
    except Exception:
        logger.debug("could not read the page at timeout", exc_info=True)
    message = (
        f"Sign-in did not finish within {timeout:g} seconds; "
        f'it was stuck on the page "{title}" at {_display_url(url)}.'
    )
    unreachable = _unreachable(proxy, url)
    if unreachable:
        message += f" {unreachable}"
    if debug_dir is not None:
        saved = _save_page(driver, debug_dir)
        if saved is not None:
            message += f" The page was saved to {saved}."
    return SignInError(message)


def _save_page(driver: WebDriver, debug_dir: Path) -> Path | None:
    """Write the page source to a new 0600 file in debug_dir; None if that fails."""
    try:
        source = driver.page_source
        ensure_private_dir(debug_dir)
        path = debug_dir / f"signin-stuck-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.html"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(source)
    except Exception:
        logger.debug("could not save the page source", exc_info=True)
        return None
    return path


def _display_url(url: str) -> str:
    """The URL without query and fragment: those often carry one-time session codes."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
