"""Text from outside (IdP pages, their errors) made safe for the person's terminal.

A page can put escape sequences in its error text: on a terminal they retitle the window,
clear the screen or fake a prompt. Everything the tool shows goes through `printable`
(the CLI's `Ui` and the error printer call it), so no caller has to remember.

The bottom of the layout: it imports nothing from the project.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC strings up to their
# terminator (BEL or ESC \), and the two-byte escapes; the 8-bit C1 forms of CSI and OSC too.
_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]                     # CSI
    | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]                                      # other escapes (ESC c resets)
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates
# (they reorder what follows, e.g. to show a different URL than the one meant).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without terminal escape sequences, control characters or bidi overrides.

    Tabs and newlines stay; every other control character is dropped.
    """
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
