"""Zalo Official Account notifications as an Apprise custom service (`zalo://`).

Importing this module registers the `zalo://` scheme with Apprise (idempotent), so
any `apprise.Apprise()` object in the process accepts URLs of the form::

    zalo://USER_ID                      recipient's Zalo user id (they follow the OA)
    zalo://USER_ID?token_env=MY_TOKEN   read the access token from $MY_TOKEN instead

The message is sent as a customer-service text message through the Zalo Official
Account API v3 (https://developers.zalo.me/docs/official-account/tin-nhan/):

    POST {base}/v3.0/oa/message/cs
    access_token: <OA access token>
    Content-Type: application/json

    {"recipient": {"user_id": "USER_ID"}, "message": {"text": "TITLE\\n\\nBODY"}}

Zalo answers HTTP 200 for both success and failure; only `{"error": 0, ...}` is a
success (e.g. `{"error": -216, "message": "Access token is invalid"}` is not). Text
messages are limited to 2000 characters; longer texts are cut with "…" (warning logged).
Attachments are not sent (logged at info); the text still goes.

Environment:

- `BAOCAO_ZALO_ACCESS_TOKEN`: OA access token (or the variable named by `?token_env=`).
  When unset or empty, the Prefect Secret block `zalo-access-token` is tried
  (`Secret.load("zalo-access-token").get()`); if that fails too (no block, Prefect API
  unreachable) the send fails with a logged error.
- `BAOCAO_ZALO_API_URL`: API base, default `https://openapi.zalo.me` (tests point it to
  a loopback server).

Any failure makes the Apprise hook return False, so `Apprise.notify()` is falsy and the
caller (the outbox) keeps the message pending. The reason is logged on the "apprise"
logger, so it also shows up in `AppriseResult.logs()` next to Apprise's own entries.

The plain functions (`build_request`, `send_zalo_text`, `resolve_token`) work without
Apprise; `_zalo_hook` is the thin wrapper Apprise calls.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from apprise.common import NotifyFormat
from apprise.decorators import notify
from apprise.manager_plugins import NotificationManager

SCHEMA = "zalo"
SERVICE_NAME = "Zalo Official Account"

DEFAULT_API_URL = "https://openapi.zalo.me"
API_URL_ENV = "BAOCAO_ZALO_API_URL"
TOKEN_ENV = "BAOCAO_ZALO_ACCESS_TOKEN"
SECRET_BLOCK = "zalo-access-token"
MESSAGE_PATH = "/v3.0/oa/message/cs"

MAX_TEXT_LENGTH = 2000
ELLIPSIS = "…"
TIMEOUT_SECONDS = 10.0

logger = logging.getLogger(__name__)
# Failures of the Apprise hook go to Apprise's logger: Apprise captures it per service
# attempt, so the Zalo error appears in AppriseResult.logs() and log_callback.
_apprise_logger = logging.getLogger("apprise")


def compose_text(title: str | None, body: str | None) -> str:
    """`title + "\\n\\n" + body` when a title is given, cut to Zalo's 2000 characters."""
    title = (title or "").strip()
    body = body or ""
    text = f"{title}\n\n{body}" if title else body
    if len(text) > MAX_TEXT_LENGTH:
        logger.warning(
            "Zalo text is %d characters; truncated to the API limit of %d.",
            len(text),
            MAX_TEXT_LENGTH,
        )
        text = text[: MAX_TEXT_LENGTH - len(ELLIPSIS)] + ELLIPSIS
    return text


def build_request(user_id: str, title: str | None, body: str | None) -> dict[str, Any]:
    """JSON body of a customer-service text message to `user_id`."""
    return {"recipient": {"user_id": str(user_id)}, "message": {"text": compose_text(title, body)}}


