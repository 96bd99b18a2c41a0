"""The command line: parse options, build the core's inputs, turn every failure into an exit code.

Only click, the standard library and light project modules are imported here, so `--help`,
`--version` and the "still valid" path start fast.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from awscli_saml_sso import __version__, console, doctor, flow, keys
from awscli_saml_sso.aws import accounts
from awscli_saml_sso.aws.config_files import credentials_file
from awscli_saml_sso.aws.credential_process import configure_credential_process
from awscli_saml_sso.aws.documents import role_documents, signin_document
from awscli_saml_sso.aws.roles import menu_lines
from awscli_saml_sso.aws.shell import SHELLS, render, variables
from awscli_saml_sso.errors import AssError, Interrupted, NeedsPerson, UsageError
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import IdentityProvider, Keys, RunOptions
from awscli_saml_sso.paths import DEFAULT_MIN_REMAINING, LOGIN_MIN_REMAINING
from awscli_saml_sso.text import printable

log = logging.getLogger("awscli_saml_sso")

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Secrets that come from the environment: read once, then removed from os.environ so that
#: no child (browser, driver, `exec` command) inherits them.
SECRET_VARIABLES = ("ASS_PASSWORD", "ASS_MFA_CODE", "ASS_PROXY_PASSWORD")


class ClickUi:
    """The core's `Ui` on a terminal: prompts and progress on stderr, results on stdout.

    With `results_to_stderr` (exec, env, credential-process) stdout carries only the
    command's own output, so even the outcome of a sign-in goes to stderr.
    """

    def __init__(self, interactive: bool, *, results_to_stderr: bool = False) -> None:
        self.interactive = interactive
        self.results_to_stderr = results_to_stderr

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str:
        if not self.interactive:
            raise NeedsPerson(f"an answer to {prompt!r} is needed but prompting is disabled")
        with _aborts_as_errors():
            return str(click.prompt(prompt, default=default, hide_input=hide, err=True))

    def confirm(self, prompt: str) -> bool:
        if not self.interactive:
            return False
        with _aborts_as_errors():
            return bool(click.confirm(prompt, err=True))

    def info(self, message: str) -> None:
        click.echo(printable(message), err=True)

    def warn(self, message: str) -> None:
        click.secho(f"Warning: {printable(message)}", err=True, fg="yellow")

    def result(self, message: str) -> None:
        click.echo(message, err=self.results_to_stderr)


@contextlib.contextmanager
def _aborts_as_errors() -> Iterator[None]:
    """click's Abort from a prompt, as the project's error: Ctrl-C, or stdin closed."""
    try:
        yield
    except click.exceptions.Abort as exc:
        raise _abort_error(exc) from None


def _abort_error(exc: click.exceptions.Abort) -> AssError:
    if isinstance(exc.__context__, EOFError):
        return UsageError("standard input closed while an answer was expected")
    return Interrupted("interrupted by Ctrl-C")


def setup_logging(level: str) -> None:
    """Our own loggers at `level` on stderr; every library stays at WARNING.

    Libraries log request headers and bodies at DEBUG (selenium the typed password, botocore
    the assertion and keys, HTTP/2's hpack the cookies), so only `awscli_saml_sso.*` follows
    --log-level.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("awscli_saml_sso").setLevel(level)


def _complete_nickname(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of --idp-nickname from the stored identity providers."""
    try:
        names = Settings.from_env().load_idps()
    except AssError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply several click options at once (shared by the group and the subcommands)."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


IDP_OPTIONS = _options(
    click.option(
        "--idp-nickname",
        metavar="NAME",
        help="Stored identity provider to use.",
        shell_complete=_complete_nickname,
    ),
    click.option("--idp-url", metavar="URL", help="Add or update the IdP (with --idp-nickname)."),
    click.option("--username", envvar="ASS_USERNAME", help="Username at the IdP (stored)."),
    click.option("--use-stored", is_flag=True, help="Use the stored username and password."),
    click.option("--show-browser", is_flag=True, help="Show the browser (autofill still runs)."),
    click.option("--use-browser", is_flag=True, help="Show the browser; you type everything."),
    click.option(
        "--no-hand-over",
        is_flag=True,
        help="When headless autofill cannot finish, fail instead of opening a window for you.",
    ),
    click.option("--browser", type=click.Choice(["chromium", "chrome", "edge", "firefox"])),
    click.option("--driver-path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--timeout", type=click.FloatRange(min=1), help="Seconds for the whole sign-in."),
    click.option(
        "--replay/--no-replay",
        default=True,
        show_default=True,
        help="Reuse the IdP's session without a browser while it lasts.",
    ),
    click.option("--mfa-code", envvar="ASS_MFA_CODE", metavar="CODE", help="One-time code."),
    click.option(
        "--saml-response-file",
        metavar="PATH",
        help="Use an assertion captured elsewhere (base64, URL-encoded or XML; - for stdin).",
    ),
    click.option("--role-arn", metavar="ARN", help="Role to assume (exact ARN)."),
    click.option("--region", help="Region for STS and the profile's config."),
    click.option("--duration", type=click.IntRange(min=900, max=43200), help="Session seconds."),
    click.option("--endpoint-url", envvar="ASS_ENDPOINT_URL", metavar="URL", help="STS endpoint."),
    click.option(
        "--proxy",
        metavar="URL",
        help="Upstream proxy http://[USER@]HOST:PORT, or 'direct' (stored with the IdP).",
    ),
    click.option(
        "--proxy-pac", metavar="URL", help="PAC file, http(s):// or file:// (stored with the IdP)."
    ),
    click.option(
        "--integrated-auth",
        metavar="HOSTS",
        help="IdP hosts that may get your Kerberos ticket, comma-separated (stored with the IdP).",
    ),
    click.option(
        "--no-prompt", is_flag=True, envvar="ASS_NO_PROMPT", help="Never ask; fail instead."
    ),
    click.option(
        "--log-level",
        envvar="ASS_LOG_LEVEL",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default="WARNING",
        show_default=True,
    ),
)


CHAIN_OPTIONS = _options(
    click.option(
        "--chain-role-arn",
        metavar="ARN",
        help="Then assume this role with the SAML role's keys (role chaining, one hour at most).",
    ),
    click.option("--external-id", metavar="ID", help="External id the chained role requires."),
)


DISCOVER_OPTION = click.option(
    "--discover-account-names",
    is_flag=True,
    help="Ask IAM for account aliases (one role per account; remembered).",
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (messages: stderr)."
)


def _print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2))


def _min_remaining(default: int) -> Callable[[F], F]:
    return click.option(
        "--min-remaining",
        type=click.IntRange(min=0),
        default=default,
        show_default=True,
        help="Seconds of validity below which credentials are renewed.",
    )


def _start(
    options: dict[str, Any], *, results_to_stderr: bool = False
) -> tuple[RunOptions, Settings, ClickUi]:
    """Common start of every command: logging, settings, the Ui and the core's options."""
    level = str(options.pop("log_level")).upper()
    setup_logging(level)
    ui = ClickUi(interactive=not options.pop("no_prompt"), results_to_stderr=results_to_stderr)
    env = dict(os.environ)
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)
    opts = RunOptions(**options, debug=level == "DEBUG", env=env)
    return opts, Settings.from_env(), ui


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="awscli_saml_sso")
@IDP_OPTIONS
@CHAIN_OPTIONS
@click.option("--role-selection", type=click.IntRange(min=0), help="Role number, from 0.")
@click.option("--all-roles", is_flag=True, help="Write one profile per role.")
@click.option(
    "--profile-name-template",
    metavar="TEMPLATE",
    help="Profile names for --all-roles, from {account_id}, {account_name}, {role_name}.",
)
@DISCOVER_OPTION
@click.option("--profile", default="saml", show_default=True, help="Credentials profile.")
@click.option("--output", help="Output format written to the profile's config.")
@click.option("--force", is_flag=True, help="Sign in even if the profile is still valid.")
@_min_remaining(LOGIN_MIN_REMAINING)
@click.option("--clean", is_flag=True, help="Remove stored IdPs, passwords and browser profiles.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (with --clean).")
@JSON_OPTION
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Sign in through your SAML identity provider and store temporary AWS credentials.

    Without a subcommand, signs in and writes the --profile (default: saml) in the AWS
    credentials file; run `awscli_saml_sso COMMAND --help` for the other commands.
    """
    if ctx.invoked_subcommand is not None:
        setup_logging(str(options["log_level"]).upper())
        return
    do_clean, yes, as_json = options.pop("clean"), options.pop("yes"), options.pop("as_json")
    opts, settings, ui = _start(options, results_to_stderr=as_json)
    if do_clean:
        flow.clean(settings, ui, yes=yes)
        return
    result = flow.login(opts, settings, ui)
    if as_json:
        profiles = [opts.profile] if result.skipped else list(result.profiles)
        path = credentials_file(opts.env)
        names = accounts.known_names(settings.config_dir / "accounts.json")
        _print_json(signin_document(path, profiles, skipped=result.skipped, names=names))


@cli.command("credential-process")
@IDP_OPTIONS
@CHAIN_OPTIONS
@click.option("--profile", default="saml", hidden=True)
@_min_remaining(DEFAULT_MIN_REMAINING)
def credential_process(**options: Any) -> None:
    """Print keys for the AWS CLI's credential_process (JSON on stdout, nothing else).

    Keys come from the tool's own cache; near expiry, one headless sign-in with the stored
    username and password refreshes them for every concurrent caller.
    """
    options["no_prompt"] = True  # the AWS CLI runs us without a terminal to answer
    opts, settings, ui = _start(options, results_to_stderr=True)
    click.echo(json.dumps(keys.role_keys(opts, settings, ui).process_json()))


@cli.command("configure-profile")
@click.argument("name")
@click.option("--idp-nickname", required=True, metavar="NAME")
@click.option("--role-arn", required=True, metavar="ARN")
@CHAIN_OPTIONS
@click.option("--region")
@click.option("--endpoint-url", envvar="ASS_ENDPOINT_URL", metavar="URL")
def configure_profile(
    name: str,
    idp_nickname: str,
    role_arn: str,
    chain_role_arn: str | None,
    external_id: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Make the AWS CLI profile NAME get its keys from this tool (credential_process)."""
    known = Settings.from_env().load_idps()
    path = configure_credential_process(
        name,
        idp_nickname,
        role_arn,
        known,
        region=region,
        endpoint_url=endpoint_url,
        chain=(chain_role_arn, external_id),
    )
    final = f"{role_arn}, then {chain_role_arn}" if chain_role_arn else role_arn
    click.echo(f"Profile {name} in {path} now signs in through {idp_nickname} as {final}.")
    click.echo(f"Try it: aws --profile {name} sts get-caller-identity")


