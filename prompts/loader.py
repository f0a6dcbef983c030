"""Prompt templates as package files, loaded with their version and hash.

Contract:
- ``load_prompt(name)`` reads ``prompts/<name>.md`` from the installed package (``importlib.resources``).
  Each file starts with a front-matter line ``<!-- version: N -->``; ``Prompt.text`` is the template after
  that line, ``Prompt.version`` its value, and ``Prompt.sha256`` the hex sha256 of the whole file (front
  matter included, so a version bump changes the hash). Every decision records the name and hash.
- ``render(prompt, **values)`` substitutes ``$name`` placeholders with ``string.Template.safe_substitute``:
  unknown placeholders stay as written, and values are inserted verbatim, never re-parsed as templates.

Deliberate decisions:
- Names are restricted to ``[a-z0-9_]`` so a name can never walk out of the package directory.
- A missing front-matter line is an error: an unversioned prompt could not be traced in the results.
"""

from __future__ import annotations

import functools
import hashlib
import re
import stat
import string
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_FRONT_MATTER = re.compile(r"^<!--\s*version:\s*([^\s>]+)\s*-->[ \t]*\r?\n?")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str
    sha256: str


@functools.cache
def _package() -> Traversable:
    return resources.files("prompts")


# name -> (the file's stat signature, its Prompt): every node of every day loads two prompts, and a replay runs
# thousands of days; a file changed on disk (new mtime, size or inode) is read again, so edits still apply at once.
_LOADED: dict[str, tuple[tuple[int, int, int], Prompt]] = {}


def load_prompt(name: str) -> Prompt:
    """The template ``prompts/<name>.md`` with its version and hash; ``FileNotFoundError`` if absent."""
    if not _NAME.match(name):
        raise ValueError(f"bad prompt name {name!r}")
    resource = _package().joinpath(f"{name}.md")
    if isinstance(resource, Path):
        try:
            st = resource.stat()
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            cached = _LOADED.get(name)
            if cached is not None and cached[0] == signature:
                return cached[1]
            prompt = _read(name, resource)
            _LOADED[name] = (signature, prompt)
            return prompt
    return _read(name, resource)


def _read(name: str, resource: Traversable) -> Prompt:
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template named {name!r}")
    raw = resource.read_bytes()
    text = raw.decode("utf-8")
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError(f"prompt {name!r} lacks its '<!-- version: N -->' first line")
    return Prompt(name=name, version=match.group(1), text=text[match.end() :], sha256=hashlib.sha256(raw).hexdigest())


def render(prompt: Prompt, **values: object) -> str:
    """``prompt.text`` with ``$placeholders`` replaced by ``values`` (``str()`` of each)."""
    return string.Template(prompt.text).safe_substitute({k: str(v) for k, v in values.items()})