def api_base_url() -> str:
    """API base from `BAOCAO_ZALO_API_URL`, default https://openapi.zalo.me."""
    return (os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")


def _load_prefect_secret(name: str = SECRET_BLOCK) -> str:
    """Value of the Prefect Secret block `name`; raises on any problem."""
    from prefect.blocks.system import Secret

    # _sync=True: Block.load returns a coroutine when called from async code (an async
    # flow or a running event loop), and this hook is always synchronous.
    value = Secret.load(name, _sync=True).get()
    if not isinstance(value, str) or not value:
        raise ValueError(f"Secret block {name!r} does not hold a non-empty string")
    return value


def resolve_token(token_env: str | None = None) -> tuple[str | None, str]:
    """Access token from the environment, else from the Prefect Secret block.

    Returns `(token, "")` or `(None, reason)`; never raises.
    """
    env_name = token_env or TOKEN_ENV
    token = os.environ.get(env_name, "").strip()
    if token:
        return token, ""
    try:
        return _load_prefect_secret(SECRET_BLOCK), ""
    except Exception as exc:  # missing block, Prefect API down, bad value...
        reason = (
            f"no Zalo access token: environment variable {env_name} is not set and "
            f"Prefect Secret block {SECRET_BLOCK!r} could not be loaded "
            f"({type(exc).__name__}: {exc})"
        )
        return None, reason


def send_zalo_text(
    user_id: str,
    text: str,
    *,
    token: str,
    base_url: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> tuple[bool, str]:
    """POST one text message; `(True, message_id)` or `(False, reason)`. Never raises.

    `text` is sent as given except for the 2000-character cut.
    """
    url = (base_url or api_base_url()).rstrip("/") + MESSAGE_PATH
    payload = build_request(user_id, None, text)
    headers = {"access_token": token, "Content-Type": "application/json"}
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"Zalo API unreachable at {url}: {type(exc).__name__}: {exc}"
    except ValueError as exc:  # e.g. a token that is not latin-1 cannot be a header value
        return False, f"Zalo request could not be sent: {type(exc).__name__}: {exc}"

    try:
        data = response.json()
    except ValueError:
        data = None

    if response.status_code != 200:
        detail = _error_detail(data) if isinstance(data, dict) else response.text[:200]
        return False, f"Zalo API answered HTTP {response.status_code}: {detail}"
    if not isinstance(data, dict):
        return False, f"Zalo API answered non-JSON content: {response.text[:200]!r}"

    error = data.get("error")
    if type(error) is not int or error != 0:
        return False, f"Zalo API refused the message: {_error_detail(data)}"

    result = data.get("data")
    message_id = result.get("message_id", "") if isinstance(result, dict) else ""
    logger.debug("Zalo message delivered to %s (message_id=%s).", user_id, message_id)
    return True, str(message_id)


def _error_detail(data: dict[str, Any]) -> str:
    return f"error {data.get('error')!r}: {data.get('message', '(no message)')}"


def _zalo_hook(
    body: str,
    title: str,
    notify_type: str,
    *args: Any,
    meta: dict[str, Any] | None = None,
    attach: Any = None,
    **kwargs: Any,
) -> bool:
    """Apprise entry point for `zalo://USER_ID[?token_env=NAME]`."""
    meta = meta or {}
    user_id = (meta.get("host") or "").strip()
    if not user_id:
        _apprise_logger.warning(
            "Zalo: no recipient in %r; expected zalo://USER_ID.", meta.get("url", "zalo://")
        )
        return False

    if attach:
        _apprise_logger.info("Zalo: %d attachment(s) skipped; only the text is sent.", len(attach))

    token_env = (meta.get("qsd") or {}).get("token_env") or None
    token, reason = resolve_token(token_env)
    if token is None:
        _apprise_logger.error("Zalo: message to %s not sent: %s.", user_id, reason)
        return False

    ok, detail = send_zalo_text(user_id, compose_text(title, body), token=token)
    if not ok:
        _apprise_logger.warning("Zalo: message to %s not sent: %s", user_id, detail)
    return ok


def register() -> bool:
    """Register `zalo://` with Apprise; True if registered by this call.

    Safe to call repeatedly. Call it again after `NotificationManager().unload_modules()`
    (which forgets custom plugins).
    """
    manager = NotificationManager()
    if SCHEMA in manager:
        if manager[SCHEMA].service_name != SERVICE_NAME:
            logger.warning("Apprise already handles %s:// with another plugin.", SCHEMA)
        return False
    notify(on=SCHEMA, name=SERVICE_NAME, body_format=NotifyFormat.TEXT)(_zalo_hook)
    return SCHEMA in manager


register()
