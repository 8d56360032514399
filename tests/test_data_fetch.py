"""`data fetch` against a local HTTP server (with Range support) serving copies of shared files."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgeadapt.cli.app import main
from edgeadapt.data import fetch
from edgeadapt.data.readers import read_squad
from edgeadapt.data.sources import KNOWN_FILES
from edgeadapt.data.specs import load_parallel
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import sha256_file

QUERIES = [f"afriqa/queries/yor/queries.afriqa.yor.en.{split}.json" for split in ("train", "dev", "test")]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.drop_once: set[str] = set()  # paths whose first GET is cut off half way
        self.drop_always: set[str] = set()  # paths whose every GET is cut off half way
        self.corrupt: set[str] = set()  # paths served with one byte changed
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        relative = self.path.lstrip("/")
        self.server.requests.append((relative, self.headers.get("Range")))
        path = self.server.root / relative
        if not path.is_file():
            self.send_error(404)
            return
        data = bytearray(path.read_bytes())
        if relative in self.server.corrupt:
            data[len(data) // 2] ^= 0x01
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if relative in self.server.drop_once or relative in self.server.drop_always:
            self.server.drop_once.discard(relative)
            self.wfile.write(data[start : start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])


def _serve(root: Path) -> Iterator[_Server]:
    httpd = _Server(root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def server(shared_data: Path, tmp_path: Path) -> Iterator[_Server]:
    """A server on 127.0.0.1 serving copies (made now, in tmp) of the Yoruba AfriQA queries."""
    root = tmp_path / "mirror"
    for relative in QUERIES:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / relative, root / relative)
    yield from _serve(root)


SQUAD = {split: f"squad/{split}-v1.1.json" for split in ("train", "dev")}


def _squad_document(question: str) -> bytes:
    context = "The Eiffel Tower is in Paris."
    qa = {"id": question, "question": question, "answers": [{"text": "Paris", "answer_start": context.index("Paris")}]}
    document = {
        "version": "1.1",
        "data": [{"title": "Eiffel_Tower", "paragraphs": [{"context": context, "qas": [qa]}]}],
    }
    return json.dumps(document).encode()


@pytest.fixture()
def squad_server(tmp_path: Path) -> Iterator[_Server]:
    """A server on 127.0.0.1 serving small SQuAD-format files laid out like the data directory."""
    root = tmp_path / "mirror"
    (root / "squad").mkdir(parents=True)
    for split, relative in SQUAD.items():
        (root / relative).write_bytes(_squad_document(f"Where is the Eiffel Tower? ({split})"))
    yield from _serve(root)


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_recorded_hashes_match_shared_files(shared_data: Path) -> None:
    for relative in QUERIES + ["xquad/xquad.de.json", "flores200/dev/yor_Latn.dev"]:
        sha, size = KNOWN_FILES[relative]
        assert (shared_data / relative).stat().st_size == size
        assert sha256_file(shared_data / relative) == sha


def test_plan_uses_upstream_urls() -> None:
    files = fetch.plan(["xquad"], ["de"], mirror=None) + fetch.plan(["flores200"], ["yo"], mirror=None)
    urls = {file.url for file in files}
    assert "https://raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.de.json" in urls
    assert (
        "https://raw.githubusercontent.com/common-parallel-corpora/common-parallel-corpora/HEAD/"
        "data/common-parallel-corpora/flores-200-dev/yor_Latn.dev" in urls
    )
    assert any(file.relative == "flores200/dev/eng_Latn.dev" for file in files)  # English side added


def test_plan_rejects_language_a_dataset_lacks() -> None:
    with pytest.raises(EdgeAdaptError, match="tydiqa has no language 'yo' upstream; available: arabic, bengali"):
        fetch.plan(["tydiqa"], ["yo"])
    with pytest.raises(EdgeAdaptError, match="xquad has no language 'yo' upstream; available: ar, de"):
        fetch.plan(["xquad"], ["yo"])
    with pytest.raises(EdgeAdaptError, match="pawsx has no language 'fr' upstream; available: de"):
        fetch.plan(["pawsx"], ["fr"])
    fon = fetch.plan(["afriqa"], ["fon"])[0]
    assert fon.relative == "afriqa/fon/gold_span_passages.afriqa.fon.fr.train.json"  # Fon pivots to French
    # several datasets: a language one of them lacks is skipped for that one only
    files = fetch.plan(["xquad", "flores200"], ["de", "yo"])
    assert {f.relative for f in files if f.dataset == "xquad"} == {"xquad/xquad.de.json"}
    assert "flores200/dev/yor_Latn.dev" in {f.relative for f in files}
    notes = fetch.skipped_languages(["xquad", "flores200"], ["de", "yo"])
    assert notes == ["xquad has no language 'yo' upstream: skipped"]
    with pytest.raises(EdgeAdaptError, match="unknown dataset 'squadx'"):
        fetch.plan(["squadx"])


def test_good_download_through_cli(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "fetch", "afriqa-queries", "--lang", "yo", "--data-dir", str(data), "--mirror", _url(server)])
    assert exit_info.value.code in (0, None)
    for relative in QUERIES:
        assert sha256_file(data / relative) == KNOWN_FILES[relative][0]
    assert not list(data.rglob("*.part"))
    assert len(load_parallel("afriqa-queries:yo:train", data)) == 360
    assert "3 fetched" in capsys.readouterr().err
    # a second run finds everything present and downloads nothing
    served = len(server.requests)
    fetch.fetch(["afriqa-queries"], ["yor"], data, _url(server))
    assert len(server.requests) == served


def test_corrupted_download_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server.corrupt.add(QUERIES[0])
    with pytest.raises(EdgeAdaptError, match="sha256 mismatch .*nothing was saved"):
        fetch.fetch(["afriqa-queries"], ["yo"], data, _url(server), backoff=0.01)
    assert not (data / QUERIES[0]).exists()
    assert not list(data.rglob("*.part"))


def test_interrupted_download_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server.drop_once.add(QUERIES[0])
    outcomes = fetch.fetch(["afriqa-queries"], ["yo"], data, _url(server), backoff=0.01)
    assert outcomes[QUERIES[0]] == "fetched"
    ranges = [header for path, header in server.requests if path == QUERIES[0]]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].split("=")[1].rstrip("-")) > 0
    assert sha256_file(data / QUERIES[0]) == KNOWN_FILES[QUERIES[0]][0]
    assert not list(data.rglob("*.part"))


def test_missing_upstream_file_is_a_clear_error(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(EdgeAdaptError, match="not found upstream"):
        fetch.fetch(["xquad"], ["de"], tmp_path / "data", _url(server), backoff=0.01)


def test_failing_download_gives_up_clearly_and_keeps_part(server: _Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server.drop_always.add(QUERIES[0])
    with pytest.raises(EdgeAdaptError, match=r"failed after 3 tries .*run the same command again to resume"):
        fetch.fetch(["afriqa-queries"], ["yo"], data, _url(server), retries=2, backoff=0.01)
    assert not (data / QUERIES[0]).exists()
    part = data / (QUERIES[0] + ".part")
    assert 0 < part.stat().st_size < KNOWN_FILES[QUERIES[0]][1]
    server.drop_always.clear()  # the next run resumes from the .part and completes
    fetch.fetch(["afriqa-queries"], ["yo"], data, _url(server), backoff=0.01)
    assert sha256_file(data / QUERIES[0]) == KNOWN_FILES[QUERIES[0]][0]
    assert not part.exists()


def test_plan_squad_uses_the_official_site() -> None:
    files = fetch.plan(["squad"], mirror=None)
    assert [(file.url, file.relative) for file in files] == [
        ("https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json", "squad/train-v1.1.json"),
        ("https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json", "squad/dev-v1.1.json"),
    ]
    assert (files[0].sha256, files[0].size) == (
        "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
        30288272,
    )
    assert (files[1].sha256, files[1].size) == (
        "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
        4854279,
    )
    assert not any(file.optional for file in files)
    assert fetch.plan(["squad"], ["en", "english"]) == files  # English in any code: the same two files
    with pytest.raises(EdgeAdaptError, match="squad has no language 'de' upstream; available: en"):
        fetch.plan(["squad"], ["de"])
    # with another dataset, a language SQuAD lacks is skipped for SQuAD only
    both = fetch.plan(["squad", "xquad"], ["de", "en"])
    assert [file.relative for file in both if file.dataset == "squad"] == [file.relative for file in files]
    assert {file.relative for file in both if file.dataset == "xquad"} == {"xquad/xquad.de.json", "xquad/xquad.en.json"}
    assert fetch.skipped_languages(["squad", "xquad"], ["de", "en"]) == ["squad has no language 'de' upstream: skipped"]


def _record_served_squad(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the served stand-ins' sha256 and size in place of the real files'."""
    for relative in SQUAD.values():
        data = (server.root / relative).read_bytes()
        monkeypatch.setitem(KNOWN_FILES, relative, (hashlib.sha256(data).hexdigest(), len(data)))


