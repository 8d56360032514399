"""A serving process for the memory benchmark: open a bundle, answer in each language asked, report peak RSS.

Run as ``python -m edgeadapt.bench.serve_probe BUNDLE --langs en,yo,sw``; prints one JSON line on stdout.
Imports only the runtime (onnxruntime, tokenizers, numpy), as a device would.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path


def _status_bytes(field: str) -> int | None:
    """A memory field of Linux ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes, or None elsewhere."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return None


def current_rss_bytes() -> int | None:
    """Resident set size now, or None where unknown."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process.

    Linux: ``VmHWM``, which starts afresh at ``exec`` (``ru_maxrss`` does not: it keeps the peak of the forked
    copy of the parent, here a process holding torch). Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(usage if sys.platform == "darwin" else usage * 1024)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--langs", required=True, help="comma-separated languages to serve")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="questions asked in each language")
    args = parser.parse_args(argv)

    from edgeadapt.runtime.engine import QAEngine

    baseline = current_rss_bytes()
    engine = QAEngine(args.bundle, threads=args.threads)
    question = "Who wrote the novel and when was it written?"
    context = " ".join(["The novel was written by Chinua Achebe in 1958 in Lagos, the largest city of Nigeria."] * 40)
    langs = [lang for lang in args.langs.split(",") if lang]
    for _ in range(args.rounds):
        for lang in langs:
            engine.answer(question, context, lang)
    print(
        json.dumps(
            {
                "peak_rss_bytes": peak_rss_bytes(),
                "rss_after_imports_bytes": baseline,
                "rss_end_bytes": current_rss_bytes(),
                "langs": langs,
                "mode": engine.manifest.mode,
            }
        )
    )


if __name__ == "__main__":
    main()
