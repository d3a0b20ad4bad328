"""Split's SDK API as a plan source, over an ``httpx.AsyncClient``.

The caller owns the client (and so its transport): a real network client on
the command line, a transport over the runtime's ``fetch`` in the Worker, a
loopback server in the tests. Every request goes through ``_get``, which
spends the run's budget, retries what is worth retrying and turns every other
answer into one of ``sync.errors``.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
from typing import Any

import httpx

from sync.budget import Budget
from sync.errors import (
    AuthError,
    BadResponse,
    FetchError,
    RequestError,
    SpecRejected,
)
from worker.inputs import parse_json
from worker.settings import DEFAULT_SDK_URL
from worker.splitdata import (
    Changes,
    DataError,
    SegmentChanges,
    parse_segment_changes,
    parse_split_changes,
)

__all__ = ["RetryPolicy", "SplitApi"]

logger = logging.getLogger("flagedge.sync")

SDK_VERSION = "python-flagedge-0.1.0"


class RetryPolicy:
    """Capped exponential backoff with jitter, honouring ``Retry-After``."""

    def __init__(
        self,
        attempts: int = 4,
        base_s: float = 0.5,
        cap_s: float = 8.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.attempts = attempts
        self.base_s = base_s
        self.cap_s = cap_s
        self.request_timeout_s = request_timeout_s

    def delay(self, attempt: int, jitter: float) -> float:
        """Delay before retry number ``attempt`` (1-based); ``jitter`` in [0, 1)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return float(ceiling / 2 + ceiling / 2 * jitter)


def _retry_after(response: httpx.Response, now: float) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class SplitApi:
    """``splitChanges`` and ``segmentChanges`` with retries and validation."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        sdk_key: str,
        *,
        sdk_url: str = DEFAULT_SDK_URL,
        flag_sets: tuple[str, ...] = (),
        spec: str = "1.3",
        retry: RetryPolicy | None = None,
    ) -> None:
        if not sdk_key:
            raise ValueError("SplitApi needs an SDK key (SPLIT_SDK_KEY)")
        self._client = client
        self._key = sdk_key
        self.sdk_url = sdk_url.rstrip("/")
        self.flag_sets = flag_sets
        self.spec = spec
        self.retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"SplitApi(sdk_url={self.sdk_url!r}, flag_sets={self.flag_sets!r}, sdk_key='***')"

    @property
    def is_proxy(self) -> bool:
        """True when talking to something other than Split's own SDK API."""
        return self.sdk_url != DEFAULT_SDK_URL.rstrip("/")

    async def fingerprint(self) -> str:
        """Changes when the key, the flag-set filter or the spec changes."""
        material = "\0".join(("api", self._key, ",".join(self.flag_sets), self.spec))
        return hashlib.sha256(material.encode()).hexdigest()

    async def split_changes(
        self, since: int, rb_since: int, budget: Budget, *, spec: str | None = None
    ) -> Changes:
        spec = spec or self.spec
        params: dict[str, Any] = {"s": spec, "since": since}
        if spec == "1.3":
            params["rbSince"] = rb_since
        if self.flag_sets:
            params["sets"] = ",".join(self.flag_sets)
        doc = await self._get("/splitChanges", params, budget, spec=spec)
        try:
            changes = parse_split_changes(doc)
        except DataError as error:
            raise BadResponse(f"splitChanges answer rejected: {error}") from error
        if spec != "1.3":
            # Older specs know no rule-based segments: keep their cursor as is.
            changes = Changes(
                changes.flags, changes.ff_since, changes.ff_till, [], rb_since, rb_since
            )
        return changes

    async def segment_changes(self, name: str, since: int, budget: Budget) -> SegmentChanges:
        doc = await self._get(f"/segmentChanges/{name}", {"since": since}, budget)
        try:
            return parse_segment_changes(doc, name)
        except DataError as error:
            raise BadResponse(f"segmentChanges answer rejected: {error}") from error

    async def _get(
        self, path: str, params: dict[str, Any], budget: Budget, *, spec: str | None = None
    ) -> Any:
        url = self.sdk_url + path
        headers = {
            "Authorization": f"Bearer {self._key}",
            "SplitSDKVersion": SDK_VERSION,
            "Accept": "application/json",
        }
        last_problem = ""
        for attempt in range(1, self.retry.attempts + 1):
            budget.take()
            timeout = max(0.1, min(self.retry.request_timeout_s, budget.remaining_seconds))
            wait: float | None = None
            try:
                response = await self._client.get(
                    url, params=params, headers=headers, timeout=timeout
                )
                body = response.content
            except httpx.TimeoutException:
                last_problem = f"timed out after {timeout:.1f}s"
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}: {error or 'connection failed'}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return parse_json(body, max_depth=64)
                    except (
                        ValueError,
                        RecursionError,
                    ) as error:  # bad JSON, bad UTF-8, nested too deep
                        raise BadResponse(
                            f"GET {path} answered 200 with a body that is not JSON ({error})"
                        ) from error
                if status in (401, 403):
                    raise AuthError(
                        f"Split refused the SDK key (HTTP {status} on GET {path}): check that "
                        "SPLIT_SDK_KEY is a server-side SDK key of this environment; a "
                        "client-side (browser) key cannot download the rollout plan"
                    )
                if status == 414:
                    raise RequestError(
                        f"Split answered 414 to GET {path}: the URL is too long, which means too "
                        f"many flag sets ({len(self.flag_sets)}); sync fewer sets"
                    )
                if status == 400 and spec == "1.3" and self.is_proxy:
                    raise SpecRejected(f"{self.sdk_url} answered 400 to spec 1.3")
                if status == 429 or status >= 500:
                    last_problem = f"HTTP {status}"
                    wait = _retry_after(response, budget.clock())
                else:
                    excerpt = body[:200].decode("utf-8", "replace")
                    raise RequestError(f"GET {path} answered HTTP {status}: {excerpt}")

            if attempt == self.retry.attempts:
                break
            delay = self.retry.delay(attempt, budget.random())
            if wait is not None:
                delay = max(delay, wait)
            if delay >= budget.remaining_seconds:
                raise FetchError(
                    f"GET {path} failed ({last_problem}) and a retry in {delay:.1f}s would "
                    f"outlast the run's time budget"
                )
            logger.debug("GET %s: %s; retry %d in %.2fs", path, last_problem, attempt, delay)
            await budget.sleep(delay)
        raise FetchError(f"GET {path} failed {self.retry.attempts} times; last: {last_problem}")
