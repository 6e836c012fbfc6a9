"""Reading a script into a libcst Module and writing a new version back without half-written files."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import libcst as cst

from mutator.errors import InputFileError, ScriptSyntaxError


def read_script(path: Path) -> str:
    """The script's text exactly as stored (CRLF and all), or a one-line InputFileError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a Python script") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\x00" in raw:
        raise InputFileError(f"{path}: binary file, not a Python script")
    try:
        # newline="" semantics: decode bytes directly so "\r\n" survives untouched.
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the script as UTF-8"
        ) from None


def parse_script(text: str, path: Path | str = "<script>") -> cst.Module:
    """Parse with libcst; a syntax error becomes `path:line:col: message`."""
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        location, message = _python_syntax_error(text) or (
            f"{exc.editor_line}:{exc.editor_column}",
            re.sub(
                r"^(parser error: )?(error at \d+:\d+: )?", "", str(exc.message).splitlines()[0]
            ),
        )
        raise ScriptSyntaxError(f"{path}:{location}: syntax error: {message}") from None


def _python_syntax_error(text: str) -> tuple[str, str] | None:
    """Python's own account of a syntax error: better positions and hints than libcst's."""
    try:
        compile(text, "<script>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return f"{exc.lineno}:{exc.offset or 1}", exc.msg
    except (ValueError, RecursionError):
        return None
    return None


def load_module(path: Path) -> tuple[str, cst.Module]:
    """Read and parse a script: the common first step of every command."""
    text = read_script(path)
    return text, parse_script(text, path)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never a part.

    The temp file lives in the same folder so `os.replace` is a rename on one file system; the
    original's permission bits are kept so an executable script stays executable.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    import tempfile  # here, not at the top: tempfile costs preview, which never writes, ~3 ms

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
