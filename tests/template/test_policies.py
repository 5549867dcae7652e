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
SENDS["send_event"] = ("EventsQueue", "sqs:SendMessage")
SENDS["send_dead_event"] = ("EventsDLQ", "sqs:SendMessage")

Node = tuple[str, str]  # (module, qualified function name)
_CONTAINER_METHODS = {"add", "get", "append", "update", "pop", "items", "keys", "values", "extend", "remove", "clear"}


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
    if local == "processor":  # a kind's processor (services/leasing.py): any kind's method of that name
        yield from (
            (m.name, q)
            for m in MODULES.values()
            if m.name.startswith("scrapersky.kinds.")
            for q in m.functions
            if q.endswith(f".{attr}")
        )
    # a method called on an object of this module's classes (self._x(), delivery.run()); not a container's
    # own method (seen.add(), found.get()), which would make every `add` look like the adapter's `add`
    if local != "self" and attr in _CONTAINER_METHODS:
        return
    for qual in module.functions:
        if qual.endswith(f".{attr}"):
            yield module.name, qual


def _held_by_self(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and node.attr not in PORT_ADAPTERS
        and node.attr not in ("ddb", "deps")
    )


def _adapter_methods(name: str) -> set[Node]:
    """Every adapter class method of that name (a deliberate over-approximation: the walk may not miss a call)."""
    if name in _CONTAINER_METHODS:
        return set()
    return {
        (m.name, qual)
        for m in MODULES.values()
        if m.name.startswith("scrapersky.adapters.")
        for qual in m.functions
        if qual.endswith(f".{name}")
    }


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
        elif isinstance(f, ast.Attribute) and _held_by_self(f.value):
            reached.update(_adapter_methods(f.attr))  # self.snapshot.proxies(): an object an adapter holds
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
    if handler == "authorizer_handler":  # built by _authorizer
        return {(entry.name, "_authorizer")}
    if handler == "maintenance_handler":  # handed out by __getattr__ as built
        return {(entry.name, "_maintenance_handler")}
    tables = {  # the handler tables entrypoints.__getattr__ builds from: handler -> (names it serves, ...)
        t.id: ast.literal_eval(n.value)
        for n in entry.tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and t.id.endswith("_HANDLERS")
    }
    args = set(tables["HTTP_HANDLERS"].get(handler, ())) | {tables["SQS_HANDLERS"].get(handler, ("",))[0]}
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
    assert sends_of(roots_of("BatchesFunction")) == {"send_fanout", "send_event"}  # a cancel: batch.finished
    assert sends_of(roots_of("EventsFunction")) == {"send_event", "send_dead_event"}
    assert sends_of(roots_of("StatusFunction")) == set()
    assert sends_of(roots_of("ScrapeFunction")) == {"send_event"}  # a profile check's flip


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


# ---- DynamoDB: what each function's code path reads and writes, table by table ------------------------------
PORT_ADAPTERS = {  # Deps attribute -> (adapter module, class, template table), as bootstrap.build wires them
    "batches": ("scrapersky.adapters.dynamo_batches", "DynamoBatchStore", "BatchesTable"),
    "items": ("scrapersky.adapters.dynamo_items", "DynamoItemStore", "BatchesTable"),
    "sweeps": ("scrapersky.adapters.dynamo_sweeps", "DynamoSweeps", "BatchesTable"),
    "documents": ("scrapersky.adapters.dynamo_documents", "DynamoItemDocuments", "BatchesTable"),
    "urls": ("scrapersky.adapters.dynamo_urls", "DynamoDiscoveredUrls", "BatchesTable"),
    "follow": ("scrapersky.adapters.dynamo_follow", "DynamoFollowStore", "BatchesTable"),
    "pool": ("scrapersky.adapters.dynamo_proxies", "DynamoProxyPool", "ProxiesTable"),
    "hosts": ("scrapersky.adapters.dynamo_hosts", "DynamoHostBook", "ProxiesTable"),
    "tenants": ("scrapersky.adapters.dynamo_tenants", "DynamoTenantStore", "TenantsTable"),
    # deps.events.secrets / deps.events.stops (scrapersky.event_ports.EventPorts)
    "secrets": ("scrapersky.adapters.dynamo_tenants", "DynamoWebhookSecrets", "TenantsTable"),
    "stops": ("scrapersky.adapters.dynamo_stops", "DynamoBatchStops", "BatchesTable"),
    "sessions": ("scrapersky.adapters.dynamo_sessions", "DynamoSessionStore", "BatchesTable"),
    "targets": ("scrapersky.adapters.dynamo_targets", "DynamoTargetHistory", "BatchesTable"),
}
DDB_ACTIONS = {
    "get_item": {"dynamodb:GetItem"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "query": {"dynamodb:Query"},
    "scan": {"dynamodb:Scan"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem"},
    # a transaction needs the action of each of its parts (we put, update and check conditions in them)
    "transact_write_items": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"},
    "transact_get_items": {"dynamodb:GetItem"},
}


def _ddb_ops(fn: ast.AST) -> set[str]:
    """DynamoDB operations a function calls on a client: `self.ddb.query(...)`, `conditional(self.ddb.update_item,
    ...)`, `client.get_paginator("scan")`."""
    ops: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Attribute) and n.attr in DDB_ACTIONS and _is_client(n.value):
            ops.add(n.attr)
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "get_paginator"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ):
            ops.add(str(n.args[0].value))
    return ops


