"""Download datasets from their upstream addresses into the data directory.

Each file goes to ``<dest>.part`` first; an interrupted download resumes from there with an HTTP
``Range`` request; retries back off exponentially; the sha256 is checked against
:data:`~edgeadapt.data.sources.KNOWN_FILES` before the file is renamed into place, so a reader
never sees a partial or corrupted file. ``mirror`` (or ``$EDGEADAPT_DATA_MIRROR``) replaces the
upstream addresses with ``<mirror>/<path in the data directory>``: any folder laid out like
``shared/data`` served over HTTP is a mirror.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from edgeadapt.data.languages import normalize_lang
from edgeadapt.data.sources import AFRIQA_PIVOT, KNOWN_FILES, UPSTREAMS
from edgeadapt.data.specs import DATASETS, FLORES_SOURCE, resolve_data_dir
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import sha256_file

MIRROR_ENV = "EDGEADAPT_DATA_MIRROR"
CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: where from, where to (relative to the data directory), what it must hash to."""

    dataset: str
    url: str
    relative: str
    sha256: str | None
    size: int | None
    optional: bool = False  # a split that may not exist upstream for this language: a 404 is skipped


class _Missing(Exception):
    """The server says the file does not exist (HTTP 404)."""


def _upstream_lang(name: str, code: str) -> str | None:
    """``code`` in dataset ``name``'s naming, or None when upstream does not have that language."""
    upstream = UPSTREAMS[name]
    info = DATASETS.get(name)
    value = getattr(normalize_lang(code), info.naming if info else "iso1")
    if value is not None and upstream.upstream_langs and value not in upstream.upstream_langs:
        return None
    return value


def skipped_languages(names: list[str], langs: list[str] | None) -> list[str]:
    """One note per (dataset, language) asked for that upstream lacks; :func:`plan` leaves them out."""
    return [
        f"{name} has no language {code!r} upstream: skipped"
        for name in names
        if name in UPSTREAMS
        for code in langs or []
        if _upstream_lang(name, code) is None
    ]


def _languages(name: str, langs: list[str] | None) -> list[str]:
    upstream = UPSTREAMS[name]
    if not langs:
        return list(upstream.langs)
    mapped = [value for code in langs if (value := _upstream_lang(name, code)) is not None]
    if not mapped:
        choices = ", ".join(upstream.upstream_langs or upstream.langs)
        asked = ", ".join(repr(code) for code in langs)
        raise EdgeAdaptError(f"{name} has no language {asked} upstream; available: {choices}")
    if name == "flores200" and FLORES_SOURCE not in mapped:
        mapped.insert(0, FLORES_SOURCE)  # the English side every FLORES pair needs
    return list(dict.fromkeys(mapped))


def plan(names: list[str], langs: list[str] | None = None, mirror: str | None = None) -> list[RemoteFile]:
    """The files ``names`` (datasets) in ``langs`` (any codes; default: the project's set) consist of.

    A language that one of several datasets lacks upstream is left out for that dataset (see
    :func:`skipped_languages`); a dataset left with no language at all is an error.
    """
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    files: list[RemoteFile] = []
    for name in names:
        if name not in UPSTREAMS:
            raise EdgeAdaptError(f"unknown dataset {name!r}; can fetch: {', '.join(UPSTREAMS)}")
        upstream = UPSTREAMS[name]
        for lang in _languages(name, langs):
            pivot = AFRIQA_PIVOT.get(lang, "en")
            for split in upstream.splits:
                relative = upstream.local_path(lang, split, pivot)
                known = KNOWN_FILES.get(relative)
                url = f"{mirror.rstrip('/')}/{relative}" if mirror else upstream.url(lang, split, pivot)
                optional = len(upstream.splits) > 1 and known is None
                files.append(RemoteFile(name, url, relative, *(known or (None, None)), optional=optional))
    return files


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "edgeadapt-data-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URLs we built
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _Missing(url) from None
        if exc.code == 416 and offset:  # the .part already holds the whole file
            return None
        raise


def _download_once(file: RemoteFile, part: Path, progress: Progress, task: TaskID, timeout: float) -> None:
    """Fetch the rest of ``file`` into ``part``, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(file.url, offset, timeout)
    if response is None:
        return
    with response:
        resumed = offset > 0 and response.status == 206
        if not resumed:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else file.size
        progress.update(task, total=total, completed=offset)
        with open(part, "ab" if resumed else "wb") as handle:
            while block := response.read(CHUNK):
                handle.write(block)
                progress.advance(task, len(block))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")


def download(
    file: RemoteFile,
    data_dir: Path,
    progress: Progress,
    *,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> str:
    """Download one file into ``data_dir``; returns "fetched", "present" or "missing" (optional file absent).

    Raises :class:`EdgeAdaptError` when the download keeps failing or the sha256 does not match;
    nothing is left at the destination then (a ``.part`` is kept only after connection failures,
    to resume from next time).
    """
    dest = data_dir / file.relative
    if dest.is_file() and (file.sha256 is None or sha256_file(dest) == file.sha256):
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    task = progress.add_task(file.relative, total=file.size)
    if part.exists() and file.size is not None and part.stat().st_size > file.size:
        part.unlink()  # longer than the file can be: not a prefix of it
    try:
        for attempt in range(retries + 1):
            try:
                _download_once(file, part, progress, task, timeout)
                break
            except _Missing:
                part.unlink(missing_ok=True)
                if file.optional:
                    return "missing"
                raise EdgeAdaptError(f"not found upstream (HTTP 404): {file.url}") from None
            except (OSError, HTTPException, urllib.error.URLError) as exc:
                if attempt == retries:
                    raise EdgeAdaptError(
                        f"download of {file.url} failed after {retries + 1} tries ({exc}); run the same"
                        f" command again to resume from {part.name}"
                    ) from None
                time.sleep(backoff * 2**attempt)
        digest = sha256_file(part)
        if file.sha256 and digest != file.sha256:
            part.unlink(missing_ok=True)
            raise EdgeAdaptError(
                f"sha256 mismatch for {file.url}: expected {file.sha256}, got {digest}; nothing was saved"
            )
        if file.sha256 is None:
            progress.console.print(f"warning: no recorded sha256 for {file.relative}; saved unchecked ({digest})")
        os.replace(part, dest)
        return "fetched"
    finally:
        progress.remove_task(task)


def make_progress(console: Console | None = None) -> Progress:
    """A rich progress display for downloads (on stderr by default)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )


def fetch(
    names: list[str],
    langs: list[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
    *,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Fetch datasets ``names`` into the data directory; returns {relative path: outcome}."""
    root = resolve_data_dir(data_dir)
    files = plan(names, langs, mirror)
    outcomes: dict[str, str] = {}
    with progress or make_progress() as bar:
        for note in skipped_languages(names, langs):
            bar.console.print(note)
        for file in files:
            outcomes[file.relative] = download(file, root, bar, retries=retries, backoff=backoff, timeout=timeout)
    for name in names:
        if all(outcomes[file.relative] == "missing" for file in files if file.dataset == name):
            raise EdgeAdaptError(f"nothing of {name} in {', '.join(langs or [])} exists upstream")
    return outcomes
