"""Fakes of the edges: tenants, the SQS queues and the HTTP fetcher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.models import FanoutMessage, WorkMessage
from scrapersky.ports import Clock, Fetcher, HopCheck, Sink, TenantStore, WorkQueue
from scrapersky.records import TenantRecord

from tests.fakes.recording import Recorder, recorded

MAX_DELAY_S = 900  # SQS DelaySeconds
MAX_VISIBILITY_S = 43_199  # SQS: 12 h


class FakeTenantStore(Recorder, TenantStore):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: dict[str, TenantRecord] = {}
        self.by_hash: dict[str, TenantRecord] = {}

    @recorded
    def put_tenant(self, tenant_id: str, name: str, role: str, key_hash: str, now: float) -> None:
        self.tenants[tenant_id] = self.by_hash[key_hash] = TenantRecord(tenant_id, name, role)

    @recorded
    def by_key_hash(self, key_hash: str) -> TenantRecord | None:
        return self.by_hash.get(key_hash)


@dataclass(frozen=True)
class SentWork:
    message: WorkMessage
    delay_s: int


class FakeQueue(Recorder, WorkQueue):
    """Messages go through their JSON bodies, as on SQS: what a consumer gets is a copy, never the sender's object."""

    def __init__(self) -> None:
        super().__init__()
        self.fanout: list[FanoutMessage] = []
        self.fanout_delays: list[int] = []  # the delay each fan-out message was sent with, in order
        self.work: list[SentWork] = []
        self.visibility: list[tuple[str, int]] = []  # (receipt handle, seconds)

    @recorded
    def send_fanout(self, messages: list[FanoutMessage], delay_s: int = 0) -> None:
        self.fanout.extend(FanoutMessage.model_validate_json(m.model_dump_json(exclude_none=True)) for m in messages)
        self.fanout_delays.extend([min(MAX_DELAY_S, max(0, int(delay_s)))] * len(messages))

    @recorded
    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None:
        delay = min(MAX_DELAY_S, max(0, int(delay_s)))
        self.work.extend(SentWork(WorkMessage.model_validate_json(m.model_dump_json()), delay) for m in messages)

    @recorded
    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.visibility.append((receipt_handle, max(0, min(MAX_VISIBILITY_S, int(seconds)))))

    # ---- for tests --------------------------------------------------------------------------------------------
    def pop_fanout(self) -> list[FanoutMessage]:
        """The fan-out messages sent so far, in order; the queue forgets them (they were received)."""
        out, self.fanout, self.fanout_delays = self.fanout, [], []
        return out

    def pop_work(self) -> list[WorkMessage]:
        out, self.work = self.work, []
        return [w.message for w in out]

    def pop_work_sent(self) -> list[SentWork]:
        """Like pop_work, with each message's delay."""
        out, self.work = self.work, []
        return out


@dataclass(frozen=True)
class FetchCall:
    url: str
    proxy_url: str | None
    timeout_s: float
    max_bytes: int


@dataclass(frozen=True)
class Streamed:
    """A scripted answer with a body, for fetch_stream: `hops` are the redirects on the way (each asked first)."""

    body: bytes = b""
    status: int = 200
    hops: tuple[str, ...] = ()
    retry_after: str | None = None
    cut: FetchFailure | None = None  # the body is fed, then the fetch ends with this failure (e.g. its deadline)


Fetched = FetchResponse | FetchFailure | Streamed
Answer = Fetched | BaseException | Callable[[FetchCall], Fetched] | list["Fetched | BaseException"]


class UnscriptedFetch(AssertionError):
    """The code under test fetched a URL the test gave no answer for (or used up its answers)."""


class FakeFetcher(Recorder, Fetcher):
    """Answers scripted per URL: a response or a failure (every time), an exception (raised), a callable of the
    call, or a list used up in order. `probes` scripts `probe` per proxy URL (default: the proxy answers).
    With a clock, each fetch takes `takes_s` on it."""

    def __init__(
        self,
        answers: Mapping[str, Answer] | None = None,
        *,
        default: Answer | None = None,
        probes: Mapping[str, bool | list[bool]] | None = None,
        clock: Clock | None = None,
        takes_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.answers: dict[str, Answer] = {u: list(a) if isinstance(a, list) else a for u, a in (answers or {}).items()}
        self.default = default
        self.probes: dict[str, bool | list[bool]] = dict(probes or {})
        self.clock = clock
        self.takes_s = takes_s
        self.fetches: list[FetchCall] = []
        self.probed: list[str] = []

    def script(self, url: str, answer: Answer) -> None:
        self.answers[url] = list(answer) if isinstance(answer, list) else answer

    @recorded
    def fetch(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> FetchResponse | FetchFailure:
        answer = self._answer(url, proxy_url, timeout_s, max_bytes)
        if isinstance(answer, Streamed):
            return FetchResponse(answer.status, (answer.hops or (url,))[-1], None, len(answer.body), 12)
        return answer

    @recorded
    def fetch_stream(
        self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int, sink: Sink, on_hop: HopCheck
    ) -> FetchResponse | FetchFailure:
        answer = self._answer(url, proxy_url, timeout_s, max_bytes)
        if not isinstance(answer, Streamed):
            return answer
        for hop in answer.hops:
            if not on_hop(hop):
                return FetchFailure("redirect_refused", "a redirect to a URL not to be fetched", permanent=True)
        final = (answer.hops or (url,))[-1]
        fed = 0
        if 200 <= answer.status < 300:
            for start in range(0, min(len(answer.body), max_bytes), 16_384):
                chunk = answer.body[start : min(start + 16_384, max_bytes)]
                fed += len(chunk)
                if not sink(chunk):
                    break
        if answer.cut is not None:
            return answer.cut
        return FetchResponse(answer.status, final, None, fed, 12, retry_after=answer.retry_after)

    def _answer(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> Fetched:
        call = FetchCall(url, proxy_url, timeout_s, max_bytes)
        self.fetches.append(call)
        if self.clock is not None and self.takes_s:
            self.clock.sleep(self.takes_s)
        answer = self.answers.get(url, self.default)
        if isinstance(answer, list):
            if not answer:
                raise UnscriptedFetch(f"FakeFetcher: the answers scripted for {url} are used up")
            answer = answer.pop(0)
        if answer is None:
            raise UnscriptedFetch(f"FakeFetcher: no answer scripted for {url}")
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, FetchResponse | FetchFailure | Streamed):
            return answer
        return answer(call)

    @recorded
    def probe(self, proxy_url: str) -> bool:
        self.probed.append(proxy_url)
        scripted = self.probes.get(proxy_url, True)
        if isinstance(scripted, list):
            return scripted.pop(0) if scripted else True
        return scripted


def page(
    url: str,
    status: int = 200,
    *,
    title: str | None = "A page",
    retry_after: str | None = None,
    content_type: str = "text/html",
    elapsed_ms: int = 12,
) -> FetchResponse:
    """A target's answer to script: `page(url)` is a 200 with a title; `page(url, 429, retry_after="30")`."""
    return FetchResponse(
        status_code=status,
        final_url=url,
        content_type=content_type,
        bytes=1024,
        elapsed_ms=elapsed_ms,
        summary={"title": title},
        retry_after=retry_after,
    )


def failure(code: str = "connect_error", *, proxy_fault: bool = False, permanent: bool = False) -> FetchFailure:
    return FetchFailure(code, f"{code} (scripted)", proxy_fault=proxy_fault, permanent=permanent)
