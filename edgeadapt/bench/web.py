"""The phone page against QAEngine on the same bundle: site size, page load to ready, time per answer, same answers.

    python -m edgeadapt.bench.web --bundle edgeadapt-work/export --data-dir ../shared/data --per-lang 20 \\
        --out web.json --screenshot docs/web-phone.png

Builds the site (`edgeadapt web`), serves it on loopback, drives it with headless Chromium (web/test/browser.mjs:
the questions through ``window.edgeadapt.answer``, then the form in two languages, then offline through the
service worker, then a 360 x 740 screenshot) and answers the same questions with ``QAEngine``. Needs chromium and
``npm ci`` in web/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from edgeadapt.errors import EdgeAdaptError

LONG = 5
"""English questions also asked over a long passage (the first eight English contexts in one)."""
QUESTION_SETS = {"en": "tydiqa:en:dev", "yo": "afriqa:yor:test", "sw": "tydiqa:sw:dev"}
"""Where each language's questions come from (the first ``per_lang`` examples, in file order)."""
WEB = Path(__file__).resolve().parents[2] / "web"
SHOWN = {
    "lang": "en",
    "question": "Who wrote Things Fall Apart?",
    "context": "Things Fall Apart is a novel by the Nigerian writer Chinua Achebe, first published in 1958. It tells"
    " the story of Okonkwo, a leader and wrestling champion in the fictional Igbo village of Umuofia.",
}
"""The form's last question (after one in Yoruba or Swahili): what the screenshot shows."""


def questions(langs: list[str], data_dir: str | None, per_lang: int) -> list[dict]:
    from edgeadapt.data.specs import load_qa

    cases = []
    for lang in langs:
        spec = QUESTION_SETS.get(lang)
        if spec is None:
            continue
        examples = load_qa(spec, data_dir)[:per_lang]
        for example in examples:
            cases.append({"question": example.question, "context": example.context, "lang": lang, "source": spec})
        if lang == "en":  # long passages: eight contexts in one, several windows each
            long = "\n\n".join(example.context for example in examples[:8])
            for example in examples[:LONG]:
                case = {"question": example.question, "context": long, "lang": lang, "source": spec}
                cases.append({**case, "long": True})
    return cases


def site_sizes(site: Path) -> dict[str, int]:
    """Bytes on disk by kind of file (a gzip-stored file counts under the name it decompresses to)."""
    groups: dict[str, int] = {}
    for path in site.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(site).as_posix().removesuffix(".gz")
        if relative.endswith(".wasm"):
            key = "onnxruntime-web wasm"
        elif relative.startswith("vendor/"):
            key = "vendor scripts"
        elif relative == "model/backbone.onnx":
            key = "backbone.onnx"
        elif relative == "model/tokenizer.json":
            key = "tokenizer.json"
        elif relative.startswith("model/") and relative.endswith(".bin"):
            key = "adapters (.bin)"
        else:
            key = "page, worker, manifests"
        groups[key] = groups.get(key, 0) + path.stat().st_size
    groups["total"] = sum(groups.values())
    return groups


