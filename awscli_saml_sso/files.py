"""Safe local files: private directories, atomic writes and a cross-process lock.

Used by every module that stores something on disk (AWS credentials and config, settings,
caches), so that a crash, a full disk or two runs at once can never leave a half-written or
world-readable file behind. Every failure is raised as LocalFileError.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from awscli_saml_sso.errors import LocalFileError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: How long a replace blocked by another process (Windows) is retried before giving up.
REPLACE_RETRY = 2.0


def _why(error: OSError) -> str:
    """The operating system's reason for a failure, without repeating the path."""
    return error.strerror or type(error).__name__


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and its missing parents (like mkdir -p) and return it.

    Directories created here get mode 0700 whatever the umask; an existing directory keeps
    its mode, since it may be shared on purpose (e.g. a home directory).

    Raises LocalFileError if a component exists but is not a directory, or cannot be created.
    """
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            # Another process may have created it between our check and mkdir: that is fine
            # as long as it is a directory now.
            if not directory.is_dir():
                raise LocalFileError(
                    f"Cannot create the directory {directory}: a file of that name is in the way."
                ) from None
            continue
        except OSError as error:
            raise LocalFileError(
                f"Cannot create the directory {directory}: {_why(error)}."
            ) from None
        try:
            # mkdir's mode is filtered by the umask; chmod makes it exactly 0700.
            directory.chmod(PRIVATE_DIR_MODE)
        except OSError as error:
            raise LocalFileError(
                f"Cannot make the directory {directory} private: {_why(error)}."
            ) from None
    return path


def owned_by_someone_else(info: os.stat_result) -> bool:
    """Whether a file belongs to another user (never on Windows, which has no POSIX owners)."""
    getuid = getattr(os, "getuid", None)
    return getuid is not None and info.st_uid != getuid()


def make_private(path: Path, mode: int, *, what: str, foreign_ok: bool = False) -> str | None:
    """Keep an existing file or directory of ours no more open than `mode` (0600 / 0700).

    Returns a sentence to show when its mode was tightened, None when nothing was needed
    (or `path` does not exist). Raises LocalFileError when `path` belongs to another user:
    someone else could read or replace what we keep there, and it is not ours to change.
    With `foreign_ok`, another user's file is left alone instead (it is theirs to fix).
    On Windows (no POSIX modes or owners) nothing is checked.
    """
    if not hasattr(os, "getuid"):
        return None
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LocalFileError(f"Cannot check {what} {path}: {_why(error)}.") from None
    if owned_by_someone_else(info):
        if foreign_ok:
            return None
        raise LocalFileError(
            f"{what[:1].upper()}{what[1:]} {path} belongs to another user (uid {info.st_uid}), "
            "who could read or change what is kept there; use a directory of your own "
            "(ASS_CONFIG_DIR) or fix its owner."
        )
    current = stat.S_IMODE(info.st_mode)
    if not current & ~mode & 0o077:
        return None
    try:
        Path(path).chmod(current & mode)
    except OSError as error:
        raise LocalFileError(f"Cannot make {what} {path} private: {_why(error)}.") from None
    return (
        f"{what[:1].upper()}{what[1:]} {path} was open to other users (mode {current:04o}); "
        f"it is now {current & mode:04o}."
    )


def resolve_target(path: Path) -> Path:
    """The file that writing to `path` should change: symlinks followed, even dangling ones.

    Raises LocalFileError on a symlink loop.
    """
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:
        # Python 3.11/3.12 report a symlink loop as RuntimeError, later versions as OSError.
        raise LocalFileError(f"Cannot follow the symbolic links of {path}: {error}.") from None


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # Some filesystems refuse fsync on a directory; the rename itself has happened.
        pass
    finally:
        os.close(fd)


def _restrict(fd: int, existing: os.stat_result | None, mode: int) -> None:
    """Give the new file `mode`, or the mode and owner of the file it replaces.

    Windows has no POSIX modes (os.fchmod exists there only from Python 3.13, and only
    toggles read-only) nor owners to copy: a file there is private through the ACL it
    inherits from its folder, and folders under the user's profile (%USERPROFILE%, where
    ~/.aws and our config directory live) grant access to that user, SYSTEM and the
    administrators only.
    """
    if sys.platform == "win32":
        return
    if existing is None:
        # fchmod, unlike open's mode, is not filtered by the umask.
        os.fchmod(fd, mode)
        return
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    if (existing.st_uid, existing.st_gid) != (os.getuid(), os.getgid()):
        # Only root may give a file away; anyone else keeps the file as theirs.
        with contextlib.suppress(PermissionError):
            os.fchown(fd, existing.st_uid, existing.st_gid)


def _replace(temp: Path, target: Path) -> None:
    """Rename `temp` over `target`, retrying for a short while on PermissionError.

    On Windows the rename fails while another process holds the target open (the AWS CLI
    reading it, an editor, an antivirus scan); that lasts a moment, so try again briefly.
    Raises LocalFileError with a sentence if it does not clear up.
    """
    deadline = time.monotonic() + REPLACE_RETRY
    while True:
        try:
            temp.replace(target)
            return
        except PermissionError as error:
            if time.monotonic() >= deadline:
                raise LocalFileError(
                    f"Cannot replace {target}: {_why(error)} for {REPLACE_RETRY:g} s; another "
                    "program (an editor, the AWS CLI, an antivirus scan) may hold it open. "
                    "Close it and try again."
                ) from None
            time.sleep(0.05)


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace the contents of `path` with `data` so that readers see the old or the new file.

    Symlinks are followed and the target is written (the link stays a link). The data goes
    to a temporary file in the target's directory, which is fsynced and renamed over the
    target; the directory is then fsynced. A new file gets `mode`; an existing file keeps
    its mode, and its owner where we are allowed to set it. Missing directories are
    created private (0700). The temporary file is removed on any failure.

    Raises LocalFileError if the file cannot be written; the old file is then unchanged.
    """
    target = resolve_target(path)
    directory = ensure_private_dir(target.parent)
    try:
        existing: os.stat_result | None = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise LocalFileError(f"Cannot write {target}: {_why(error)}.") from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise LocalFileError(f"Cannot write {target}: it is not a regular file.")

    # tempfile costs a few ms to import; read-only runs never need it.
    import tempfile

    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise LocalFileError(f"Cannot write {target}: {_why(error)}.") from None
    temp = Path(temp_name)
    try:
        try:
            _restrict(fd, existing, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _replace(temp, target)
    except BaseException as error:
        # Also on KeyboardInterrupt: never leave a stray temporary file next to the target.
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(error, LocalFileError):
            raise
        if isinstance(error, OSError):
            raise LocalFileError(f"Cannot write {target}: {_why(error)}.") from None
        raise
    _fsync_dir(directory)


def lock_path_for(path: Path) -> Path:
    """The lock file that guards `path`: a sibling of the real file named `<name>.lock`."""
    target = resolve_target(path)
    return target.with_name(f"{target.name}.lock")


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold a cross-process lock on `path` for the duration of the block.

    The lock is an OS lock (flock) on a sibling file `<target>.lock`, created lazily with
    mode 0600 and left in place (removing it would race with the next holder). The lock
    follows symlinks, so every name for the same file shares one lock. It is released when
    the block ends or the process dies.

    Raises LocalFileError if the lock is still held by someone else after `timeout` seconds,
    or if the lock file cannot be created.
    """
    # filelock is only needed by writers; keep it off the import path of read-only runs.
    import filelock

    lock_file = lock_path_for(path)
    ensure_private_dir(lock_file.parent)
    lock = filelock.FileLock(lock_file, timeout=timeout, mode=PRIVATE_FILE_MODE)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LocalFileError(
            f"{resolve_target(path)} stayed locked by another process for {timeout:g} s "
            f"(lock file {lock_file}); another awscli_saml_sso is probably still signing in: "
            "wait for it to finish, or stop it, and try again."
        ) from None
    except OSError as error:
        raise LocalFileError(f"Cannot create the lock file {lock_file}: {_why(error)}.") from None
    try:
        yield
    finally:
        lock.release()


def remove_file(path: Path, *, retry: float = REPLACE_RETRY) -> None:
    """Remove the file (or link) `path` (nothing to do if it is missing), retrying for
    `retry` seconds while another process holds it (Windows). Raises LocalFileError."""
    deadline = time.monotonic() + retry
    while True:
        try:
            path.unlink(missing_ok=True)
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise LocalFileError(
                    f"Cannot remove {path} ({_why(error)}). Close the program still using it "
                    "(a browser?) and remove it by hand."
                ) from None
        time.sleep(0.05)


def remove_tree(path: Path, *, retry: float = REPLACE_RETRY) -> None:
    """Remove the directory `path` and all it holds (nothing to do if it is missing).

    On Windows a file a process still holds open (a browser that is just closing) cannot be
    deleted yet: try again for `retry` seconds. Raises LocalFileError saying what is left.
    """
    # shutil is only needed by the few runs that remove something.
    import shutil

    deadline = time.monotonic() + retry
    while True:
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            if not path.exists():
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                left = [
                    Path(top, name) for top, dirs, files in os.walk(path) for name in dirs + files
                ]
                example = next((p for p in left if p.is_file()), left[0] if left else path)
                raise LocalFileError(
                    f"Cannot remove {path}: {len(left)} file(s) are still in it, e.g. {example} "
                    f"({_why(error)}). Close the program still using them (a browser?) and "
                    "remove the folder by hand."
                ) from None
        time.sleep(0.05)
