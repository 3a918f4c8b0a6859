"""Hostile --mlflow URIs: one line and exit 2 before anything trains, nothing outside --out."""

import json
import os
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import aeexp
from aeexp import cli
from aeexp.errors import UserError
from aeexp.execute import reach, tracking

pytest.importorskip("mlflow")

ACCEPTED = "use http(s)://HOST[:PORT][/PATH] for a tracking server or sqlite:///PATH"


def closed_port() -> int:
    """Return a localhost port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hostile_uris(tmp_path):
    """Return (URI, what the one line must say) pairs; every path lies under tmp_path."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, just sixteen+ bytes")
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)  # opened for reading, it would wait for a writer forever
    return [
        (f"sqlite:///{fifo}", f"{fifo}: not a regular file"),
        (f"sqlite:///{tmp_path / ('n' * 300)}.db", "file name too long"),
        ("bogus://x", f"not a supported tracking URI; {ACCEPTED}"),
        ("not a uri", f"not a URI; {ACCEPTED}"),
        (str(tmp_path / "store"), "not a URI;"),
        (f"file://{tmp_path / 'store'}", "file store is not supported; use sqlite:///PATH"),
        (f"sqlite:///{junk}", f"{junk} is not an SQLite database"),
        (f"sqlite:///{tmp_path}", "is a folder, not a database file"),
        (f"sqlite:///{tmp_path / 'no' / 'x.db'}", f"folder {tmp_path / 'no'} does not exist"),
        ("", "--mlflow needs a tracking URI: http(s)://HOST[:PORT][/PATH]"),
        ("   ", "--mlflow needs a tracking URI"),
        ("sqlite://", "an in-memory store keeps nothing; use sqlite:///PATH"),
        ("sqlite:///", "an in-memory store keeps nothing"),
        ("sqlite:///:memory:", "an in-memory store keeps nothing"),
        ("sqlite://host/x.db", "use sqlite:///PATH (three slashes)"),
        (f"http://127.0.0.1:{closed_port()}", "no tracking server answers (connection refused)"),
        ("http://127.0.0.1:99999", "not a valid URI"),
        ("http://[::1", "not a valid URI"),
        ("https:///path", "names no host"),
    ]


@pytest.fixture
def in_empty_folder(tmp_path, monkeypatch):
    """Run in an empty working folder, to see that nothing is written there."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_each_hostile_uri_is_one_line_exit_2_and_writes_nothing(tmp_path, in_empty_folder):
    """Before: tracebacks, and '' or sqlite:// wrote ./mlflow.db or ./mlruns here."""
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\ndata: {train_limit: 256, test_limit: 100}\n")
    out = tmp_path / "out"
    for uri, message in hostile_uris(tmp_path):
        result = CliRunner().invoke(
            cli.main, ["run", str(config), "--out", str(out), "--mlflow", uri]
        )
        assert result.exit_code == 2, (uri, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith("aeexp: error: --mlflow") and message in line, (uri, line)
    assert list(in_empty_folder.iterdir()) == [] and not out.exists()


@pytest.mark.parametrize("uri", ["", "sqlite://"])
def test_the_api_refuses_what_would_write_into_the_working_folder(tmp_path, in_empty_folder, uri):
    with pytest.raises(UserError, match=r"^--mlflow "):
        aeexp.sweep({"name": "s", "grid": {"seed": [0]}}, out=str(tmp_path / "o"), mlflow=uri)
    assert list(in_empty_folder.iterdir()) == []


def test_a_closed_server_port_is_refused_in_seconds():
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(UserError, match=r"no tracking server answers \(connection refused\)$"):
        tracking.check_tracking_uri(f"http://127.0.0.1:{port}/mlflow")
    assert time.monotonic() - started < reach.CONNECT_TIMEOUT + 2


def test_a_silent_or_unknown_server_is_one_line(monkeypatch):
    """No packet leaves the machine: the connect is replaced by its failures."""

    def silent(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(reach.socket, "create_connection", silent)
    with pytest.raises(UserError, match=r"no tracking server answers \(no answer within 3 s\)$"):
        tracking.check_tracking_uri("https://mlflow.example:5000")

    def unknown(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(reach.socket, "create_connection", unknown)
    with pytest.raises(UserError, match=r"\(unknown host 'mlflow\.invalid'\)$"):
        tracking.check_tracking_uri("http://mlflow.invalid")


def test_a_local_store_is_accepted_new_empty_or_sqlite(tmp_path):
    tracking.check_tracking_uri(f"sqlite:///{tmp_path / 'new.db'}")
    (tmp_path / "empty.db").touch()  # SQLite takes an empty file as an empty database
    tracking.check_tracking_uri(f"sqlite:///{tmp_path / 'empty.db'}")
    sqlite3.connect(tmp_path / "real.db").execute("create table t (x)").connection.close()
    tracking.check_tracking_uri(f"sqlite:///{tmp_path / 'real.db'}")


def test_the_http_limits_apply_only_while_logging_and_yield_to_the_user(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    with tracking._http_limits():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"


class EmptyAnswers(BaseHTTPRequestHandler):
    """Answers every MLflow REST call with an empty JSON object: no experiments."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        """Stay quiet."""


def test_a_server_that_dies_mid_sweep_costs_seconds_per_run(tmp_path, monkeypatch, capsys):
    """Under MLflow's defaults (7 retries, growing back-off) one run stalled for minutes."""
    for name in ("MAX_RETRIES", "BACKOFF_FACTOR", "TIMEOUT"):  # MLflow's defaults, as before
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}", raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyAnswers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = tracking.MlflowSink(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    run = SimpleNamespace(run_dir=tmp_path, run_id="r0", config=SimpleNamespace(name="dead"))
    logging = threading.Thread(target=sink, args=(run,), daemon=True)
    started = time.monotonic()
    logging.start()
    logging.join(timeout=60)
    assert not logging.is_alive(), "logging to a dead server still retrying after 60 s"
    assert time.monotonic() - started < 20
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"aeexp: warning: MLflow at {sink.uri}: ")
