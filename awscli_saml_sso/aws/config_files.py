"""The last step of a login: store temporary credentials in the shared AWS files.

The AWS credentials and config files belong to the user: everything we do not own (other
profiles, comments, blank lines, key case, spacing, order, line endings, a missing final
newline) must survive byte for byte. configparser would drop comments and lowercase keys,
and ConfigUpdater took 0.7 s to update one profile among 5,000, wrote LF lines into CRLF
files, added a final newline and accepted keys botocore rejects as duplicates. So this module
holds a small line-based editor that reads exactly the syntax botocore reads (configparser's
RawConfigParser rules plus botocore's nested values) and only rewrites the lines it owns;
parser and editor share one line model, which is why they live together in this module.

Writes are one locked read-modify-write per call, atomic on disk (see files.py), and the new
text is parsed again before it is written: we never write a file the AWS CLI cannot read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from awscli_saml_sso.aws.validity import EXPIRES_KEY, ROLE_KEY
from awscli_saml_sso.errors import LocalFileError, StsError, UsageError
from awscli_saml_sso.files import atomic_write, locked, resolve_target
from awscli_saml_sso.timestamps import format_timestamp

#: Not typing.TYPE_CHECKING: the quick "still valid" path (main) reads profiles with this
#: module and imports neither typing nor the model at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from awscli_saml_sso.model import Keys


# configparser's section name for defaults; its keys leak into every profile.
_DEFAULT_SECTION = "DEFAULT"


def profile_values(keys: Keys) -> dict[str, str]:
    """The keys and values of a credentials-file profile, in the order we write them."""
    return {
        "aws_access_key_id": keys.access_key_id,
        "aws_secret_access_key": keys.secret_access_key,
        "aws_session_token": keys.session_token,
        # Older SDKs (boto2, some Java/Go tools) still read only the security token.
        "aws_security_token": keys.session_token,
        EXPIRES_KEY: format_timestamp(keys.expiration),
        "x_principal_arn": keys.principal_arn,
        ROLE_KEY: keys.role_arn,
    }


def credentials_file(env: Mapping[str, str] | None = None) -> Path:
    """AWS_SHARED_CREDENTIALS_FILE (with ~ expanded), else ~/.aws/credentials."""
    env = os.environ if env is None else env
    return Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials").expanduser()


def config_file(env: Mapping[str, str] | None = None) -> Path:
    """AWS_CONFIG_FILE (with ~ expanded), else ~/.aws/config."""
    env = os.environ if env is None else env
    return Path(env.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()


# Validation of what we write ------------------------------------------------------------------
def validate_profile_name(name: str) -> str:
    """Return `name` if it can be a section name in the AWS files. Raises UsageError."""
    if (
        not name
        or name != name.strip()
        or "]" in name
        or not name.isprintable()
        or name == _DEFAULT_SECTION
    ):
        raise UsageError(
            f"{name!r} cannot be an AWS profile name: use printable characters without ']' "
            "and without leading or trailing spaces (and not 'DEFAULT')."
        )
    return name


def _writable_value(value: str) -> bool:
    # configparser strips values and splits lines; anything it would alter cannot round-trip.
    return bool(value) and value == value.strip() and value.isprintable()


# A key configparser reads back unchanged, that cannot be taken for a comment or a header.
_WRITABLE_KEY_RE = re.compile(r"[^\s=:#;\[][^\s=:]*")


# Parsing: configparser's RawConfigParser grammar, kept with line positions --------------------
_SECTION_RE = re.compile(r"\[(?P<header>.+)\]")
_EOL_RE = re.compile(r"(\r\n|\r|\n)")


class _Section:
    """Where a section is: its header line, its keys' lines, its last line of content."""

    __slots__ = ("header", "last_key_line", "last_line", "name", "options")

    def __init__(self, name: str, header: int) -> None:
        self.name = name
        self.header = header
        self.last_line = header  # last header, key or continuation line of the section
        self.last_key_line = header  # last header or key line (continuations excluded)
        self.options: dict[str, int] = {}  # lowercased key -> index of its line


