"""What vnllmtest knows of the Hugging Face hub before asking it anything: whether offline mode is on,
whether the endpoint can be reached at all (one quick connection, instead of the hub clients' retries),
and the commands that fetch a model or a dataset beforehand."""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vnllmtest.console import shown

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")  # the second, when set, decides for datasets
CONNECT_TIMEOUT = 3.0  # seconds; a hub that does not accept a connection in this time is taken as unreachable
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline_variable(repo_type: str = "model") -> str | None:
    """The variable that keeps the hub clients to their cache for this kind of repository, if one does: for
    datasets HF_DATASETS_OFFLINE when it is set (either way), else HF_HUB_OFFLINE, as the datasets library does."""
    name = "HF_DATASETS_OFFLINE" if repo_type == "dataset" and "HF_DATASETS_OFFLINE" in os.environ else "HF_HUB_OFFLINE"
    return name if os.environ.get(name, "").upper() in _TRUE else None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def unreachable() -> str | None:
    """Why the hub endpoint (through the configured proxy, if any) does not accept a connection; None
    when it does. One attempt per endpoint and proxy in a process, bounded by CONNECT_TIMEOUT plus the name
    lookup."""
    url = urllib.parse.urlsplit(endpoint())
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    proxy = None if urllib.request.proxy_bypass(host) else proxies.get(url.scheme) or proxies.get("all")
    if proxy:
        proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or 80
    return _connect(host, port)


@functools.lru_cache(maxsize=8)
def _connect(host: str, port: int) -> str | None:
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


def fetch_commands(repo_id: str, repo_type: str = "model") -> str:
    """The commands that download a hub repository into the local cache."""
    option = "" if repo_type == "model" else f" --repo-type {repo_type}"
    return f"`hf download {repo_id}{option}` (or `huggingface-cli download {repo_id}{option}`)"


def offline_fix(repo_id: str, repo_type: str = "model") -> str:
    """How to make a hub repository available without network, for an error message."""
    return (
        f"To fix: download it once where the hub can be reached, with {fetch_commands(repo_id, repo_type)}, "
        "then run with HF_HUB_OFFLINE=1 to use the cached copy"
    )


def fetch_model(repo_id: str, patterns: Sequence[str]) -> Path:
    """The local folder of a hub model: from the cache alone when offline mode is on or the hub cannot be
    reached (at once, without retries), else downloaded with its progress shown. LookupError, with the fix,
    when it is not available."""
    from huggingface_hub import snapshot_download

    offline = offline_variable()
    why = None if offline else unreachable()
    try:
        if offline or why:
            return Path(snapshot_download(repo_id, allow_patterns=list(patterns), local_files_only=True))
        with shown(f"fetching model {repo_id} from {endpoint()} (files already in the cache are not downloaded again)"):
            return Path(snapshot_download(repo_id, allow_patterns=list(patterns)))
    except Exception as exc:  # offline, unknown repo, gated repo...: all mean "not available"
        if offline or why:
            reason = f"{offline}=1 allows only the cache" if offline else f"{endpoint()} cannot be reached ({why})"
            raise LookupError(
                f"hub id '{repo_id}' could not be fetched: it is not in the local Hugging Face cache, and {reason}. "
                f"{offline_fix(repo_id)}; or pass a local checkpoint folder"
            ) from None
        raise LookupError(
            f"hub id '{repo_id}' could not be fetched ({type(exc).__name__}: {exc}). {offline_fix(repo_id)}; "
            "or pass a local checkpoint folder"
        ) from None
