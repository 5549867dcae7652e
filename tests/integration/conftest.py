"""Integration fixtures: moto is our AWS; the handlers run in-process against it; the target site and
proxies are real servers on loopback."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from scrapersky.api.routes import admin_router, batches_router, scrape_router, status_router, tenant_router
from scrapersky.models import CreateTenantRequest
from scrapersky.services.admin import create_tenant
from scrapersky.services.context import Deps
from scrapersky.settings import Settings

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT, LambdaContext, load_event
from tests.loopback import proxy_servers, site  # noqa: F401 - fixtures

TABLES = {"BatchesTable": "batches", "ProxiesTable": "proxies", "TenantsTable": "tenants"}


@functools.cache
def _template_resources() -> dict[str, Any]:
    """template.yaml parsed once per run (parsing it for every test cost ~0.2 s each); read only."""
    return load_template((ROOT / "template.yaml").read_text())["Resources"]


def _create_from_template(region: str) -> dict[str, str]:
    """Creates the tables and queues exactly as template.yaml declares them (keys, indexes, redrive)."""
    resources = _template_resources()
    ddb = boto3.client("dynamodb", region_name=region)
    for logical, name in TABLES.items():
        props = resources[logical]["Properties"]
        kwargs: dict[str, Any] = {k: props[k] for k in ("AttributeDefinitions", "KeySchema") if k in props}
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        ddb.create_table(TableName=name, BillingMode=props["BillingMode"], **kwargs)
    sqs = boto3.client("sqs", region_name=region)
    urls = {}
    for logical in ("FanoutDLQ", "WorkDLQ", "EventsDLQ", "FanoutQueue", "WorkQueue", "EventsQueue"):
        props = resources[logical]["Properties"]
        attrs = {"VisibilityTimeout": str(props["VisibilityTimeout"])}
        if "RedrivePolicy" in props:
            dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            arn = sqs.get_queue_attributes(QueueUrl=urls[dlq], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            count = props["RedrivePolicy"]["maxReceiveCount"]
            count = 8 if isinstance(count, dict) else count  # the WorkMaxReceiveCount parameter's default
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})
        urls[logical] = sqs.create_queue(QueueName=logical, Attributes=attrs)["QueueUrl"]
    _create_bucket(region, resources["ResultsBucket"]["Properties"])
    return urls


RESULTS_BUCKET = "scrapersky-results"


def _create_bucket(region: str, props: dict[str, Any]) -> None:
    """The results bucket with the template's encryption, public access block and lifecycle rules."""
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=RESULTS_BUCKET)
    rules = [  # CloudFormation's names for the API's
        {
            "ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"],
            "BucketKeyEnabled": r["BucketKeyEnabled"],
        }
        for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    s3.put_bucket_encryption(Bucket=RESULTS_BUCKET, ServerSideEncryptionConfiguration={"Rules": rules})
    s3.put_public_access_block(
        Bucket=RESULTS_BUCKET, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
    )
    rules = []
    for rule in props["LifecycleConfiguration"]["Rules"]:
        days = rule["ExpirationInDays"]
        rules.append(
            {
                "ID": rule["Id"],
                "Status": rule["Status"],
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": 30 if isinstance(days, dict) else days},  # the RetentionDays default
                "AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"],
            }
        )
    s3.put_bucket_lifecycle_configuration(Bucket=RESULTS_BUCKET, LifecycleConfiguration={"Rules": rules})