def _key_source(options: dict[str, Any]) -> tuple[Callable[[], Keys], str, RunOptions]:
    """Where exec/env get keys (keys.command_keys), the region, the run's options."""
    opts, settings, ui = _start(options, results_to_stderr=True)
    return (lambda: keys.command_keys(opts, settings, ui)), keys.region_of(opts), opts


def _keys(options: dict[str, Any]) -> tuple[Keys, str]:
    """Keys for exec/env (see _key_source) and their region."""
    fetch, region, _ = _key_source(options)
    return fetch(), region


EXEC_OPTIONS = _options(
    IDP_OPTIONS,
    CHAIN_OPTIONS,
    click.option("--profile", default="saml", show_default=True, help="Credentials profile."),
    _min_remaining(DEFAULT_MIN_REMAINING),
)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@EXEC_OPTIONS
@click.option(
    "--server",
    is_flag=True,
    help="Serve renewed keys to COMMAND from a loopback credential server (long jobs).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec(command: tuple[str, ...], server: bool, **options: Any) -> None:
    """Run COMMAND with temporary keys in its environment; returns its exit code.

    Keys with less than --min-remaining seconds left are renewed first. With --server the
    keys are not in the environment: COMMAND's AWS SDK or CLI fetches them from a loopback
    server (AWS_CONTAINER_CREDENTIALS_FULL_URI, with a random per-run token) that renews them
    before they expire.
    """
    fetch, region, opts = _key_source(options)
    if server:
        sys.exit(
            keys.run_with_server(command, fetch(), fetch, region, min_remaining=opts.min_remaining)
        )
    sys.exit(keys.run_with_keys(command, fetch(), region))


@cli.command()
@EXEC_OPTIONS
@click.option("--shell", type=click.Choice(SHELLS), default="bash", show_default=True)
def env(shell: str, **options: Any) -> None:
    """Print shell lines that export temporary keys (eval "$(awscli_saml_sso env)")."""
    found, region = _keys(options)
    click.echo(render(variables(found, region), shell), nl=False)


@cli.command("console")
@EXEC_OPTIONS
@click.option("--print", "print_only", is_flag=True, help="Print the sign-in URL; open nothing.")
def console_command(print_only: bool, **options: Any) -> None:
    """Open the AWS console signed in as the profile's role (signing in first when needed).

    Each AWS profile gets a browser profile of its own, so several accounts can be open side
    by side. --duration here is the console session's length (900 to 43200 seconds; one hour
    at most for a chained role); the URL is valid for 15 minutes.
    """
    request = console.ConsoleRequest(duration=options.pop("duration"), print_only=print_only)
    opts, settings, ui = _start(options, results_to_stderr=True)
    url = console.open_aws_console(opts, settings, ui, request)
    if print_only:
        click.echo(url)


@cli.command()
@IDP_OPTIONS
@DISCOVER_OPTION
@JSON_OPTION
def roles(as_json: bool, **options: Any) -> None:
    """Sign in and list the roles the identity provider grants, writing nothing."""
    opts, settings, ui = _start(options)
    found, names = flow.list_named_roles(opts, settings, ui)
    if as_json:
        _print_json(role_documents(found, names))
    else:
        click.echo("\n".join(menu_lines(found, names)))


@cli.group("accounts")
def accounts_group() -> None:
    """Names shown beside AWS account ids (stored in the tool's directory)."""


def _accounts_file() -> Path:
    return Settings.from_env().config_dir / "accounts.json"


@accounts_group.command("set")
@click.argument("account_id")
@click.argument("name")
def accounts_set(account_id: str, name: str) -> None:
    """Show NAME beside the 12-digit ACCOUNT_ID (menus, messages, profile names)."""
    accounts.set_name(_accounts_file(), account_id, name)
    click.echo(f"Account {account_id.strip()} is now shown as {name.strip()}.")


@accounts_group.command("remove")
@click.argument("account_id")
def accounts_remove(account_id: str) -> None:
    """Forget the name of ACCOUNT_ID (set or discovered)."""
    known = accounts.remove_name(_accounts_file(), account_id)
    click.echo(f"Forgot the name of {account_id}." if known else f"{account_id} had no name.")


@accounts_group.command("list")
@JSON_OPTION
def accounts_list(as_json: bool) -> None:
    """List the account names: set by you, or IAM aliases found by --discover-account-names."""
    rows = accounts.listing(_accounts_file())
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("No account name is known.", err=True)
    for row in rows:
        click.echo(f"{row['account_id']}\t{row['name']}\t({row['source']})")


@cli.command("doctor")
@click.option("--driver-path", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
def doctor_command(driver_path: Path | None, as_json: bool) -> None:
    """Check what sign-ins need: browser and driver, keyring, display, proxy, CA bundle, the
    tool's directory, each stored IdP (reachable, clock skew), the AWS files.

    Exits 1 when a check fails.
    """
    report = doctor.run_checks(Settings.from_env(), dict(os.environ), driver_path)
    if as_json:
        _print_json(report.document())
    else:
        click.echo("\n".join(report.lines()))
    if not report.ok:
        if not as_json:
            click.echo("Something above will break sign-ins (FAIL).", err=True)
        sys.exit(1)


@cli.group()
def idp() -> None:
    """Manage stored identity providers."""


@idp.command("list")
@JSON_OPTION
def idp_list(as_json: bool) -> None:
    """List stored identity providers."""
    idps = Settings.from_env().load_idps()
    if as_json:
        _print_json([dataclasses.asdict(item) for item in idps.values()])
        return
    if not idps:
        click.echo("No identity provider is stored.", err=True)
    for item in idps.values():
        extra = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("user", item.username),
                ("browser", item.browser),
                ("proxy", item.proxy),
                ("proxy-pac", item.proxy_pac),
                ("integrated-auth", item.integrated_auth),
            )
            if v
        )
        click.echo(f"{item.nickname}\t{item.url}" + (f"\t{extra}" if extra else ""))