def _is_client(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("client", "ddb")
    return isinstance(node, ast.Attribute) and node.attr == "ddb"


def _port_calls(fn: ast.AST) -> Iterator[tuple[str, str]]:
    """`deps.items.finish(...)` or `self.deps.items.finish(...)`: (port attribute, method)."""
    for n in ast.walk(fn):
        call = isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        if call and isinstance(n.func.value, ast.Attribute) and n.func.value.attr in PORT_ADAPTERS:  # type: ignore[attr-defined]
            yield n.func.value.attr, n.func.attr  # type: ignore[attr-defined]


def dynamodb_of(roots: set[Node]) -> set[tuple[str, str]]:
    """(template table, IAM action) pairs reachable from the roots: services -> port calls -> adapters -> client."""
    used: set[tuple[str, str]] = set()
    seen: set[tuple[Node, str | None]] = set()
    todo: list[tuple[Node, str | None]] = [(r, None) for r in roots]
    while todo:
        node, table = todo.pop()
        if (node, table) in seen or node[0] not in MODULES:
            continue
        seen.add((node, table))
        fn = MODULES[node[0]].functions.get(node[1])
        if fn is None:
            continue
        if table:
            used |= {(table, action) for op in _ddb_ops(fn) for action in DDB_ACTIONS[op]}
        for port, method in _port_calls(fn):
            module, cls, port_table = PORT_ADAPTERS[port]
            todo.append(((module, f"{cls}.{method}"), port_table))
        todo.extend((reached, table) for reached in _calls(node)[0])
    return used


_TEMPLATES = {  # what SAM's policy templates grant
    "DynamoDBCrudPolicy": {
        "GetItem", "DeleteItem", "PutItem", "Scan", "Query", "UpdateItem", "BatchWriteItem", "BatchGetItem",
        "DescribeTable", "ConditionCheckItem",
    },
    "DynamoDBReadPolicy": {"GetItem", "Scan", "Query", "BatchGetItem", "DescribeTable"},
}  # fmt: skip


def _table_of(resource: object) -> str | None:
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Fn::Sub" in resource:  # "${Table.Arn}/index/*"
        text = resource["Fn::Sub"] if isinstance(resource["Fn::Sub"], str) else resource["Fn::Sub"][0]
        return text.split("${", 1)[1].split(".", 1)[0]
    return None


def dynamodb_granted(function: str) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for policy in FUNCTIONS[function]["Properties"].get("Policies") or []:
        for name, actions in _TEMPLATES.items():
            if name in policy:
                table = policy[name]["TableName"]["Ref"]
                out |= {(table, f"dynamodb:{a}") for a in actions}
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            tables = {t for t in map(_table_of, resources) if t}
            out |= {(t, a) for t in tables for a in actions if a.startswith("dynamodb:")}
    return out


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_may_do_exactly_what_its_code_does_on_each_table(function):
    used = dynamodb_of(roots_of(function))
    granted = dynamodb_granted(function) - {(t, "dynamodb:DescribeTable") for t, _ in dynamodb_granted(function)}
    assert used <= granted, f"{function} would be AccessDenied on AWS for {sorted(used - granted)}"
    assert granted <= used, f"{function} may do more than its code does: {sorted(granted - used)}"


def test_the_dynamodb_walk_sees_what_it_must_see():
    assert ("ProxiesTable", "dynamodb:Scan") in dynamodb_of(roots_of("WorkerFunction"))  # the pool's snapshot
    assert ("BatchesTable", "dynamodb:UpdateItem") in dynamodb_of(roots_of("WorkerFunction"))
    assert dynamodb_of(roots_of("StatusFunction")) == {
        ("BatchesTable", "dynamodb:BatchGetItem"),  # the status read: the meta row and the counter shards
        ("BatchesTable", "dynamodb:GetItem"),
        ("BatchesTable", "dynamodb:Query"),
    }


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
