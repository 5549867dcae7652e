"""Every queue a function's code can send to is in that function's IAM policy.

The local stack does not enforce IAM, so a missing `SQSSendMessagePolicy` only shows on AWS (the worker's
group hand-over sending to the fan-out queue was AccessDenied there). This test follows each function's code
statically: template function -> functions/<dir>/app.py -> its entry point in scrapersky.entrypoints -> the
routes or record handlers it serves -> every function they call, across the shared package's modules. A call
of `queue.send_fanout`, `queue.send_work` or `queue.change_visibility` on any path needs that queue."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT

PKG = ROOT / "layers" / "scrapersky" / "scrapersky"
T = load_template((ROOT / "template.yaml").read_text())
FUNCTIONS = {k: v for k, v in T["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
SENDS = {"send_fanout": ("FanoutQueue", "sqs:SendMessage"), "send_work": ("WorkQueue", "sqs:SendMessage")}
SENDS["change_visibility"] = ("WorkQueue", "sqs:ChangeMessageVisibility")

Node = tuple[str, str]  # (module, qualified function name)


def _module_name(path: Path) -> str:
    return ".".join(("scrapersky", *path.relative_to(PKG).with_suffix("").parts)).removesuffix(".__init__")


class _Module:
    """One module of the package: its functions (methods as Class.name), what each calls, what it imports."""

    def __init__(self, path: Path) -> None:
        self.name = _module_name(path)
        self.tree = ast.parse(path.read_text())
        self.imports: dict[str, Node | str] = {}  # local name -> (module, function) or a module
        self.functions: dict[str, ast.AST] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scrapersky"):
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        self.functions[f"{node.name}.{item.name}"] = item


MODULES = {m.name: m for m in (_Module(p) for p in PKG.rglob("*.py"))}


def _target(module: _Module, local: str, attr: str | None) -> Iterator[Node]:
    """What a call `local(...)` or `local.attr(...)` in this module may reach."""
    imported = module.imports.get(local)
    if attr is None:
        if local in module.functions:
            yield module.name, local
        elif isinstance(imported, tuple):
            yield imported
        return
    if isinstance(imported, tuple) and f"{imported[0]}.{imported[1]}" in MODULES:  # `from pkg import module`
        yield f"{imported[0]}.{imported[1]}", attr
    # a method called on an object of this module's classes (self._x(), delivery.run())
    for qual in module.functions:
        if qual.endswith(f".{attr}"):
            yield module.name, qual


def _calls(node: Node) -> tuple[set[Node], set[str]]:
    module = MODULES[node[0]]
    fn = module.functions.get(node[1])
    reached: set[Node] = set()
    sends: set[str] = set()
    if fn is None:
        return reached, sends
    for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
        f = call.func
        if isinstance(f, ast.Attribute) and f.attr in SENDS:
            sends.add(f.attr)
        if isinstance(f, ast.Name):
            reached.update(_target(module, f.id, None))
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            reached.update(_target(module, f.value.id, f.attr))
    return reached, sends


def sends_of(roots: set[Node]) -> set[str]:
    seen: set[Node] = set()
    todo = list(roots)
    sends: set[str] = set()
    while todo:
        node = todo.pop()
        if node in seen or node[0] not in MODULES:
            continue
        seen.add(node)
        reached, found = _calls(node)
        sends |= found
        todo.extend(reached - seen)
    return sends


def roots_of(function: str) -> set[Node]:
    """The code a template function runs: its entry point's routes or record handlers."""
    app = ROOT / FUNCTIONS[function]["Properties"]["CodeUri"] / "app.py"
    handler = next(
        a.name for n in ast.walk(ast.parse(app.read_text())) if isinstance(n, ast.ImportFrom) for a in n.names
    )
    entry = MODULES["scrapersky.entrypoints"]
    if handler in entry.functions:
        return {(entry.name, handler)}
    assign = next(
        n
        for n in entry.tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == handler for t in n.targets)
    )
    args = {a.id for a in assign.value.args if isinstance(a, ast.Name)}  # type: ignore[attr-defined]
    roots = {(entry.name, a) for a in args if a in entry.functions}
    routes = MODULES["scrapersky.api.routes"]
    for name, fn in routes.functions.items():
        decorators = [d.func.value.id for d in fn.decorator_list if isinstance(d, ast.Call)]  # type: ignore[attr-defined]
        if set(decorators) & args:
            roots.add((routes.name, name))
    return roots


