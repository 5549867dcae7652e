"""What must never regress in template.yaml, and `sam validate --lint` / `sam build` themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT

T = load_template((ROOT / "template.yaml").read_text())
R = T["Resources"]
GLOBAL_TIMEOUT = T["Globals"]["Function"]["Timeout"]
FUNCTIONS = {k: v for k, v in R.items() if v["Type"] == "AWS::Serverless::Function"}


def sqs_events():
    for name, fn in FUNCTIONS.items():
        for ev_name, ev in (fn["Properties"].get("Events") or {}).items():
            if ev["Type"] == "SQS":
                yield name, ev_name, ev["Properties"]


def queue_of(ref):
    return ref["Fn::GetAtt"][0]


def test_every_sqs_consumer_reports_partial_batch_failures():
    events = list(sqs_events())
    assert len(events) == 5
    for _fn, _ev, props in events:
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


HEARTBEAT_MISSES = 3  # k: beats that may be late or fail (a throttled call retried for seconds) before one lapses


def test_queue_visibility_covers_the_consumer_timeout_or_its_heartbeat():
    """Rule 4, in two forms. A consumer without a heartbeat: visibility >= 6 x its timeout (AWS's advice for an
    event source mapping), so a message is never redelivered while an invocation may still work on it. The
    worker has a heartbeat instead (scrapersky/heartbeat.py): its queue's visibility is short, so a dead worker's
    messages come back within it rather than after a timeout sized for the longest fetch, and it must be at
    least k x the heartbeat interval, and the value each beat sets, so that k beats can be missed before a record
    in flight reappears. That every record in flight is extended until done or deferred (and that a deferral's
    own visibility wins over a late beat) is tested in tests/unit/test_heartbeat.py."""
    beating = set()
    for fn, _ev, props in sqs_events():
        timeout = FUNCTIONS[fn]["Properties"].get("Timeout", GLOBAL_TIMEOUT)
        visibility = R[queue_of(props["Queue"])]["Properties"]["VisibilityTimeout"]
        env = (FUNCTIONS[fn]["Properties"].get("Environment") or {}).get("Variables") or {}
        if "WORK_HEARTBEAT_S" not in env:
            assert visibility >= 6 * timeout, (fn, visibility, timeout)
            continue
        beating.add((fn, queue_of(props["Queue"])))
        assert int(env["WORK_VISIBILITY_S"]) == visibility, "each beat sets the queue's own visibility"
        assert visibility >= HEARTBEAT_MISSES * float(env["WORK_HEARTBEAT_S"]), (fn, visibility, env)
        assert visibility <= 60, "a short visibility: a dead worker's messages come back within a minute"
    assert beating == {("WorkerFunction", "WorkQueue")}  # the fan-out queue keeps visibility >= 6 x timeout


def test_work_queues_have_dlqs_that_are_consumed():
    consumed = {queue_of(p["Queue"]) for _f, _e, p in sqs_events()}
    for q in ("FanoutQueue", "WorkQueue"):
        dlq = R[q]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert dlq in consumed, f"{dlq} is not consumed: poison messages would hang their batch"


def test_the_events_queue_has_a_dlq_that_raises_an_alarm():
    # an event given up after a day of webhook tries (or one whose handling kept crashing) is kept there for an
    # operator to redrive, not consumed: it is no item, no batch waits for it
    dlq = R["EventsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dlq == "EventsDLQ"
    alarm = R["EventsDlqNotEmptyAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDLQ", "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] and alarm["Threshold"] == 0
    # a webhook retry is a new message with a delay, never a redelivery: only crashes count towards the DLQ
    assert R["EventsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 5


def test_worker_scaling_is_a_parameter_and_deferrals_cannot_exhaust_the_dlq_budget():
    work = next(p for f, _e, p in sqs_events() if f == "WorkerFunction")
    assert work["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaxConcurrency"}
    assert R["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "WorkMaxReceiveCount"}
    env = T["Globals"]["Function"]["Environment"]["Variables"]
    assert env["WORK_MAX_RECEIVE_COUNT"] == {"Ref": "WorkMaxReceiveCount"}  # the worker re-sends before it


def test_api_methods_are_explicit_and_only_health_and_docs_are_public():
    public = set()
    for fn in FUNCTIONS.values():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] == "Api":
                assert ev["Properties"]["Method"] != "ANY"
                if (ev["Properties"].get("Auth") or {}).get("Authorizer") == "NONE":
                    public.add(ev["Properties"]["Path"])
    assert public == {"/health", "/openapi.json"}
    assert R["Api"]["Properties"]["Auth"]["DefaultAuthorizer"] == "KeyAuthorizer"


def test_create_consume_and_status_have_their_own_least_privilege_policies():
    # the exact grants follow the code (test_policies.py); here what must hold whatever the code becomes
    from tests.template.test_policies import dynamodb_granted

    reads = {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
    assert {a for _t, a in dynamodb_granted("StatusFunction")} <= reads
    assert dynamodb_granted("AuthorizerFunction") == {("TenantsTable", "dynamodb:GetItem")}
    assert {t for t, _a in dynamodb_granted("WorkerFunction")} == {"BatchesTable", "ProxiesTable"}
    for fn in ("WorkerFunction", "ScrapeFunction", "MaintenanceFunction"):
        assert not {a for _t, a in dynamodb_granted(fn)} & {"dynamodb:DeleteItem"}, fn
        assert ("BatchesTable", "dynamodb:Scan") not in dynamodb_granted(fn), fn


def test_layer_is_built_by_sam_and_functions_list_no_local_package():
    layer = R["SharedLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").exists()
    for fn in FUNCTIONS.values():
        req = ROOT / fn["Properties"]["CodeUri"] / "requirements.txt"
        assert not req.exists() or "scrapersky" not in req.read_text()


def test_alarms_notify_the_topic_and_the_dashboard_exists():
    alarms = {k: v for k, v in R.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"WorkDlqNotEmptyAlarm", "WorkOldestMessageAlarm", "WorkerErrorsAlarm"} <= set(alarms)
    for a in alarms.values():
        assert a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert R["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"


SAM = ROOT / ".venv-sam" / "bin" / "sam"


def sam_env() -> dict[str, str]:
    pyenv = Path(os.popen("pyenv root 2>/dev/null").read().strip() or "/nonexistent") / "versions/3.12.1/bin/python3.12"
    py312 = os.environ.get("PY312") or (str(pyenv) if pyenv.exists() else shutil.which("python3.12") or "python3.12")
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{Path(py312).parent}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.skipif(not SAM.exists(), reason="run through `make test`, which installs the SAM CLI")
def test_sam_validate_lint_is_clean():
    out = subprocess.run([str(SAM), "validate", "--lint"], cwd=ROOT, env=sam_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is a valid SAM Template" in out.stdout + out.stderr


@pytest.mark.skipif(not SAM.exists(), reason="run through `make test`, which installs the SAM CLI")
def test_sam_build_succeeds(tmp_path):
    out = subprocess.run(
        [str(SAM), "build", "--build-dir", str(tmp_path / "build")],
        cwd=ROOT,
        env=sam_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "build" / "SharedLayer" / "python" / "scrapersky" / "entrypoints.py").exists()
    for fn in FUNCTIONS:  # every function was built with its handler module
        assert (tmp_path / "build" / fn / "app.py").exists(), fn


def test_dashboard_body_is_valid_json_with_the_pool_and_leasing_widgets():
    import json
    import re

    body, _vars = R["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    doc = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    titles = {w["properties"]["title"] for w in doc["widgets"]}
    assert {"Proxy pool", "Leasing: leases, conflicts, deferrals, AWS calls", "429s per host", "Queues"} <= titles


def test_the_results_bucket_is_encrypted_private_tls_only_and_expires_with_the_retention():
    bucket = T["Resources"]["ResultsBucket"]["Properties"]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    (deny,) = T["Resources"]["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert T["Globals"]["Function"]["Environment"]["Variables"]["RESULTS_BUCKET"] == {"Ref": "ResultsBucket"}
    assert T["Outputs"]["ResultsBucketName"]["Value"] == {"Ref": "ResultsBucket"}