def test_squad_download_through_cli(
    squad_server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _record_served_squad(squad_server, monkeypatch)
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "fetch", "squad", "--lang", "en", "--data-dir", str(data), "--mirror", _url(squad_server)])
    assert exit_info.value.code in (0, None)
    assert [path for path, _ in squad_server.requests] == list(SQUAD.values())
    for relative in SQUAD.values():
        assert sha256_file(data / relative) == KNOWN_FILES[relative][0]
    assert not list(data.rglob("*.part"))
    train = read_squad(data / "squad" / "train-v1.1.json", "en")
    assert [(example.question, example.answers[0].text) for example in train] == [
        ("Where is the Eiffel Tower? (train)", "Paris")
    ]
    assert "2 fetched" in capsys.readouterr().err


def test_squad_wrong_checksum_is_refused(squad_server: _Server, tmp_path: Path) -> None:
    # the recorded hashes are the real files'; the small stand-ins served here do not match them
    data = tmp_path / "data"
    with pytest.raises(EdgeAdaptError, match="sha256 mismatch for .*/squad/train-v1.1.json.*nothing was saved"):
        fetch.fetch(["squad"], None, data, _url(squad_server), backoff=0.01)
    assert not (data / SQUAD["train"]).exists()
    assert not list(data.rglob("*.part"))