def run(
    bundle: Path,
    site: Path | None,
    data_dir: str | None,
    per_lang: int,
    screenshot: Path | None,
    chromium: str | None = None,
) -> dict:
    from edgeadapt.export.web import build_site, make_server
    from edgeadapt.runtime import QAEngine

    node = shutil.which("node")
    chromium = chromium or os.environ.get("CHROMIUM") or shutil.which("chromium")
    if node is None or chromium is None:
        raise EdgeAdaptError("needs node and chromium (apt-get install chromium; npm ci in web/)")
    began = time.perf_counter()
    built = build_site(bundle, site)
    build_seconds = time.perf_counter() - began
    engine = QAEngine(bundle)
    cases = questions(engine.languages, data_dir, per_lang)
    if not cases:
        raise EdgeAdaptError(f"no questions found for {engine.languages} in {data_dir}")
    python = []
    for case in cases:
        answer = engine.answer(case["question"], case["context"], case["lang"])
        span = {"text": answer.text, "start": answer.start, "end": answer.end, "score": answer.score}
        python.append({**span, "ms": answer.latency_ms})
    firsts = [next(c for c in cases if c["lang"] == lang) for lang in ("yo", "sw") if lang in engine.languages]
    ui = [{key: case[key] for key in ("lang", "question", "context")} for case in firsts[:1]] + [SHOWN]
    server = make_server(built.path, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        plan = {
            "url": f"http://127.0.0.1:{server.server_address[1]}/",
            "chromium": chromium,
            "questions": [{k: c[k] for k in ("question", "context", "lang")} for c in cases],
            "ui": ui,
            "offline": True,
            "screenshot": str(screenshot.resolve()) if screenshot else None,
            "width": 360,
            "height": 740,
        }
        (Path(tmp) / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        try:
            subprocess.run(
                [node, str(WEB / "test" / "browser.mjs"), str(Path(tmp) / "plan.json"), str(Path(tmp) / "out.json")],
                check=True,
                timeout=3600,
            )
        finally:
            server.shutdown()
            server.server_close()
        page = json.loads((Path(tmp) / "out.json").read_text(encoding="utf-8"))
    if "error" in page:
        raise EdgeAdaptError(f"the page failed: {page['error']}")
    same = [
        (p["text"], p["start"], p["end"]) == (b["text"], b["start"], b["end"])
        for p, b in zip(python, page["answers"], strict=True)
    ]
    score_diff = max(abs(p["score"] - b["score"]) for p, b in zip(python, page["answers"], strict=True))
    per_lang_ms = {}
    for group in [*engine.languages, "en-long"]:
        lang, long = group.removesuffix("-long"), group.endswith("-long")
        rows = [i for i, c in enumerate(cases) if c["lang"] == lang and c.get("long", False) == long]
        if rows:
            per_lang_ms[group] = {
                "questions": len(rows),
                "python_median_ms": statistics.median(python[i]["ms"] for i in rows),
                "browser_median_ms": statistics.median(page["answers"][i]["ms"] for i in rows),
                "windows_mean": statistics.mean(page["answers"][i]["windows"] for i in rows),
            }
    return {
        "bundle": str(bundle),
        "site": str(built.path),
        "languages": engine.languages,
        "site_bytes": site_sizes(built.path),
        "site_build_seconds": build_seconds,
        "questions": len(cases),
        "same_answers": sum(same),
        "different": [
            {"case": cases[i], "python": python[i], "browser": page["answers"][i]}
            for i, ok in enumerate(same)
            if not ok
        ],
        "max_score_diff": score_diff,
        "python_load_ms": engine.load_seconds * 1000.0,
        "browser_load_ms": page["load_ms"],
        "browser_ready_ms": page["ready_ms"],
        "browser_wall_ready_ms": page["wall_ready_ms"],
        "browser_threads": page["threads"],
        "offline": {k: v for k, v in page.get("offline", {}).items() if k != "ui"},
        "offline_same_answers": [s["answer"] for s in page.get("offline", {}).get("ui", [])]
        == [s["answer"] for s in page["ui"]],
        "form": page["ui"],
        "installability_errors": page.get("installability_errors"),
        "per_lang": per_lang_ms,
        "python_median_ms": statistics.median(p["ms"] for p, c in zip(python, cases, strict=True) if "long" not in c),
        "browser_median_ms": statistics.median(
            b["ms"] for b, c in zip(page["answers"], cases, strict=True) if "long" not in c
        ),
        "cpu": os.cpu_count(),
        "screenshot": str(screenshot) if screenshot else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeadapt.bench.web", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--site", type=Path, default=None, help="site directory (default: <bundle>-web)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--per-lang", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.bundle, args.site, args.data_dir, args.per_lang, args.screenshot)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "different"}
    print(json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
