"""In-memory fakes of every port, faithful to the port contracts, for unit tests of the use cases.

Each fake subclasses its port, records the calls made to it (`calls`, `calls_to(name)`) and takes injected
faults (`fail_next(name, exc, after=False)`). `make_deps()` wires them all into a `Deps`."""

from tests.fakes.batches import FakeBatchStore, Shard
from tests.fakes.clock import EPOCH, FakeClock
from tests.fakes.deps import FakeDeps, make_deps, make_settings
from tests.fakes.edges import (
    FakeFetcher,
    FakeQueue,
    FakeTenantStore,
    FetchCall,
    SentWork,
    Streamed,
    UnscriptedFetch,
    failure,
    page,
)
from tests.fakes.items import FakeItemStore
from tests.fakes.proxies import FakeHostBook, FakeProxyPool, Released, StoredProxy
from tests.fakes.recording import Call, Recorder
from tests.fakes.records import batch_id, batch_record
from tests.fakes.results import FakeResultStore
from tests.fakes.sweeps import FakeSweeps

__all__ = [
    "EPOCH",
    "Call",
    "FakeBatchStore",
    "FakeClock",
    "FakeDeps",
    "FakeFetcher",
    "FakeHostBook",
    "FakeItemStore",
    "FakeProxyPool",
    "FakeQueue",
    "FakeResultStore",
    "FakeSweeps",
    "FakeTenantStore",
    "FetchCall",
    "Recorder",
    "Released",
    "SentWork",
    "Shard",
    "StoredProxy",
    "Streamed",
    "UnscriptedFetch",
    "batch_id",
    "batch_record",
    "failure",
    "make_deps",
    "make_settings",
    "page",
]
