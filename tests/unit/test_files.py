"""Safe-file primitives on real files: private directories, atomic writes, the process lock."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from awscli_saml_sso.errors import LocalFileError
from awscli_saml_sso.files import (
    atomic_write,
    ensure_private_dir,
    lock_path_for,
    locked,
    remove_tree,
)

# fork keeps the children cheap; every child is still a real, separate process.
FORK = multiprocessing.get_context("fork")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ensure_private_dir ----------------------------------------------------------------------------
def test_new_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        target = ensure_private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert target == tmp_path / "a" / "b" / "c"
    for directory in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert directory.is_dir()
        assert mode_of(directory) == 0o700


def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    ensure_private_dir(shared / "private")
    assert mode_of(shared) == 0o755
    assert mode_of(shared / "private") == 0o700
    assert ensure_private_dir(shared) == shared
    assert mode_of(shared) == 0o755


def test_a_file_in_the_way_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LocalFileError, match="file"):
        ensure_private_dir(tmp_path / "file" / "sub")


# atomic_write ----------------------------------------------------------------------------------
def test_new_file_gets_the_given_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        atomic_write(tmp_path / "new" / "file", b"data")
        atomic_write(tmp_path / "other", b"data", mode=0o640)
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "file").read_bytes() == b"data"
    assert mode_of(tmp_path / "new" / "file") == 0o600
    assert mode_of(tmp_path / "new") == 0o700
    assert mode_of(tmp_path / "other") == 0o640


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    target.chmod(0o644)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert mode_of(target) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can own a file for someone else")
def test_existing_file_keeps_its_owner_when_root_writes_it(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    os.chown(target, 12345, 23456)
    atomic_write(target, b"new")
    assert (target.stat().st_uid, target.stat().st_gid) == (12345, 23456)


def test_symlink_is_written_at_its_target_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real" / "credentials"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "link"
    link.symlink_to(real)
    atomic_write(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"
    assert mode_of(real) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["credentials"]


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere" / "file")
    atomic_write(link, b"data")
    assert link.is_symlink()
    assert (tmp_path / "elsewhere" / "file").read_bytes() == b"data"
    assert mode_of(tmp_path / "elsewhere" / "file") == 0o600


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(LocalFileError, match="symbolic links"):
        atomic_write(tmp_path / "a", b"data")


def test_a_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(LocalFileError, match="not a regular file"):
        atomic_write(tmp_path / "dir", b"data")
    assert list(tmp_path.iterdir()) == [tmp_path / "dir"]


def _write_with_a_size_limit(target: str) -> None:
    # The kernel refuses writes past RLIMIT_FSIZE with EFBIG: a real full-disk-like failure.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    try:
        atomic_write(Path(target), b"x" * 100_000)
    except LocalFileError as error:
        os._exit(7 if "Cannot write" in str(error) else 1)
    os._exit(0)


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "credentials"
    target.write_bytes(b"old content")
    before = target.stat()
    child = FORK.Process(target=_write_with_a_size_limit, args=(str(target),))
    child.start()
    child.join(30)
    assert child.exitcode == 7
    assert target.read_bytes() == b"old content"
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]


# locked ----------------------------------------------------------------------------------------
def _hold_lock(path: str, ready: object, release: object) -> None:
    with locked(Path(path)):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_lock_file_is_a_private_sibling_of_the_real_file(tmp_path: Path, umask_022: None) -> None:
    real = tmp_path / "aws" / "credentials"
    link = tmp_path / "link"
    link.symlink_to(real)
    assert lock_path_for(link) == tmp_path / "aws" / "credentials.lock"
    with locked(link):
        assert mode_of(tmp_path / "aws" / "credentials.lock") == 0o600
        assert mode_of(tmp_path / "aws") == 0o700
    # Released: it can be taken again at once.
    with locked(real, timeout=0):
        pass


def test_lock_held_by_another_process_times_out_with_advice(tmp_path: Path) -> None:
    target = tmp_path / "credentials"
    ready, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_lock, args=(str(target), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LocalFileError) as caught, locked(target, timeout=0.2):
            pytest.fail("the lock was taken twice")
        message = str(caught.value)
        assert "locked by another process" in message
        assert str(tmp_path / "credentials.lock") in message
        assert "wait for it to finish" in message
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with locked(target, timeout=5):
        pass


def test_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "file"
    with pytest.raises(ZeroDivisionError), locked(target):
        _ = 1 / 0
    with locked(target, timeout=0):
        pass


# Files another process holds (Windows refuses to replace or delete them for a moment) ---------
@contextlib.contextmanager
def immutable(path: Path, release_after: float | None = None) -> Iterator[None]:
    """Make `path` immutable (chattr +i: even root cannot rename over or delete it), as a
    file another process holds open is on Windows; release it after `release_after` s."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    timer = None
    if release_after is not None:
        timer = threading.Timer(release_after, subprocess.run, (["chattr", "-i", str(path)],))
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.join()
        if path.exists():
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_replace_retries_while_the_target_is_held(tmp_path: Path) -> None:
    target = tmp_path / "credentials"
    target.write_text("old")
    with immutable(target, release_after=0.5):
        atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials"]


def test_replace_gives_up_with_a_sentence(tmp_path: Path) -> None:
    target = tmp_path / "credentials"
    target.write_text("old")
    with immutable(target), pytest.raises(LocalFileError, match=r"may hold it open") as err:
        atomic_write(target, b"new")
    assert f"Cannot replace {target}" in err.value.message
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials"]


def test_remove_tree_retries_then_removes(tmp_path: Path) -> None:
    profile = tmp_path / "browser" / "corp"
    (profile / "Default").mkdir(parents=True)
    held = profile / "Default" / "Cookies"
    held.write_text("x")
    with immutable(held, release_after=0.5):
        remove_tree(profile)
    assert not profile.exists()
    remove_tree(profile)  # nothing left to remove: no error


def test_remove_tree_says_what_is_left(tmp_path: Path) -> None:
    profile = tmp_path / "browser" / "corp"
    (profile / "Default").mkdir(parents=True)
    held = profile / "Default" / "Cookies"
    held.write_text("x")
    with immutable(held), pytest.raises(LocalFileError) as err:
        remove_tree(profile, retry=0.3)
    assert err.value.exit_code == 7
    assert err.value.message == (
        f"Cannot remove {profile}: 2 file(s) are still in it, e.g. {held} (Operation not "
        "permitted). Close the program still using them (a browser?) and remove the folder "
        "by hand."
    )
    assert held.exists()