@idp.command("add")
@click.argument("nickname")
@click.argument("url")
@click.option("--username", help="Username at the IdP.")
def idp_add(nickname: str, url: str, username: str | None) -> None:
    """Add or update a stored identity provider (its IdP-initiated login URL)."""
    saved = Settings.from_env().save_idp(IdentityProvider(nickname, url, username))
    click.echo(f"Stored {saved.nickname}: {saved.url}")


@idp.command("remove")
@click.argument("nickname")
def idp_remove(nickname: str) -> None:
    """Forget a stored identity provider, its password and its browser profile."""
    removed = flow.forget_idp(Settings.from_env(), nickname)
    click.echo(f"Removed {removed.nickname}.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every failure to one sentence and an exit code."""
    # Nothing allocated so far needs collecting at exit; freezing it spares the interpreter
    # ~0.2 s of garbage collection over the imported libraries when it shuts down.
    atexit.register(gc.freeze)
    try:
        cli.main(args=argv, prog_name="awscli_saml_sso", standalone_mode=False)
    except click.exceptions.Abort as exc:
        error = _abort_error(exc)
        error.show()
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        Interrupted("interrupted by Ctrl-C").show()
        sys.exit(Interrupted.exit_code)
    except AssError as exc:
        log.debug("failed", exc_info=True)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (run with --log-level DEBUG "
            "for the details)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)
