"""The upstream proxy of a run: from the command line, the stored IdP, the environment or the
OS, with Basic credentials from the proxy URL, the keyring or the person (asked once).

Every part of a run that reaches the network (the capture proxy, STS) asks `router_for` and
gets the same `Router`, so a proxy password is asked at most once per run. A typed password
is kept in the OS keyring once a sign-in through that proxy succeeded (`remember_passwords`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from awscli_saml_sso import network
from awscli_saml_sso.idp import passwords
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import IdentityProvider, RunOptions, Ui, require_interactive
from awscli_saml_sso.network import Proxy, ProxySettings, Router, os_pac_source, proxy_settings

log = logging.getLogger(__name__)

#: The environment variable that may carry a proxy password (never an option: process lists).
PASSWORD_VARIABLE = "ASS_PROXY_PASSWORD"  # noqa: S105 - a variable's name, not a secret

_routers: dict[ProxySettings, Router] = {}
_typed: dict[str, Proxy] = {}  # address -> proxy with a password the person typed this run


def settings_for(opts: RunOptions, idp: IdentityProvider | None = None) -> ProxySettings:
    """The run's proxy settings: --proxy/--proxy-pac, else the IdP's stored ones, else the
    proxy variables, else the OS's configured PAC file (Windows and macOS). Raises UsageError.
    """
    proxy = opts.proxy or (idp.proxy if idp and not opts.proxy_pac else None)
    pac = opts.proxy_pac or (idp.proxy_pac if idp and not opts.proxy else None)
    settings = proxy_settings(opts.env, proxy=proxy, pac=pac)
    if not settings.configured and not proxy:
        found = os_pac_source()
        if found:
            settings = proxy_settings(opts.env, pac=found)
    return settings


def with_stored_proxy(opts: RunOptions, settings: Settings) -> RunOptions:
    """`opts` with the proxy settings stored for --idp-nickname when none were given."""
    if opts.proxy or opts.proxy_pac or not opts.idp_nickname:
        return opts
    idp = settings.load_idps().get(opts.idp_nickname)
    if idp is None or not (idp.proxy or idp.proxy_pac):
        return opts
    return replace(opts, proxy=idp.proxy, proxy_pac=idp.proxy_pac)


def _password(proxy: Proxy, opts: RunOptions, ui: Ui) -> Proxy:
    """`proxy` with its password: from its URL, the keyring, ASS_PROXY_PASSWORD, or asked."""
    if not proxy.username or proxy.password is not None:
        return proxy
    if proxy.address in _typed:
        return _typed[proxy.address]
    try:
        stored = passwords.get_password(proxy.keyring_entry, proxy.username)
    except passwords.KeyringUnavailable as exc:
        log.debug("no keyring for the proxy password: %s", exc)
        stored = None
    if stored:
        return replace(proxy, password=stored)
    supplied = opts.env.get(PASSWORD_VARIABLE)
    if supplied:
        return replace(proxy, password=supplied)
    require_interactive(ui, f"the password of {proxy.username} at the proxy {proxy.url}")
    typed = replace(
        proxy, password=ui.ask(f"Password for {proxy.username} at the proxy {proxy.url}", hide=True)
    )
    _typed[proxy.address] = typed
    return typed


def router_for(opts: RunOptions, ui: Ui, idp: IdentityProvider | None = None) -> Router:
    """The run's Router (built once per settings; the PAC file is loaded then)."""
    settings = settings_for(opts, idp)
    found = _routers.get(settings)
    if found is None:
        with_passwords = {p.address: _password(p, opts, ui) for p in settings.proxies()}
        found = _routers[settings] = network.router_for(settings, with_passwords)
        if settings.configured:
            ui.info(f"Using the proxy settings from {settings.source}.")
    return found


def remember_passwords(ui: Ui) -> None:
    """Keep the proxy passwords typed in this run in the OS keyring (after a sign-in worked)."""
    for proxy in list(_typed.values()):
        if not proxy.username or proxy.password is None:
            continue
        try:
            passwords.set_password(proxy.keyring_entry, proxy.username, proxy.password)
            ui.info(f"The password for the proxy {proxy.url} was saved in the OS keyring.")
        except passwords.KeyringUnavailable as exc:
            ui.warn(f"The proxy password was not saved: {exc}.")
    _typed.clear()
