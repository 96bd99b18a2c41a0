"""Hand-over: a headless sign-in that autofill cannot finish reopens in a visible window.

The CLI runs as a real process under Xvfb against a page of our own that asks a question
autofill does not answer ("Stay signed in?"); the person (xdotool) answers it in the window
that opens, and the assertion (a real one from the rig's Keycloak) is captured as usual.
"""

from __future__ import annotations

import configparser
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from support.browsers import xdotool
from support.fake_idp import PASSWORD, USERNAME
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left
from support.shaped_idp import ShapedIdP

pytestmark = [pytest.mark.rig, pytest.mark.browser]


@pytest.fixture
def idp(rig: Rig) -> Iterator[ShapedIdP]:
    with ShapedIdP(saml_response=rig.saml_response("aws_user")) as server:
        yield server


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    sandbox.env.update(ASS_ENDPOINT_URL=rig.endpoint_url, ASS_PASSWORD=PASSWORD)
    yield sandbox
    assert_nothing_left(sandbox)


def args(idp: ShapedIdP, *extra: str) -> list[str]:
    return [
        "--idp-nickname",
        "shaped",
        "--idp-url",
        idp.url("kmsi"),
        "--username",
        USERNAME,
        *extra,
    ]


def wait_for_window(display: str, title: str, tool: subprocess.Popen[str], seconds: float) -> str:
    """The id of the visible window whose title has ``title``, once it shows."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and tool.poll() is None:
        try:
            return xdotool(display, "search", "--onlyvisible", "--name", title).split()[0]
        except (subprocess.CalledProcessError, IndexError):
            time.sleep(0.5)  # not yet: the headless attempt is still settling
    _, err = tool.communicate(timeout=60) if tool.poll() is not None else ("", "still running")
    raise AssertionError(f"no window titled {title!r} appeared; the tool said: {err}")


def test_person_finishes_in_the_window_that_opens(
    user: Sandbox, rig: Rig, idp: ShapedIdP, xvfb: str
) -> None:
    tool = user.start(args(idp, "--no-prompt", "--timeout", "40"))  # handed over after 15 s
    try:
        window = wait_for_window(xvfb, "kmsi step 1", tool, 120)
        xdotool(xvfb, "windowfocus", "--sync", window)  # no window manager: focus directly
        time.sleep(1.0)  # let the page finish rendering
        xdotool(xvfb, "key", "Return")  # "Yes", the focused button, as a person would
        _, err = tool.communicate(timeout=120)
    finally:
        if tool.poll() is None:
            tool.send_signal(signal.SIGINT)
            tool.wait(30)
    assert tool.returncode == 0, err
    assert "Autofill cannot finish this sign-in" in err
    assert [form.get("stay") for form in idp.posted("kmsi") if "stay" in form] == ["yes"]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(user.credentials_file)
    assert parser["saml"]["x_role_arn"] == rig.role_user_arn


# With --timeout 10 a stuck page is handed over after 5 s (half the time limit): these two
# runs would hand over, were it allowed and possible.
def test_no_hand_over_fails_instead(user: Sandbox, idp: ShapedIdP, xvfb: str) -> None:
    result = user.run(args(idp, "--no-prompt", "--no-hand-over", "--timeout", "10"))
    assert result.returncode == 3, result.stderr
    assert "stuck on the page" in result.stderr
    assert "Autofill cannot finish" not in result.stderr


def test_no_display_no_hand_over(user: Sandbox, idp: ShapedIdP) -> None:
    user.env.pop("DISPLAY", None)
    user.env.pop("WAYLAND_DISPLAY", None)
    result = user.run(args(idp, "--no-prompt", "--timeout", "10"))
    assert result.returncode == 3, result.stderr
    assert "Autofill cannot finish" not in result.stderr
