"""The `zalo://` Apprise service against a loopback stand-in for the Zalo OA API."""

from __future__ import annotations

import importlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apprise
import pytest

import baocao.zalo as zalo

GOOD_TOKEN = "good-token"
TITLE = "Nhắc hạn báo cáo"
BODY = "Sở Tài chính: báo cáo quý III đến hạn ngày 15/10. Đề nghị gửi đúng hạn."


class FakeZalo(ThreadingHTTPServer):
    """Records every request; answers like the OA API (or like a json:// sink)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def zalo_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == zalo.MESSAGE_PATH]


class _Handler(BaseHTTPRequestHandler):
    server: FakeZalo

    def log_message(self, format, *args):  # keep pytest output quiet
        pass

    def do_GET(self):
        self._answer(405, {"error": -1, "message": "method not allowed"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            payload = None
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "json": payload,
        }
        with self.server.lock:
            self.server.requests.append(record)

        if self.path != zalo.MESSAGE_PATH:  # the json:// sink of the mixed test
            self._answer(200, {"ok": True})
            return

        problems = []
        if record["headers"].get("content-type", "").split(";")[0] != "application/json":
            problems.append(f"content-type {record['headers'].get('content-type')!r}")
        if not (
            isinstance(payload, dict)
            and set(payload) == {"recipient", "message"}
            and set(payload["recipient"]) == {"user_id"}
            and isinstance(payload["recipient"]["user_id"], str)
            and set(payload["message"]) == {"text"}
            and isinstance(payload["message"]["text"], str)
        ):
            problems.append(f"body shape {payload!r}")
        if problems:
            with self.server.lock:
                self.server.problems.extend(problems)
            self._answer(400, {"error": -201, "message": "; ".join(problems)})
        elif self.headers.get("access_token") != GOOD_TOKEN:
            self._answer(200, {"error": -216, "message": "Access token is invalid"})
        else:
            self._answer(200, {"error": 0, "message": "Success", "data": {"message_id": "abc"}})

    def _answer(self, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def server():
    srv = FakeZalo()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def zalo_env(server, monkeypatch):
    monkeypatch.setenv("BAOCAO_ZALO_API_URL", server.base_url)
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", GOOD_TOKEN)
    return server


def _messages(result) -> str:
    return "\n".join(entry.message for entry in result.logs())


def test_notify_sends_one_text_message(zalo_env):
    ap = apprise.Apprise()
    assert ap.add("zalo://12345")

    result = ap.notify(title=TITLE, body=BODY)

    assert bool(result) is True
    assert zalo_env.problems == []
    (req,) = zalo_env.requests
    assert req["method"] == "POST"
    assert req["path"] == "/v3.0/oa/message/cs"
    assert req["headers"]["access_token"] == GOOD_TOKEN
    assert req["headers"]["content-type"] == "application/json"
    assert req["json"] == {
        "recipient": {"user_id": "12345"},
        "message": {"text": f"{TITLE}\n\n{BODY}"},
    }


def test_wrong_token_fails_with_api_error(zalo_env, monkeypatch):
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", "expired")
    ap = apprise.Apprise()
    ap.add("zalo://12345")

    result = ap.notify(title=TITLE, body=BODY)

    assert not result
    assert len(zalo_env.zalo_requests()) == 1
    assert zalo_env.zalo_requests()[0]["headers"]["access_token"] == "expired"
    # The API's code and message reach Apprise's per-call log capture.
    assert "-216" in _messages(result)
    assert "Access token is invalid" in _messages(result)


def test_token_env_query_picks_another_variable(zalo_env, monkeypatch):
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", "expired")
    monkeypatch.setenv("SO_TAI_CHINH_ZALO_TOKEN", GOOD_TOKEN)
    ap = apprise.Apprise()
    ap.add("zalo://12345?token_env=SO_TAI_CHINH_ZALO_TOKEN")

    assert ap.notify(body=BODY)
    assert zalo_env.requests[0]["json"]["message"]["text"] == BODY  # no title, no blank lines


def test_server_down_fails_without_exception(monkeypatch, caplog):
    monkeypatch.setenv("BAOCAO_ZALO_API_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", GOOD_TOKEN)
    ap = apprise.Apprise()
    ap.add("zalo://12345")

    with caplog.at_level(logging.WARNING):
        result = ap.notify(title=TITLE, body=BODY)

    assert not result
    assert "unreachable" in caplog.text


def test_missing_token_everywhere_fails_clearly(zalo_env, monkeypatch, caplog):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("BAOCAO_ZALO_ACCESS_TOKEN")
    ap = apprise.Apprise()
    ap.add("zalo://12345")

    # Prefect reads its settings once at import, so an env var set here could be
    # ignored (and an unset URL would start an ephemeral server): use its own override.
    started = time.monotonic()
    with (
        temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{_closed_port()}/api"}),
        caplog.at_level(logging.WARNING),
    ):
        result = ap.notify(title=TITLE, body=BODY)

    assert not result
    assert time.monotonic() - started < 30
    assert zalo_env.requests == []
    assert "BAOCAO_ZALO_ACCESS_TOKEN" in caplog.text
    assert "'zalo-access-token'" in caplog.text
    assert "Traceback" not in caplog.text


def test_token_from_prefect_secret_when_env_absent(zalo_env, monkeypatch):
    monkeypatch.delenv("BAOCAO_ZALO_ACCESS_TOKEN")
    asked = []
    monkeypatch.setattr(zalo, "_load_prefect_secret", lambda name: asked.append(name) or GOOD_TOKEN)
    ap = apprise.Apprise()
    ap.add("zalo://12345")

    assert ap.notify(body=BODY)
    assert asked == ["zalo-access-token"]
    assert zalo_env.requests[0]["headers"]["access_token"] == GOOD_TOKEN


def test_long_text_is_truncated_to_2000_characters(zalo_env, caplog):
    ap = apprise.Apprise()
    ap.add("zalo://12345")
    body = "Đề nghị các đơn vị khẩn trương hoàn thiện số liệu. " * 100

    with caplog.at_level(logging.WARNING, logger="baocao.zalo"):
        assert ap.notify(title=TITLE, body=body)

    text = zalo_env.requests[0]["json"]["message"]["text"]
    assert len(text) == 2000
    assert text.startswith(f"{TITLE}\n\n")
    assert text.endswith("…")
    assert "truncated" in caplog.text


def test_attachments_are_skipped_but_text_goes(zalo_env, tmp_path, caplog):
    report = tmp_path / "bao-cao.txt"
    report.write_text("số liệu", encoding="utf-8")
    ap = apprise.Apprise()
    ap.add("zalo://12345")

    with caplog.at_level(logging.INFO):
        assert ap.notify(title=TITLE, body=BODY, attach=[str(report)])

    assert len(zalo_env.requests) == 1
    assert "1 attachment(s) skipped" in caplog.text


def test_mixed_zalo_and_json_urls_are_both_delivered(zalo_env):
    ap = apprise.Apprise()
    ap.add("zalo://12345")
    ap.add(f"json://127.0.0.1:{zalo_env.server_address[1]}/hook")

    assert ap.notify(title=TITLE, body=BODY)

    paths = sorted(r["path"] for r in zalo_env.requests)
    assert paths == ["/hook", "/v3.0/oa/message/cs"]
    (sink,) = [r for r in zalo_env.requests if r["path"] == "/hook"]
    assert sink["json"]["title"] == TITLE
    assert sink["json"]["message"] == BODY


def test_build_request_and_send_without_apprise(server):
    assert zalo.build_request("42", "", "chào") == {
        "recipient": {"user_id": "42"},
        "message": {"text": "chào"},
    }
    assert zalo.send_zalo_text("42", "chào", token=GOOD_TOKEN, base_url=server.base_url) == (
        True,
        "abc",
    )
    ok, reason = zalo.send_zalo_text("42", "chào", token="bad", base_url=server.base_url)
    assert not ok
    assert "-216" in reason and "Access token is invalid" in reason


def test_registration_is_idempotent():
    assert zalo.register() is False  # already registered at import
    importlib.reload(zalo)
    assert zalo.register() is False
    assert apprise.Apprise().add("zalo://12345")
