"""Where a suite may read data: paths inside its own folder (or inside --data-dir), never URLs.

A shared suite must not read arbitrary files (keys, home folders) into prompts and reports: a path
under the suite's folder is resolved, symlinks included (a shared suite brings that folder), and refused
outside it unless the user passes --allow-outside-data. The --data-dir the user names is trusted, wherever
it points, and so are the links the user placed inside it (to a big disk, to the Hugging Face cache): a
path under it is confined as written (normalised: no `..` out of it, no absolute path elsewhere).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from vnllmtest.clipping import shown
from vnllmtest.loaders.base import DataError

ALLOW_FLAG = "--allow-outside-data"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_url(value: str, hub_allowed: bool) -> None:
    """A DataError when a suite's data path is a URL: runs read local files and (for dataset.source)
    hf:// datasets, and download nothing else."""
    if _URL.match(value) and not (hub_allowed and value.startswith("hf://")):
        raise DataError(
            f"'{shown(value)}' is a URL; vnllmtest downloads nothing during a run. Download the file, put it "
            f"in a folder you pass as --data-dir and name its path inside that folder in dataset.local, or use "
            f"dataset.source: hf://OWNER/NAME for a Hugging Face dataset"
        )


@dataclass(frozen=True)
class DataRoot:
    """The folder a suite's data paths must stay inside; `folder` None: anywhere (the user allowed it).
    `follow_links`: the user built the folder, so links inside it are followed and only the path as
    written is confined; otherwise every path is confined after resolving its links."""

    folder: Path | None
    name: str  # "the suite's folder" or "--data-dir"
    follow_links: bool = False

    def check(self, path: Path, written: str | None = None) -> Path:
        """`path` resolved (symlinks followed; normalised only, with `follow_links`), or a DataError saying
        where it leads and how to allow it. `written`: the path as the suite wrote it, when it came from there."""
        label = f"'{printable(written)}'" if written is not None else printable(path)
        if "\x00" in str(path):
            raise DataError(f"{label} holds a NUL character; it cannot be a path")
        try:
            target = Path(os.path.abspath(path)) if self.follow_links else path.resolve()
            os.stat(target)
        except FileNotFoundError:
            pass  # not there yet: the caller says where it looked
        except RuntimeError:
            raise DataError(f"{label} is a symlink loop") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DataError(f"{label} is a symlink loop") from None
            raise DataError(f"{label} cannot be used as a path ({exc.strerror})") from None
        if _SURROGATE.search(str(target)):  # bytes that are not UTF-8: no report could name the file
            where = label if label == printable(target) else f"{label} (leads to {printable(target)})"
            raise DataError(f"{where}: the name is not UTF-8 text, so reports cannot show it; rename it")
        if self.folder is not None and not target.is_relative_to(self.folder):
            raise DataError(
                f"{label} {'leads' if self.follow_links else 'resolves'} to {shown(target)}, outside {self.name} "
                f"{printable(self.folder)}; a suite reads data only inside its own folder (dataset.source, "
                f"dataset.sample) or inside --data-dir (dataset.local). To read it anyway, pass {ALLOW_FLAG}"
            )
        return target


def printable(path: object) -> str:
    """`path` for a message (`shown`), with bytes that are not UTF-8 written as `\\xff` escapes."""
    text = shown(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name holds (a suite's "\\ud800" escape)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def regular_file(path: Path) -> bool:
    """True for a regular file; False when nothing is there; a DataError for a FIFO, device or socket
    (opening a FIFO would wait for a writer for ever)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DataError(f"{shown(path)}: cannot be read ({exc.strerror})") from None
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode):
        return False
    raise DataError(f"{shown(path)} is not a regular file (a FIFO, device or socket); give a data file")
