"""Test-suite wiring: shared fixtures come from `support`, markers from each test's folder.

    unit/     pure code and the CLI in-process; no browser, no rig
    browser/  a real Chromium through the capture proxy (fake IdP pages, and the rig's Keycloak)
    e2e/      the installed command as a real process against the rig
    rig/      the rig itself, without product code

Helpers live in `support/`; tests import them from there, never from this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "keycloak"))

pytest_plugins = ("support.rig", "support.browsers", "support.sandbox", "support.corpnet")

# Folder -> markers its tests carry (a test file may add more, e.g. e2e sign-ins: browser).
_FOLDER_MARKERS = {"browser": ("browser",), "e2e": ("rig",), "rig": ("rig",), "unit": ()}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        for marker in _FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)