@dataclass
class Harness:
    deps: Deps
    urls: dict[str, str]
    sqs: Any
    context: LambdaContext

    def handler(self, name: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        from scrapersky import entrypoints  # imported when used: tests of one adapter need not load them all

        factory = lambda: self.deps  # noqa: E731
        routers = {
            "batches": (batches_router, tenant_router),  # as entrypoints.batches_handler serves them
            "status": (status_router,),
            "scrape": (scrape_router,),
            "admin": (admin_router,),
        }
        if name in routers:
            return entrypoints.http_handler(*routers[name], deps_factory=factory)
        records = {
            "worker": entrypoints._work_records,
            "fanout": entrypoints._fanout_records,
            "dead_letters": entrypoints._dead_letter_records,
            "events": entrypoints._event_records,
        }[name]
        return entrypoints._sqs_handler(records, deps_factory=factory)

    def api(
        self,
        name: str,
        method: str,
        path: str,
        body: Any = None,
        tenant: str = "t_local",
        role: str = "tenant",
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> tuple[int, Any]:
        ev = load_event("api_get_batch.json")
        ev.update(
            httpMethod=method,
            path=path,
            resource=path,
            pathParameters=None,
            queryStringParameters=query,
            multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()},
            body=raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        )
        ev["requestContext"]["authorizer"] = {"tenant_id": tenant, "role": role} if tenant else {}
        out = self.handler(name)(ev, self.context)
        return out["statusCode"], json.loads(out["body"]) if out.get("body") else None

    def receive(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.urls[queue], MaxNumberOfMessages=max_messages, AttributeNames=["All"], WaitTimeSeconds=0
        )
        return got.get("Messages", [])

    @staticmethod
    def sqs_event(queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def deliver(self, queue: str, handler: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invokes the consumer as the event source mapping would, deleting what it did not report failed."""
        result = self.handler(handler)(self.sqs_event(queue, messages), self.context)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.urls[queue], ReceiptHandle=m["ReceiptHandle"])
        return result

    def drain(
        self, timeout: float = 300.0, queues: tuple[str, ...] = ("FanoutQueue", "WorkQueue", "WorkDLQ", "FanoutDLQ")
    ) -> None:
        """Runs the consumers until every queue is empty (deferred messages included). The timeout is a bound
        for a busy machine, not a throughput expectation: it returns as soon as the queues are empty."""
        handlers = {
            "FanoutQueue": "fanout",
            "WorkQueue": "worker",
            "WorkDLQ": "dead_letters",
            "FanoutDLQ": "dead_letters",
        }
        end = time.time() + timeout
        while time.time() < end:
            busy = False
            for q in queues:
                msgs = self.receive(q)
                if msgs:
                    busy = True
                    self.deliver(q, handlers[q], msgs)
            if not busy:
                attrs = [
                    self.sqs.get_queue_attributes(QueueUrl=self.urls[q], AttributeNames=["All"])["Attributes"]
                    for q in queues
                ]
                if all(
                    a["ApproximateNumberOfMessages"] == "0"
                    and a["ApproximateNumberOfMessagesNotVisible"] == "0"
                    and a.get("ApproximateNumberOfMessagesDelayed", "0") == "0"
                    for a in attrs
                ):
                    return
                time.sleep(0.2)
        raise AssertionError(f"queues did not drain within {timeout:.0f}s")

    def wait_for_messages(self, queue: str, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Receives from a queue until something is there (e.g. a delayed message becomes visible)."""
        end = time.time() + timeout
        while time.time() < end:
            if msgs := self.receive(queue):
                return msgs
            time.sleep(0.2)
        raise AssertionError(f"nothing arrived on {queue} within {timeout:.0f}s")


@pytest.fixture
def moto_aws(monkeypatch) -> Iterator[dict[str, str]]:
    """moto as our AWS, with the tables and queues exactly as template.yaml declares them; yields queue URLs."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "ScraperSkyTest",
        "POWERTOOLS_SERVICE_NAME": "scrapersky",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield _create_from_template("us-east-1")


@pytest.fixture
def ddb(moto_aws) -> Any:
    """A DynamoDB client on moto, its tables exactly as template.yaml declares them."""
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def harness(moto_aws) -> Iterator[Harness]:
    urls = moto_aws
    settings = Settings(
        batches_table="batches",
        proxies_table="proxies",
        tenants_table="tenants",
        fanout_queue_url=urls["FanoutQueue"],
        work_queue_url=urls["WorkQueue"],
        results_bucket=RESULTS_BUCKET,
        events_queue_url=urls["EventsQueue"],
        events_dlq_url=urls["EventsDLQ"],
        allow_private_targets=True,
        any_target_port=True,
        lease_seconds=30,
        no_proxy_retry_s=2,
        url_write_concurrency=1,  # moto's TransactWriteItems copies the table and is not safe to run in parallel
    )
    from scrapersky import bootstrap

    deps = bootstrap.build(settings)
    for tid, role in (("t_local", "tenant"), ("t_admin", "admin")):
        create_tenant(deps, CreateTenantRequest(name=tid, role=role), api_key=f"{tid}-key", tenant_id=tid)
    yield Harness(deps, urls, boto3.client("sqs", region_name="us-east-1"), LambdaContext())


@pytest.fixture
def pool(harness, proxy_servers):  # noqa: F811
    """The three loopback proxies registered in the pool (through the admin API)."""
    ids = []
    for p in proxy_servers:
        status, body = harness.api("admin", "POST", "/proxies", {"url": p.url}, tenant="t_admin", role="admin")
        assert status == 201, body
        ids.append(body["proxy_id"])
    return ids