def allowed(function: str) -> set[tuple[str, str]]:
    """(queue, action) pairs the function's policies grant."""
    out: set[tuple[str, str]] = set()
    for policy in FUNCTIONS[function]["Properties"].get("Policies") or []:
        if "SQSSendMessagePolicy" in policy:
            out.add((policy["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0], "sqs:SendMessage"))
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            queues = [r["Fn::GetAtt"][0] for r in resources if isinstance(r, dict) and "Fn::GetAtt" in r]
            out |= {(q, a) for a in actions for q in queues}
    return out


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_queue_a_function_sends_to_is_in_its_policy(function):
    needed = {SENDS[s] for s in sends_of(roots_of(function))}
    missing = needed - allowed(function)
    assert not missing, f"{function} can call {sorted(missing)} on some code path but its policy does not allow it"


def test_the_call_graph_sees_the_sends_it_must_see():
    # guards the guard: if the static walk lost track of the code, every function would pass vacuously
    assert sends_of(roots_of("FanoutFunction")) >= {"send_work", "send_fanout"}
    assert "change_visibility" in sends_of(roots_of("WorkerFunction"))
    assert sends_of(roots_of("BatchesFunction")) == {"send_fanout"}
    assert sends_of(roots_of("StatusFunction")) == set()
    assert sends_of(roots_of("ScrapeFunction")) == set()


def test_the_longest_fetch_an_item_may_ask_for_fits_in_the_worker_timeout():
    # the worker hands a record back untouched when less than timeout_s + 10 s remain; an item allowed a
    # longer fetch than the function's timeout leaves room for would go back forever and never run
    from scrapersky.models import BatchOptions
    from scrapersky.services.worker import TIME_GUARD_S

    longest = next(m.le for m in BatchOptions.model_fields["timeout_s"].metadata if hasattr(m, "le"))
    timeout = FUNCTIONS["WorkerFunction"]["Properties"]["Timeout"]
    assert timeout >= longest + TIME_GUARD_S + 5, (timeout, longest)


def test_no_metric_takes_a_dimension_a_tenant_chooses():
    # a host (or tenant, or URL) as a dimension makes one CloudWatch metric per value: no bound, no bound on cost
    for path in PKG.rglob("*.py"):
        assert "add_dimension" not in path.read_text(), f"{path.name} adds a metric dimension"


def test_batches_and_pacing_rows_expire_after_the_retention_the_template_sets():
    resources = T["Resources"]
    for table in ("BatchesTable", "ProxiesTable"):
        ttl = resources[table]["Properties"]["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": "expires_at", "Enabled": True}, table
    env = T["Globals"]["Function"]["Environment"]["Variables"]
    assert env["RETENTION_DAYS"] == {"Ref": "RetentionDays"}
    assert T["Parameters"]["RetentionDays"]["Default"] == 30


def _s3_actions(function: str) -> set[str]:
    """S3 actions the function's inline statements grant on the results bucket's objects."""
    out: set[str] = set()
    for policy in FUNCTIONS[function]["Properties"].get("Policies") or []:
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if any("ResultsBucket" in str(r) for r in resources):
                out |= set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    return out


def test_only_the_function_that_writes_exports_may_write_the_results_bucket():
    # the fan-out function runs the export messages; the status function presigns (a GET with its permissions)
    writers = {f for f in FUNCTIONS if {"s3:PutObject", "s3:AbortMultipartUpload"} <= _s3_actions(f)}
    assert writers == {"FanoutFunction"}
    assert _s3_actions("StatusFunction") == {"s3:GetObject"}
    assert not any("s3:*" in _s3_actions(f) or "s3:DeleteObject" in _s3_actions(f) for f in FUNCTIONS)
    # and the code agrees: only the fan-out function's code reaches the export
    assert "send_fanout" in sends_of(roots_of("WorkerFunction"))  # a batch's end asks for its export