class _Document:
    """A parsed AWS file (a plain class: no dataclasses import on the quick path)."""

    __slots__ = ("continued", "defaults", "eols", "lines", "sections")

    def __init__(
        self,
        lines: list[str],
        eols: list[str],
        sections: dict[str, _Section],
        defaults: dict[str, int],
        continued: dict[int, int],
    ) -> None:
        self.lines = lines  # line contents, without line endings
        self.eols = eols  # line ending of each line ('' for a last line without one)
        self.sections = sections
        self.defaults = defaults  # keys of [DEFAULT], which botocore adds to every profile
        self.continued = continued  # key line -> its last continuation line (multi-line values)

    @property
    def eol(self) -> str:
        """The line ending to use for lines we add: the file's first one, else LF."""
        return next((eol for eol in self.eols if eol), "\n")


class _ParseError(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def _split_lines(text: str) -> tuple[list[str], list[str]]:
    # Universal newlines, as Python's text files (and so botocore) see them; str.splitlines
    # would also split on \f, \v, \x1c-\x1e, \x85 and \u2028, which configparser does not.
    if not text:
        return [], []
    returns, newlines = text.count("\r"), text.count("\n")
    single = "\n" if not returns else "\r" if not newlines else None
    if single is None and returns == newlines == text.count("\r\n"):
        single = "\r\n"
    if single is not None:
        # One kind of line ending (the usual case): str.split is five times faster than re.
        lines = text.split(single)
        eols = [single] * len(lines)
    else:
        pieces = _EOL_RE.split(text)
        lines = pieces[0::2]
        eols = pieces[1::2]
        eols.append("")
    if lines[-1] == "":
        lines.pop()
        eols.pop()
    else:
        eols[-1] = ""
    return lines, eols


def _delimiter(stripped: str) -> int:
    """Index of the first '=' or ':' (configparser's option/value split), -1 if none."""
    equals = stripped.find("=")
    colon = stripped.find(":", 0, equals if equals >= 0 else len(stripped))
    return colon if colon >= 0 else equals


def _parse(text: str) -> _Document:
    """Parse INI text as botocore does, and as strictly. Raises _ParseError.

    This follows configparser.RawConfigParser._read line by line (comments, blank lines,
    continuation lines indented deeper than their key, strict duplicates) without its
    per-line overhead, since the still-valid check parses the file on every run.
    """
    lines, eols = _split_lines(text)
    sections: dict[str, _Section] = {}
    defaults: dict[str, int] = {}
    continued: dict[int, int] = {}
    section: _Section | None = None
    options: dict[str, int] | None = None  # where the current section's keys go
    key_line = -1  # line of the key that deeper-indented lines continue, -1 after a header
    indent_level = 0
    for index, line in enumerate(lines):
        first = line[:1]
        if "!" <= first <= "~" and first not in "#;[":
            # Fast path for the usual `key = value` line at column 0 (no continuation possible):
            # the general path below gives the same result, only slower.
            delimiter = line.find("=")
            colon = line.find(":", 0, delimiter if delimiter >= 0 else len(line))
            if colon >= 0:
                delimiter = colon
            if delimiter > 0 and options is not None:
                key = line[:delimiter].rstrip().lower()
                if key not in options:
                    options[key] = key_line = index
                    indent_level = 0
                    if section is not None:
                        section.last_line = section.last_key_line = index
                    continue
        stripped = line.strip()
        if not stripped:
            continue  # blank lines neither end nor start anything
        first = stripped[0]
        if first in "#;":
            continue
        indent = 0 if line[0] == first else len(line) - len(line.lstrip())
        if indent > indent_level and key_line >= 0:
            continued[key_line] = index
            if section is not None:
                section.last_line = index
            continue
        indent_level = indent
        if first == "[" and (match := _SECTION_RE.match(stripped)):
            name = match.group("header")
            key_line = -1
            if name == _DEFAULT_SECTION:
                section, options = None, defaults
            elif name in sections:
                first_at = sections[name].header + 1
                raise _ParseError(index + 1, f"[{name}] appears again (first at line {first_at})")
            else:
                section = sections[name] = _Section(name, index)
                options = section.options
            continue
        if options is None:
            raise _ParseError(index + 1, "a key or text before the first [section] header")
        delimiter = _delimiter(stripped)
        key = stripped[:delimiter].rstrip().lower() if delimiter > 0 else ""
        if not key:
            raise _ParseError(index + 1, "not a 'key = value' line, a [section] or a comment")
        if key in options:
            first_at = options[key] + 1
            raise _ParseError(index + 1, f"the key {key} appears again (first at line {first_at})")
        options[key] = key_line = index
        if section is not None:
            section.last_line = section.last_key_line = index
    document = _Document(lines, eols, sections, defaults, continued)
    for line_index in continued:
        _check_nested(document, line_index)
    return document


def _value_parts(document: _Document, key_line: int) -> list[tuple[int, str]]:
    """(line index, text) of a value's first line and of its continuation lines."""
    stripped = document.lines[key_line].strip()
    parts = [(key_line, stripped[_delimiter(stripped) + 1 :].lstrip())]
    for index in range(key_line + 1, document.continued.get(key_line, key_line) + 1):
        text = document.lines[index].strip()
        if not text or text[0] not in "#;":
            parts.append((index, text))
    return parts


def _value(document: _Document, key_line: int) -> str:
    """The value botocore reads for the key on `key_line` (continuations joined by newlines)."""
    if key_line not in document.continued:
        stripped = document.lines[key_line].strip()
        return stripped[_delimiter(stripped) + 1 :].lstrip()
    return "\n".join(text for _, text in _value_parts(document, key_line)).rstrip()


def _check_nested(document: _Document, key_line: int) -> None:
    # botocore reads a value that starts on the next line as `key = value` pairs (e.g. the
    # s3 settings) and refuses the whole file if one of those lines has no '='.
    parts = _value_parts(document, key_line)
    if parts[0][1]:
        return
    for index, text in parts[1:]:
        # botocore splits the value with str.splitlines, which also breaks at \f, \v, \x85...
        if any(piece.strip() and "=" not in piece for piece in text.splitlines()):
            raise _ParseError(index + 1, "a nested setting without '=' (botocore refuses it)")


def _decode(path: Path, data: bytes) -> str:
    """Bytes of an AWS file as text. Raises LocalFileError naming the line."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise LocalFileError(
            f"{path} line 1: the file starts with a byte order mark, which the AWS CLI cannot "
            "read; save it as UTF-8 without BOM. Nothing was changed."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = len(_EOL_RE.findall(data[: error.start].decode("utf-8", "replace"))) + 1
        raise LocalFileError(
            f"{path} line {line}: not UTF-8 text (is it a binary file?); fix or move the "
            "file and try again. Nothing was changed."
        ) from None
    if "\x00" in text:
        line = len(_EOL_RE.findall(text[: text.index("\x00")])) + 1
        raise LocalFileError(
            f"{path} line {line}: the file holds NUL bytes (is it a binary file?); fix or move "
            "the file and try again. Nothing was changed."
        )
    return text


def _load(path: Path) -> tuple[str, _Document] | None:
    """Read and parse an AWS file; None if it does not exist. Raises LocalFileError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LocalFileError(
            f"Cannot read {path}: {error.strerror or type(error).__name__}."
        ) from None
    text = _decode(path, data)
    try:
        return text, _parse(text)
    except _ParseError as error:
        raise LocalFileError(
            f"{path} line {error.line}: {error.problem}; the AWS CLI cannot read this file "
            "either. Fix it by hand and try again. Nothing was changed."
        ) from None


def read_profile(path: Path, profile: str) -> Mapping[str, str] | None:
    """The keys (lowercased) and values of `profile` in an AWS file, including [DEFAULT] ones.

    Read-only and fast enough for the "still valid?" check before every run. Returns None if
    the file or the profile does not exist. Raises LocalFileError if the file is unreadable
    or corrupt.
    """
    loaded = _load(Path(path))
    if loaded is None:
        return None
    document = loaded[1]
    section = document.sections.get(profile)
    if section is None:
        return None
    values = {key: _value(document, line) for key, line in document.defaults.items()}
    values.update((key, _value(document, line)) for key, line in section.options.items())
    return values


# Editing ---------------------------------------------------------------------------------------
def _set_value(document: _Document, key_line: int, value: str) -> None:
    """Replace the value on `key_line`, keeping the key, its case and the spacing around it."""
    lines = document.lines
    line = lines[key_line]
    lead = len(line) - len(line.lstrip())
    stripped = line.strip()
    delimiter = lead + _delimiter(stripped)
    rest = line[delimiter + 1 : lead + len(stripped)]
    start = delimiter + 1 + len(rest) - len(rest.lstrip())
    if not rest.strip() and line[delimiter - 1 : delimiter].isspace():
        value = " " + value  # `key =` had no value: mirror the space before the '='
    lines[key_line] = line[:start] + value + line[lead + len(stripped) :]
    for index, text in _value_parts(document, key_line)[1:]:
        if text:
            # A continuation line would otherwise become part of the new value.
            lines[index] = document.eols[index] = ""
    document.continued.pop(key_line, None)


def _indent_for_new_keys(document: _Document, section: _Section) -> str:
    line = document.lines[section.last_key_line]
    indent = line[: len(line) - len(line.lstrip())]
    if not section.options:
        # With no key yet, a deeper-indented next header was no continuation; after our key
        # it would be one, unless our keys are indented at least as deep.
        for line in document.lines[section.last_line + 1 :]:
            stripped = line.strip()
            if stripped and stripped[0] not in "#;":
                deeper = line[: len(line) - len(line.lstrip())]
                return deeper if len(deeper) > len(indent) else indent
    return indent


def _update_section(document: _Document, section: _Section, values: Mapping[str, str]) -> None:
    """Set `values` in an existing section: in place where the key exists, else at its end."""
    indent = _indent_for_new_keys(document, section)
    anchor = section.last_line
    missing: list[str] = []
    for key, value in values.items():
        key_line = section.options.get(key.lower())
        if key_line is None:
            missing.append(f"{indent}{key} = {value}")
        else:
            _set_value(document, key_line, value)
    if not missing:
        return
    lines, eols, eol = document.lines, document.eols, document.eol
    while not lines[anchor] and not eols[anchor]:
        anchor -= 1  # that line was a continuation we just removed
    lines[anchor] = lines[anchor] + (eols[anchor] or eol) + eol.join(missing)
    # A last line without a line ending stays without one.
    eols[anchor] = eol if eols[anchor] else ""


def _render(document: _Document, appended: list[tuple[str, Mapping[str, str]]]) -> str:
    """The edited text, with new sections appended after one blank line."""
    eol = document.eol
    merged = [""] * (2 * len(document.lines))
    merged[0::2] = document.lines
    merged[1::2] = document.eols
    body = "".join(merged)
    if not appended:
        return body
    block = eol.join(
        line
        for header, values in appended
        for line in ("", f"[{header}]", *(f"{k} = {v}" for k, v in values.items()))
    )
    if not body:
        return block.removeprefix(eol) + eol
    ends_with_eol = body.endswith(("\n", "\r"))
    content = body.removesuffix("\n").removesuffix("\r") if ends_with_eol else body
    last_line = content[max(content.rfind("\n"), content.rfind("\r")) + 1 :]
    if not last_line.strip():
        block = block.removeprefix(eol)  # the file already ends with a blank line
    return body + ("" if ends_with_eol else eol) + block + (eol if ends_with_eol else "")


FindSection = Callable[[_Document, str], "_Section | None"]


def _find_credentials_section(document: _Document, header: str) -> _Section | None:
    return document.sections.get(header)


def _find_config_section(document: _Document, header: str) -> _Section | None:
    # botocore splits `[profile NAME]` with shlex, so `[profile  "NAME"]` is the same profile;
    # `[profile default]` stands for `[default]` when there is no `[default]`.
    section = document.sections.get(header)
    if section is not None:
        return section
    if header == "default":
        return document.sections.get("profile default")
    import shlex

    wanted = ["profile", header.removeprefix("profile ")]
    found = None
    for name, candidate in document.sections.items():
        if name.startswith("profile"):
            try:
                if shlex.split(name) == wanted:
                    found = candidate  # botocore keeps the last one
            except ValueError:
                continue
    return found


def _edit(path: Path, sections: Mapping[str, Mapping[str, str]], find: FindSection) -> None:
    """One locked, verified, atomic read-modify-write of some sections of an AWS file.

    Raises LocalFileError if the file is unreadable, corrupt, locked or cannot be written.
    """
    target = resolve_target(path)
    with locked(target):
        loaded = _load(target)
        text, document = loaded if loaded is not None else ("", _parse(""))
        appended: list[tuple[str, Mapping[str, str]]] = []
        for header, values in sections.items():
            section = find(document, header)
            if section is None:
                appended.append((header, values))
            else:
                _update_section(document, section, values)
        new_text = _render(document, appended)
        if text and not text.endswith(("\n", "\r")):
            # Removing a value's continuation lines at the very end must not add a newline.
            new_text = new_text.removesuffix("\n").removesuffix("\r")
        _verify(target, new_text, sections, find)
        if loaded is not None and new_text == text:
            return
        atomic_write(target, new_text.encode("utf-8"))


def _verify(
    path: Path, text: str, sections: Mapping[str, Mapping[str, str]], find: FindSection
) -> None:
    # The edit is built to be right; this proof costs one parse and guards the user's file.
    try:
        document = _parse(text)
    except _ParseError as error:
        raise LocalFileError(
            f"Refusing to write {path}: the result would not parse ({error}); please report "
            "this bug. Nothing was changed."
        ) from None
    for header, values in sections.items():
        section = find(document, header)
        written = {} if section is None else section.options
        for key, value in values.items():
            key_line = written.get(key.lower())
            if key_line is None or _value(document, key_line) != value:
                raise LocalFileError(
                    f"Refusing to write {path}: [{header}] would not read back as written; "
                    "please report this bug. Nothing was changed."
                )


def write_credentials(
    path: Path, profiles: Mapping[str, Keys], *, extra: Mapping[str, str] | None = None
) -> None:
    """Store each profile's credentials in the AWS credentials file, in one locked write.

    `extra` values (e.g. where the keys came from) are written after the keys in each profile;
    one that cannot be stored unchanged is left out.

    Existing profiles keep their other keys, comments and layout; our keys are replaced in
    place or appended at the end of the section; new profiles are appended at the end of the
    file. Raises UsageError for an invalid profile name, StsError for a credential value that
    cannot be stored, LocalFileError for an unreadable, corrupt, locked or unwritable file.
    """
    sections: dict[str, dict[str, str]] = {}
    for name, credentials in profiles.items():
        values = profile_values(credentials)
        values.update({k: v for k, v in (extra or {}).items() if _writable_value(v)})
        for key, value in values.items():
            if not _writable_value(value):
                # Never show the value: it may be the secret key or the token.
                raise StsError(
                    f"STS returned a {key} for profile {name} that cannot be stored "
                    "(empty, or with spaces or line breaks around it)."
                )
        sections[validate_profile_name(name)] = values
    if sections:
        _edit(Path(path), sections, _find_credentials_section)


def check_config_settings(profile: str, settings: Mapping[str, str]) -> None:
    """Raise UsageError unless `settings` of `profile` can be stored in the AWS config file."""
    validate_profile_name(profile)
    if any(char.isspace() or char in "'\"\\" for char in profile):
        # botocore splits `[profile NAME]` with shlex: such a name would not be found.
        raise UsageError(
            f"{profile!r} cannot be a profile name in the AWS config file: "
            "use no spaces, quotes or backslashes."
        )
    for key, value in settings.items():
        if not _WRITABLE_KEY_RE.fullmatch(key):
            raise UsageError(f"{key!r} cannot be a key in the AWS config file.")
        if not _writable_value(value):
            raise UsageError(
                f"The {key} value {value!r} cannot be stored in the AWS config file: "
                "it must be one line, not empty, without spaces around it."
            )


def write_config(path: Path, profile: str, settings: Mapping[str, str]) -> None:
    """Set `settings` (e.g. region, output) of `profile` in the AWS config file.

    The section is `[profile NAME]`, or `[default]`; only the given keys change, everything
    else stays byte for byte. Raises UsageError for an invalid profile name, key or value,
    LocalFileError for an unreadable, corrupt, locked or unwritable file.
    """
    write_configs(path, {profile: settings})


def write_configs(path: Path, profiles: Mapping[str, Mapping[str, str]]) -> None:
    """`write_config` for several profiles in one locked update (for --all-roles)."""
    for profile, settings in profiles.items():
        check_config_settings(profile, settings)
    sections = {
        (name if name == "default" else f"profile {name}"): dict(settings)
        for name, settings in profiles.items()
        if settings
    }
    if sections:
        _edit(Path(path), sections, _find_config_section)


def aws_ca_bundle(env: Mapping[str, str], profile: str) -> str | None:
    """The CA bundle the AWS CLI would verify STS with: `AWS_CA_BUNDLE`, else `ca_bundle` in
    the profile's section of the config file; None for botocore's own. Raises LocalFileError
    when the config file is corrupt.
    """
    named = (env.get("AWS_CA_BUNDLE") or "").strip()
    if named:
        return named
    loaded = _load(config_file(env))
    if loaded is None:
        return None
    document = loaded[1]
    section = _find_config_section(
        document, "default" if profile == "default" else f"profile {profile}"
    )
    line = section.options.get("ca_bundle") if section is not None else None
    value = _value(document, line).strip() if line is not None else ""
    return str(Path(value).expanduser()) if value else None
