"""EventBridge grants follow the code like the queue and table grants (test_policies.py walks the same call graph):
only a function whose code reaches `EventBus.put` may call events:PutEvents, and only on the default bus."""

from __future__ import annotations

import ast

import pytest

from tests.template.test_policies import FUNCTIONS, MODULES, Node, _calls, roots_of


def _event_grants(function: str) -> list[dict]:
    return [
        st
        for policy in FUNCTIONS[function]["Properties"].get("Policies") or []
        for st in (policy.get("Statement", []) if isinstance(policy, dict) else [])
        if any(
            str(a).startswith("events:") for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        )
    ]


def _puts_events(function: str) -> bool:
    """The function's code reaches `.bus.put(...)` (EventBus.put: EventBridge PutEvents)."""
    seen: set[Node] = set()
    todo = list(roots_of(function))
    while todo:
        node = todo.pop()
        if node in seen or node[0] not in MODULES:
            continue
        seen.add(node)
        fn = MODULES[node[0]].functions.get(node[1])
        for n in ast.walk(fn) if fn is not None else []:
            f = n.func if isinstance(n, ast.Call) else None
            bus = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) and f.value.attr == "bus"
            if bus and f.attr == "put":  # type: ignore[union-attr]
                return True
        todo.extend(_calls(node)[0] - seen)
    return False


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_only_a_function_whose_code_puts_events_may_put_them_and_only_on_the_default_bus(function):
    grants = _event_grants(function)
    assert bool(grants) == _puts_events(function), (function, grants)
    for st in grants:
        assert st["Action"] == "events:PutEvents", st
        assert st["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
        }


def test_the_events_consumer_is_the_one_that_puts_events():
    assert _puts_events("EventsFunction")
    assert not _puts_events("WorkerFunction")
