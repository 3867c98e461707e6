"""``Baicai`` and ``AsyncBaicai``: ``openai.OpenAI`` / ``AsyncOpenAI`` pointed at the BaicaiGPT relay.

They are subclasses, like ``openai.AzureOpenAI``, so every resource, type and helper of ``openai`` works
unchanged. What they add:

- credentials from ``api_key=`` > ``BAICAI_API_KEY`` > the active profile, and the base URL from ``base_url=`` >
  ``BAICAI_BASE_URL`` > the profile's > the relay's default, normalised (``_keys.resolve_credentials``).
  ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` are never used: an OpenAI key must not travel to the relay;
- relay errors as typed exceptions (``_errors``) whatever the envelope and status — including errors sent with
  HTTP 200, a JSON answer to ``stream=True`` and an error event inside an SSE stream;
- openai's retry loop steered by our :class:`~baicai_sdk._retry.RetryPolicy` (hourly limits are never retried);
- by default an ``http_client`` whose transport meters every request into the local ledger and applies the
  quota gate (``_transport``). A user's own ``http_client`` is respected as given.

Hooks used (openai 3.x): ``_send_request`` (sees every HTTP attempt: 200-status errors get their documented
status so openai raises and retries as for any error; SSE bodies get an error scanner), ``_should_retry`` /
``_calculate_retry_timeout`` (the policy), ``_make_status_error`` (the class), ``copy`` (keeps our options).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx2
import openai
from httpx2 import Timeout
from openai._base_client import AsyncHttpxClientWrapper, SyncHttpxClientWrapper
from openai._constants import DEFAULT_TIMEOUT
from openai._types import NOT_GIVEN, NotGiven
from typing_extensions import Self, override

from . import _transport
from ._errors import (
    BaicaiError,
    HourlyLimitError,
    IncompleteStream,
    MissingCredentials,
    error_from_response,
    is_local_quota_body,
)
from ._quota import QuotaMode
from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy
from ._text import Text
from ._transport import _wire
from ._transport._metered import RAISE_STREAM_ERRORS, STREAM_SCANNED
from ._transport._wire import (
    ORIGINAL_STATUS_HEADER,
    RelayAnswer,
    RelayStreamError,
    SSEDecoder,
    SSEEvent,
    is_event_stream,
    parse_relay_error,
    parse_retry_after,
    redact,
)
from ._transport._wire import redact_value as _redact_value

if TYPE_CHECKING:
    from openai._models import FinalRequestOptions

    from ._keys import Credentials

__all__ = ["Baicai", "AsyncBaicai", "QuotaMode"]

TierChoice = Literal["free", "paid"]


# ----------------------------------------------------------------------------------------------------- helpers


def _content_type(response: httpx2.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _body_is_read(response: httpx2.Response) -> bool:
    try:
        response.content  # noqa: B018 - the property raises when the body was not read
    except httpx2.ResponseNotRead:
        return False
    return True


def _decoded(content: bytes) -> object:
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _with_relay_status(response: httpx2.Response, status: int) -> httpx2.Response:
    """A copy of a read 2xx response whose body is a relay error, with the code's documented status (for a client
    given an ``http_client`` without our transport; ours did this already).

    Then openai raises (instead of building an empty object) and its retry loop treats it like any error.
    The original status is kept in ``x-baicai-original-status`` (the same convention as ``_transport``).
    """
    skip = {"content-length", "content-encoding", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
    headers.append((ORIGINAL_STATUS_HEADER, str(response.status_code)))
    return httpx2.Response(
        status,
        headers=headers,
        content=response.content,
        request=response.request,
        extensions=response.extensions,
    )


_NOTHING_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


def _worth_reading(response: httpx2.Response) -> bool:
    """JSON or text (an error may hide there); never a binary download (audio, images, files)."""
    kind = _content_type(response)
    return not kind or kind.endswith("json") or kind.startswith("text/")


def _unretryable_failure(request: httpx2.Request, exc: httpx2.TransportError) -> openai.APIConnectionError:
    """The request may have reached the relay (and been charged): openai must not send it blindly again.

    openai re-raises its own exceptions without retrying, so the failure is converted here.
    """
    if isinstance(exc, httpx2.TimeoutException):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


class _StreamWatch:
    """What the client must know of a streamed reply as it passes: a relay error event (raised in its place) and
    whether ``data: [DONE]`` came.

    When our metered transport reads the stream already it hands its tally over (``STREAM_SCANNED``): it raises
    :class:`RelayStreamError` itself and knows ``done``, so the reply is scanned once. Otherwise (a user's own
    ``http_client``, a body already read) this scans with the one SSE decoder.
    """

    def __init__(self, tally: Any = None) -> None:
        self._tally = tally
        self._decoder = SSEDecoder() if tally is None else None
        self._done = False

    def feed(self, chunk: bytes) -> tuple[int, RelayAnswer] | None:
        """The first relay error event ``chunk`` completes, and where it starts in ``chunk``."""
        if self._decoder is None:
            return None
        for event in self._decoder.feed(chunk):
            found = self._take(event)
            if found is not None:
                return event.start, found
        return None

    def finish(self) -> RelayAnswer | None:
        """The stream ended: the relay error in an event it left open, if any."""
        if self._decoder is None:
            return None
        for event in self._decoder.flush():
            found = self._take(event)
            if found is not None:
                return found
        return None

    @property
    def done(self) -> bool:
        return bool(self._tally.done) if self._tally is not None else self._done

    def _take(self, event: SSEEvent) -> RelayAnswer | None:
        if event.is_done:
            self._done = True
        elif _wire.might_be_error(event.data):
            return parse_relay_error(event.json())
        return None


# Streams whose protocol ends with ``data: [DONE]``; others (the Responses API) end with an event of their own.
_DONE_PATHS = ("/chat/completions", "/completions")


def _expects_done(response: httpx2.Response) -> bool:
    try:
        return response.request.url.path.endswith(_DONE_PATHS)
    except RuntimeError:  # no request attached (hand-built responses in tests)
        return False


def _cut(response: httpx2.Response, watch: _StreamWatch, error: Exception | None = None) -> None:
    """Raise :class:`IncompleteStream` when a stream that should end with ``[DONE]`` did not (after its last chunk
    was yielded). ``error``: the transport error that cut it."""
    if error is None and (watch.done or not _expects_done(response)):
        return
    reason = type(error).__name__ if error is not None else ""
    raise IncompleteStream(request=response.request, reason=reason) from error


class _ScannedStream(httpx2.SyncByteStream):
    """Between an SSE answer's bytes and openai's decoder: a relay error event becomes the typed exception (after
    the bytes before it), and a stream cut before ``[DONE]`` raises :class:`IncompleteStream`."""

    def __init__(self, inner: httpx2.SyncByteStream, response: httpx2.Response, watch: _StreamWatch) -> None:
        self._inner, self._response, self._watch = inner, response, watch

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                found = self._watch.feed(chunk)
                if found is None:
                    yield chunk
                    continue
                if found[0]:
                    yield chunk[:found[0]]
                raise RelayStreamError(found[1])
            if (last := self._watch.finish()) is not None:
                raise RelayStreamError(last)
        except RelayStreamError as exc:
            raise _stream_error(self._response, exc.answer) from None
        except httpx2.TransportError as exc:
            _cut(self._response, self._watch, exc)
        _cut(self._response, self._watch)

    def close(self) -> None:
        self._inner.close()


class _AsyncScannedStream(httpx2.AsyncByteStream):
    """The async twin of :class:`_ScannedStream`."""

    def __init__(self, inner: httpx2.AsyncByteStream, response: httpx2.Response, watch: _StreamWatch) -> None:
        self._inner, self._response, self._watch = inner, response, watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                found = self._watch.feed(chunk)
                if found is None:
                    yield chunk
                    continue
                if found[0]:
                    yield chunk[:found[0]]
                raise RelayStreamError(found[1])
            if (last := self._watch.finish()) is not None:
                raise RelayStreamError(last)
        except RelayStreamError as exc:
            raise _stream_error(self._response, exc.answer) from None
        except httpx2.TransportError as exc:
            _cut(self._response, self._watch, exc)
        _cut(self._response, self._watch)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _scanned(response: httpx2.Response, *, is_async: bool) -> httpx2.Response:
    """``response`` (an SSE answer) with a scanner between its bytes and openai's SSE decoder.

    A body already read (mock transports, synthetic answers) is replayed through a fresh streaming response,
    because httpx2 serves a read body from memory and would bypass a wrapped stream.
    """
    if not _body_is_read(response):
        watch = _StreamWatch(response.extensions.get(STREAM_SCANNED))
        if is_async and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _AsyncScannedStream(response.stream, response, watch)
        elif not is_async and isinstance(response.stream, httpx2.SyncByteStream):
            response.stream = _ScannedStream(response.stream, response, watch)
        return response
    skip = {"content-length", "content-encoding", "transfer-encoding"}
    body = httpx2.ByteStream(response.content)
    scanner: _ScannedStream | _AsyncScannedStream
    scanner = (_AsyncScannedStream(body, response, _StreamWatch()) if is_async
               else _ScannedStream(body, response, _StreamWatch()))
    replay = httpx2.Response(
        response.status_code,
        headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip],
        stream=scanner,
        request=response.request,
        extensions=response.extensions,
    )
    scanner._response = replay  # errors point at the response openai holds
    return replay


def _stream_error(response: httpx2.Response, answer: RelayAnswer) -> BaicaiError:
    error = error_from_response(response, answer.raw, answer=answer)
    assert error is not None
    return error


def _ledger_retry_at(error: HourlyLimitError) -> float | None:
    """When the local ledger expects the error's window to free (``_usage`` windows), else None.

    The relay does not say; the ledger knows when the oldest counted request leaves the sliding hour.
    """
    try:
        from ._usage import UsageStore

        store = UsageStore()
    except Exception:  # the ledger is a refinement here, never a new failure
        return None
    try:
        candidates: list[float] = []
        tier = error.tier if error.tier in ("free", "paid") else None
        for window in store.windows(tier=tier):
            if window.family != error.family:
                continue
            for moment in (window.exhausted_until, window.next_free_at):
                if isinstance(moment, (int, float)):
                    candidates.append(float(moment))
        return max(candidates) if candidates else None
    except Exception:
        return None
    finally:
        store.close()  # one store per refusal: its connection must not outlive the answer


# ------------------------------------------------------------------------------------------------- the mixin


class _BaicaiOptions:
    """State and behaviour shared by the sync and async clients (no I/O here)."""

    credentials: Credentials
    profile: str | None
    tier: TierChoice | None
    _tier_choice: TierChoice | None
    quota: QuotaMode
    max_wait: float | None
    retry_policy: RetryPolicy

    def _setup(
        self,
        *,
        api_key: str | None,
        base_url: str | httpx2.URL | None,
        profile: str | None,
        tier: TierChoice | None,
        quota: QuotaMode,
        max_wait: float | None,
        retry_policy: RetryPolicy | None,
        credentials: Credentials | None,
        resolve: Mapping[str, Any] | None = None,
    ) -> Credentials:
        if quota not in ("wait", "raise", "off"):
            raise ValueError(Text(f"quota 只能是 wait、raise 或 off，而不是 {quota!r}",
                                  f"quota must be 'wait', 'raise' or 'off', not {quota!r}"))
        if tier not in (None, "free", "paid"):
            raise ValueError(Text(f"tier 只能是 free 或 paid，而不是 {tier!r}", f"tier must be 'free', 'paid' or None, not {tier!r}"))
        if credentials is None:
            from ._keys import MissingKeyError, resolve_credentials

            if resolve is not None:  # a copy: what the caller of copy() asked for, not what openai passes on
                api_key, base_url, profile = resolve["api_key"], resolve["base_url"], resolve["profile"]
            try:
                credentials = resolve_credentials(
                    api_key=api_key, base_url=str(base_url) if base_url is not None else None, profile=profile
                )
            except MissingKeyError as exc:
                raise MissingCredentials(str(exc)) from None
        self.credentials = credentials
        self.profile = profile if profile is not None else credentials.profile
        known_tier = credentials.tier if credentials.tier in ("free", "paid") else None
        self._tier_choice = tier  # what the caller chose; a copy with another profile re-derives the rest
        self.tier = tier if tier is not None else known_tier
        self.quota = quota
        self.max_wait = max_wait
        self.retry_policy = retry_policy or DEFAULT_RETRY_POLICY
        return credentials

    def _forget_openai_environment(
        self, organization: str | None, project: str | None, default_headers: Mapping[str, str] | None
    ) -> None:
        """Undo what openai took from ``OPENAI_*`` variables: those describe an OpenAI account, not the relay.

        ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` would be sent as headers, and an ``Authorization`` line in
        ``OPENAI_CUSTOM_HEADERS`` would replace our relay key with an OpenAI one. Explicit arguments still count.
        """
        client: Any = self
        if organization is None:
            client.organization = None
        if project is None:
            client.project = None
        explicit = {name.lower() for name in (default_headers or {})}
        if "authorization" not in explicit:
            client._custom_headers = {
                name: value for name, value in client._custom_headers.items() if name.lower() != "authorization"
            }

    def _transport_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "source": "sdk",
            "quota": self.quota,
            "tier": self.tier,
            "retry_policy": self.retry_policy,
        }
        if self.max_wait is not None:
            options["max_wait"] = self.max_wait
        return options

    def _copy_plan(
        self,
        *,
        api_key: str | None,
        base_url: str | httpx2.URL | None,
        profile: str | None | NotGiven,
        tier: TierChoice | None | NotGiven,
        quota: QuotaMode | NotGiven,
        max_wait: float | None | NotGiven,
        retry_policy: RetryPolicy | NotGiven,
    ) -> tuple[dict[str, Any], bool]:
        """The Baicai keyword arguments for a copy, and whether its metering settings or credentials differ.

        openai's ``copy`` always passes the current key and URL on; ``_resolve`` says what the caller really
        changed, so a new ``profile`` resolves afresh and an unchanged client keeps its credentials (no warnings).
        """
        extras: dict[str, Any] = {
            "profile": self.profile if isinstance(profile, NotGiven) else profile,
            "tier": self._tier_choice if isinstance(tier, NotGiven) else tier,
            "quota": self.quota if isinstance(quota, NotGiven) else quota,
            "max_wait": self.max_wait if isinstance(max_wait, NotGiven) else max_wait,
            "retry_policy": self.retry_policy if isinstance(retry_policy, NotGiven) else retry_policy,
        }
        new_profile = not isinstance(profile, NotGiven)
        if api_key is None and base_url is None and not new_profile:
            extras["_credentials"] = self.credentials
        else:
            extras["_resolve"] = {
                "api_key": api_key or (None if new_profile else self.credentials.key),
                "base_url": str(base_url) if base_url is not None else None if new_profile else self.credentials.base_url,
                "profile": profile if new_profile else None,
            }
        metering_changed = any(not isinstance(v, NotGiven) for v in (tier, quota, max_wait, retry_policy))
        return extras, metering_changed or "_resolve" in extras

    # -- classification, shared by both clients

    def _relay_rewrite(self, response: httpx2.Response) -> httpx2.Response:
        """After the body of a 2xx non-SSE answer is read: a relay error in it gets the code's documented status."""
        content = response.content
        if not _wire.might_be_error(content):
            return response  # a success body: no need to decode it twice
        verdict = _wire.classify(response.status_code, content)
        return _with_relay_status(response, verdict.status) if verdict.rewritten else response

    def _policy_says_retry(self, response: httpx2.Response) -> bool | None:
        """The policy's verdict for an error answer, or None to leave the choice to openai (OpenAI's own errors)."""
        if response.headers.get(_wire.SHOULD_RETRY_HEADER) in ("true", "false"):
            return None  # the metering transport already applied the policy
        if not _body_is_read(response):
            return None
        body = _decoded(response.content)
        if is_local_quota_body(body):
            return False
        answer = parse_relay_error(body)
        if answer is None:
            return None
        if not self.retry_policy.should_retry(relay_code=answer.code, status=response.status_code):
            return False
        retry_after = parse_retry_after(response.headers)
        return retry_after is None or retry_after <= self.retry_policy.max_retry_after  # else: give up, don't stall

    def _retry_delay(self, attempt: int, headers: httpx2.Headers | None) -> float:
        retry_after = parse_retry_after(headers) if headers is not None else None
        return self.retry_policy.delay(attempt, retry_after)

    def _status_error(self, response: httpx2.Response, body: object) -> BaicaiError | None:
        error = error_from_response(response, body)
        if isinstance(error, HourlyLimitError) and error.retry_at is None and error.relay_code != 0:
            error.retry_at = _ledger_retry_at(error)
        return error

    def _describe(self) -> str:
        return (
            f"base_url={str(self.credentials.base_url)!r}, key={self.credentials.masked!r}, "
            f"tier={self.tier!r}, quota={self.quota!r}"
        )


# ---------------------------------------------------------------------------------------------------- clients


class Baicai(_BaicaiOptions, openai.OpenAI):
    """``openai.OpenAI`` for the BaicaiGPT relay: relay credentials and URL, typed relay errors, metering.

    Usage::

        client = Baicai()                                  # key from BAICAI_API_KEY or the active profile
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "你好"}])

    ``quota``: ``"wait"`` (sleep until the hourly window frees, up to ``max_wait`` s), ``"raise"`` (raise
    ``QuotaExceeded`` with ``retry_at`` before sending) or ``"off"``. ``tier`` overrides what the profile says.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx2.URL | None = None,
        profile: str | None = None,
        tier: TierChoice | None = None,
        quota: QuotaMode = "wait",
        max_wait: float | None = None,
        retry_policy: RetryPolicy | None = None,
        organization: str | None = None,
        project: str | None = None,
        websocket_base_url: str | httpx2.URL | None = None,
        timeout: float | Timeout | None | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        http_client: httpx2.Client | None = None,
        _strict_response_validation: bool = False,
        _credentials: Credentials | None = None,
        _resolve: Mapping[str, Any] | None = None,
        _fresh_http_client: bool = False,
        **openai_options: Any,
    ) -> None:
        credentials = self._setup(
            api_key=api_key, base_url=base_url, profile=profile, tier=tier, quota=quota, max_wait=max_wait,
            retry_policy=retry_policy, credentials=_credentials, resolve=_resolve,
        )
        for ignored in ("workload_identity", "provider", "data_residency", "admin_api_key"):
            openai_options.pop(ignored, None)  # relay keys only: no OpenAI identity or admin key travels there
        if http_client is None or _fresh_http_client:
            http_client = self._build_http_client(credentials.base_url, timeout)
        super().__init__(
            api_key=credentials.key,
            base_url=credentials.base_url,
            organization=organization,
            project=project,
            websocket_base_url=websocket_base_url,
            timeout=timeout,
            max_retries=self.retry_policy.max_retries if max_retries is None else max_retries,
            default_headers=default_headers,
            default_query=default_query,
            http_client=http_client,
            _strict_response_validation=_strict_response_validation,
            **openai_options,
        )
        self._forget_openai_environment(organization, project, default_headers)

    def _build_http_client(
        self,
        base_url: str,
        timeout: float | Timeout | None | NotGiven,
    ) -> httpx2.Client:
        """The default client: openai's, with the metering transport (whose default inner transport routes each
        request through the proxy the environment names, as httpx2 itself would)."""
        return SyncHttpxClientWrapper(
            base_url=base_url,
            timeout=DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else timeout,
            transport=_transport.MeteredTransport(**self._transport_options()),
        )

    @override
    def copy(  # type: ignore[override]
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx2.URL | None = None,
        profile: str | None | NotGiven = NOT_GIVEN,
        tier: TierChoice | None | NotGiven = NOT_GIVEN,
        quota: QuotaMode | NotGiven = NOT_GIVEN,
        max_wait: float | None | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | NotGiven = NOT_GIVEN,
        _extra_kwargs: Mapping[str, Any] = {},
        **openai_options: Any,
    ) -> Self:
        """A new client with the same options (Baicai's included), some overridden; shares the HTTP client.

        Changing ``quota``/``tier``/``max_wait``/``retry_policy`` on a client whose HTTP client we built gives
        the copy its own metered HTTP client, so the new settings take effect.
        """
        extras, changed = self._copy_plan(
            api_key=api_key, base_url=base_url, profile=profile, tier=tier, quota=quota, max_wait=max_wait,
            retry_policy=retry_policy,
        )
        if changed and openai_options.get("http_client") is None and self._owns_http_client():
            extras["_fresh_http_client"] = True  # our metered client carries the old settings
        return super().copy(
            _extra_kwargs={**extras, **_extra_kwargs},
            **openai_options,
        )

    with_options = copy  # type: ignore[assignment]

    def _owns_http_client(self) -> bool:
        transport = getattr(self._client, "_transport", None)
        return isinstance(transport, _transport.MeteredTransport)

    @override
    def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        request.extensions[RAISE_STREAM_ERRORS] = True  # our transport scans a stream once, for both of us
        try:
            response = super()._send_request(request, stream=stream, **kwargs)
        except _NOTHING_SENT:
            raise  # nothing reached the relay: openai's loop retries it
        except httpx2.TransportError as exc:
            if request.method in ("GET", "HEAD"):
                raise
            raise _unretryable_failure(request, exc) from exc
        if is_event_stream(response.headers):
            return _scanned(response, is_async=False) if response.is_success else response
        if response.is_success and response.status_code != 204 and _worth_reading(response):
            response.read()  # a JSON answer (also to stream=True): small, and it may be an error in disguise
            return self._relay_rewrite(response)
        if not response.is_success and _worth_reading(response):
            response.read()  # error bodies are small; reading now lets the retry decision see the code
        return response

    @override
    def _should_retry(self, response: httpx2.Response) -> bool:
        verdict = self._policy_says_retry(response)
        return super()._should_retry(response) if verdict is None else verdict

    @override
    def _calculate_retry_timeout(
        self, remaining_retries: int, options: FinalRequestOptions, response_headers: httpx2.Headers | None = None
    ) -> float:
        attempt = options.get_max_retries(self.max_retries) - remaining_retries
        return self._retry_delay(attempt, response_headers)

    @override
    def _make_status_error(self, err_msg: str, *, body: object, response: httpx2.Response) -> openai.APIStatusError:
        error = self._status_error(response, body)
        if error is not None:
            return error
        return super()._make_status_error(redact(err_msg), body=_redact_value(body), response=response)

    def __repr__(self) -> str:
        return f"Baicai({self._describe()})"


class AsyncBaicai(_BaicaiOptions, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` for the BaicaiGPT relay; the async twin of :class:`Baicai` (same options)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx2.URL | None = None,
        profile: str | None = None,
        tier: TierChoice | None = None,
        quota: QuotaMode = "wait",
        max_wait: float | None = None,
        retry_policy: RetryPolicy | None = None,
        organization: str | None = None,
        project: str | None = None,
        websocket_base_url: str | httpx2.URL | None = None,
        timeout: float | Timeout | None | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        _strict_response_validation: bool = False,
        _credentials: Credentials | None = None,
        _resolve: Mapping[str, Any] | None = None,
        _fresh_http_client: bool = False,
        **openai_options: Any,
    ) -> None:
        credentials = self._setup(
            api_key=api_key, base_url=base_url, profile=profile, tier=tier, quota=quota, max_wait=max_wait,
            retry_policy=retry_policy, credentials=_credentials, resolve=_resolve,
        )
        for ignored in ("workload_identity", "provider", "data_residency", "admin_api_key"):
            openai_options.pop(ignored, None)  # relay keys only: no OpenAI identity or admin key travels there
        if http_client is None or _fresh_http_client:
            http_client = self._build_http_client(credentials.base_url, timeout)
        super().__init__(
            api_key=credentials.key,
            base_url=credentials.base_url,
            organization=organization,
            project=project,
            websocket_base_url=websocket_base_url,
            timeout=timeout,
            max_retries=self.retry_policy.max_retries if max_retries is None else max_retries,
            default_headers=default_headers,
            default_query=default_query,
            http_client=http_client,
            _strict_response_validation=_strict_response_validation,
            **openai_options,
        )
        self._forget_openai_environment(organization, project, default_headers)

    def _build_http_client(
        self,
        base_url: str,
        timeout: float | Timeout | None | NotGiven,
    ) -> httpx2.AsyncClient:
        """The async twin of :meth:`Baicai._build_http_client`."""
        return AsyncHttpxClientWrapper(
            base_url=base_url,
            timeout=DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else timeout,
            transport=_transport.AsyncMeteredTransport(**self._transport_options()),
        )

    @override
    def copy(  # type: ignore[override]
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx2.URL | None = None,
        profile: str | None | NotGiven = NOT_GIVEN,
        tier: TierChoice | None | NotGiven = NOT_GIVEN,
        quota: QuotaMode | NotGiven = NOT_GIVEN,
        max_wait: float | None | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | NotGiven = NOT_GIVEN,
        _extra_kwargs: Mapping[str, Any] = {},
        **openai_options: Any,
    ) -> Self:
        """A new client with the same options (Baicai's included), some overridden; see :meth:`Baicai.copy`."""
        extras, changed = self._copy_plan(
            api_key=api_key, base_url=base_url, profile=profile, tier=tier, quota=quota, max_wait=max_wait,
            retry_policy=retry_policy,
        )
        if changed and openai_options.get("http_client") is None and self._owns_http_client():
            extras["_fresh_http_client"] = True  # our metered client carries the old settings
        return super().copy(
            _extra_kwargs={**extras, **_extra_kwargs},
            **openai_options,
        )

    with_options = copy  # type: ignore[assignment]

    def _owns_http_client(self) -> bool:
        transport = getattr(self._client, "_transport", None)
        return isinstance(transport, _transport.AsyncMeteredTransport)

    @override
    async def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        request.extensions[RAISE_STREAM_ERRORS] = True  # our transport scans a stream once, for both of us
        try:
            response = await super()._send_request(request, stream=stream, **kwargs)
        except _NOTHING_SENT:
            raise  # nothing reached the relay: openai's loop retries it
        except httpx2.TransportError as exc:
            if request.method in ("GET", "HEAD"):
                raise
            raise _unretryable_failure(request, exc) from exc
        if is_event_stream(response.headers):
            return _scanned(response, is_async=True) if response.is_success else response
        if response.is_success and response.status_code != 204 and _worth_reading(response):
            await response.aread()
            return self._relay_rewrite(response)
        if not response.is_success and _worth_reading(response):
            await response.aread()
        return response

    @override
    def _should_retry(self, response: httpx2.Response) -> bool:
        verdict = self._policy_says_retry(response)
        return super()._should_retry(response) if verdict is None else verdict

    @override
    def _calculate_retry_timeout(
        self, remaining_retries: int, options: FinalRequestOptions, response_headers: httpx2.Headers | None = None
    ) -> float:
        attempt = options.get_max_retries(self.max_retries) - remaining_retries
        return self._retry_delay(attempt, response_headers)

    @override
    def _make_status_error(self, err_msg: str, *, body: object, response: httpx2.Response) -> openai.APIStatusError:
        error = self._status_error(response, body)
        if error is not None:
            return error
        return super()._make_status_error(redact(err_msg), body=_redact_value(body), response=response)

    def __repr__(self) -> str:
        return f"AsyncBaicai({self._describe()})"
