"""Where a suite may read data: paths inside its own folder (or inside --data-dir), never URLs.

A shared suite must not read arbitrary files (keys, home folders) into prompts and reports: every
data path is resolved, symlinks included, and refused outside its root unless the user passes
--allow-outside-data. The --data-dir the user names is trusted as a root, wherever it points.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from vnllmtest.loaders.base import DataError, shown

ALLOW_FLAG = "--allow-outside-data"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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
    """The folder a suite's data paths must resolve inside; `folder` None: anywhere (the user allowed it)."""

    folder: Path | None
    name: str  # "the suite's folder" or "--data-dir"

    def check(self, path: Path, written: str | None = None) -> Path:
        """`path` resolved (symlinks followed), or a DataError saying where it leads and how to allow it.
        `written` is the path as the suite wrote it, when `path` came straight from the suite."""
        label = f"'{shown(written)}'" if written is not None else shown(path)
        try:
            resolved = path.resolve()
            resolved.lstat()
        except FileNotFoundError:
            pass  # not there yet: the caller says where it looked
        except ValueError:
            raise DataError(f"{label} holds a NUL character; it cannot be a path") from None
        except RuntimeError:
            raise DataError(f"{label} is a symlink loop") from None
        except OSError as exc:
            raise DataError(f"{label} cannot be used as a path ({exc.strerror})") from None
        if self.folder is not None and not resolved.is_relative_to(self.folder):
            raise DataError(
                f"{label} resolves to {shown(resolved)}, outside {self.name} {shown(self.folder)}; a suite reads "
                f"data only inside its own folder (dataset.source, dataset.sample) or inside --data-dir "
                f"(dataset.local). To read it anyway, pass {ALLOW_FLAG}"
            )
        return resolved


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
