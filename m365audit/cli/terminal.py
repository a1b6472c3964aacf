"""Text made safe for a terminal and a log: escape sequences, control characters and bidi overrides removed."""

from __future__ import annotations

import logging
import re
import sys

ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?"          # CSI (colours, cursor moves, screen clears)
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])"         # OSC (links, clipboard, titles), DCS, SOS, PM, APC ...
    r"(?:[^\x07\x1b\x9c]*)(?:\x07|\x1b\\|\x9c)?"         # ... up to BEL or ST, or to the end when unterminated
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",                   # any other ESC sequence (charset switches, RIS, ...)
)
"""ECMA-48 sequences a terminal acts on, in their 7-bit (ESC) and 8-bit (C1) forms."""
LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 (tab and newline excepted), DEL, C1, and the bidi marks, embeddings, overrides and isolates (Trojan Source)."""
JSON_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str, multiline: bool = False) -> str:
    """Text a terminal shows as it is: no escape sequence, control character or bidi override survives.

    One line unless ``multiline``: a line break inside tenant data becomes a space, so a name cannot forge a
    second output line (a fake verdict). With ``multiline`` the text keeps its newlines (a traceback, JSON).
    """
    text = ESCAPE_SEQUENCE.sub("", text)
    text = LINE_BREAKS.sub("\n" if multiline else " ", text)
    return CONTROLS.sub("", text)


def json_safe(text: str) -> str:
    """JSON text with every character clean() would remove written as a \\uXXXX escape: the same data, inert.

    In valid JSON such characters can only stand inside strings, where the escape means exactly the character.
    """
    return JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class SafeFormatter(logging.Formatter):
    """Log records as one clean line each (a traceback keeps its lines, cleaned too)."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record), multiline=record.exc_info is not None or record.stack_info is not None)


class StderrHandler(logging.Handler):
    """Writes to the current sys.stderr (click's test runner replaces it), through SafeFormatter.

    Libraries' warnings (azure-identity logs every failed sign-in) are left out unless --debug: the error itself
    is shown once, as one line with its hint.
    """

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.setFormatter(SafeFormatter("m365audit: %(levelname)s: %(name)s: %(message)s"))
        self.debug = False

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "m365audit" or record.name.startswith("m365audit.")
        return (self.debug or ours or record.levelno >= logging.ERROR) and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never end a run
            self.handleError(record)


def install_log_handler(debug: bool = False) -> None:
    """Every log line of m365audit and its libraries (azure-identity, httpx …) goes through clean(); once."""
    root = logging.getLogger()
    if not any(isinstance(h, StderrHandler) for h in root.handlers):
        root.addHandler(StderrHandler())
    if debug:
        logging.getLogger("m365audit").setLevel(logging.DEBUG)
    for handler in root.handlers:
        if isinstance(handler, StderrHandler):
            handler.debug = debug
            handler.setLevel(logging.DEBUG if debug else logging.WARNING)
