"""The docker-less local stack: ministack (a local AWS emulator that runs the Lambda handlers without
Docker) with the very template.yaml built by `sam build`, seeded tenants, and the API on :3000.

    python -m devstack.stack            # foreground until Ctrl-C / SIGTERM (make local)

Environment: SCRAPERSKY_HOST / SCRAPERSKY_PORT (API, default 127.0.0.1:3000), SCRAPERSKY_API_KEY /
SCRAPERSKY_ADMIN_KEY (seeded keys), SCRAPERSKY_MINISTACK_PORT (default: a free port),
SCRAPERSKY_WORKER_CONCURRENCY (default 4), SCRAPERSKY_STACK_TMPDIR (where the handler processes are unpacked:
devstack/warmup.py, which also starts them before "ready"; warm=False does not). A cost run (bench/cost.py) sets
SCRAPERSKY_COST_LOG in handler_env: then devstack/costhook counts the handlers' AWS calls (see its
sitecustomize.py); unset, nothing of it is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from devstack import warmup
from devstack.cfn_yaml import load_template
from devstack.gateway import Gateway
from devstack.proxies import free_port

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
STATE_DIR = ROOT / ".cache" / "devstack"
MINISTACK = ROOT / ".venv-ministack" / "bin" / "ministack"
BUCKET = "scrapersky-artifacts"
STACK = "scrapersky-local"
REGION = "us-east-1"
LOCAL_TENANT = "t_local"
LOCAL_ADMIN = "t_admin"


def log(msg: str) -> None:
    print(f"[local-stack] {msg}", file=sys.stderr, flush=True)


def aws_client(service: str, endpoint: str, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        **kwargs,
    )


@dataclass
class LocalStack:
    api_host: str = os.environ.get("SCRAPERSKY_HOST", "127.0.0.1")
    api_port: int = int(os.environ.get("SCRAPERSKY_PORT", "3000"))
    api_key: str = os.environ.get("SCRAPERSKY_API_KEY", "local-dev-key")
    admin_key: str = os.environ.get("SCRAPERSKY_ADMIN_KEY", "local-admin-key")
    webhook_secret: str = os.environ.get("SCRAPERSKY_WEBHOOK_SECRET", "local-webhook-secret")  # the tenant's
    ministack_port: int = int(os.environ.get("SCRAPERSKY_MINISTACK_PORT", "0"))
    worker_concurrency: int = int(os.environ.get("SCRAPERSKY_WORKER_CONCURRENCY", "4"))
    # environment for the Lambda handlers (ministack's processes pass theirs on), e.g. SCRAPERSKY_FAULTS for a chaos run
    handler_env: dict[str, str] = field(default_factory=dict)
    state_dir: Path = STATE_DIR  # ministack.log and state.json (the CLI's view of the stack)
    warm: bool = True  # start each function's handler processes before "ready" (devstack/warmup.py)

    def __post_init__(self) -> None:
        self.ministack_port = self.ministack_port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.ministack_port}"
        self.proc: subprocess.Popen | None = None
        self.gateway: Gateway | None = None
        self.tmpdir = Path(tempfile.mkdtemp(prefix="scrapersky-ministack-", dir=warmup.scratch_dir()))
        self.outputs: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        if not (BUILD / "template.yaml").exists():
            raise SystemExit("no .aws-sam/build/template.yaml: run `make build` (sam build) first")
        if not MINISTACK.exists():
            raise SystemExit(f"{MINISTACK} is missing: run `make local` (it creates the ministack virtualenv)")
        started = time.time()
        self._start_ministack()
        self._deploy()
        self._seed()
        upstream = f"{self.endpoint}/restapis/{self.outputs['ApiId']}/v1/_user_request_"
        self.gateway = Gateway(upstream, self.api_host, self.api_port).start()
        self._wait_api()
        if self.warm:
            self._warm()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "state.json").write_text(
            json.dumps(
                {
                    "api_url": self.api_url,
                    "aws_endpoint": self.endpoint,
                    "outputs": self.outputs,
                    "api_key": self.api_key,
                    "admin_key": self.admin_key,
                },
                indent=1,
            )
        )
        log(f"ready in {time.time() - started:.1f}s: API {self.api_url} (AWS endpoint {self.endpoint})")
        return self

    def stop(self) -> None:
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def handler_pids(self, function: str) -> list[int]:
        """The processes ministack runs a function's handlers in (its warm workers): those of this stack whose
        AWS_LAMBDA_FUNCTION_NAME contains `function` (a logical id such as "WorkerFunction")."""
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != self.proc.pid:
                    continue
                env = (entry / "environ").read_bytes().split(b"\0")
                names = [v for v in env if v.startswith(b"AWS_LAMBDA_FUNCTION_NAME=")]
                if names and function.encode() in names[0]:
                    pids.append(int(entry.name))
        return pids

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- steps -----------------------------------------------------------------------------------------
    def _start_ministack(self) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV", "SCRAPERSKY_"))
        }
        env.update(
            {
                "BIND_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(self.ministack_port),
                "TMPDIR": str(self.tmpdir),
                "IOT_MTLS_ENABLED": "0",
                "SFTP_ENABLED": "0",
                "LOG_LEVEL": "WARNING",
                "LAMBDA_WARM_TTL_SECONDS": "600",
                # handlers inherit this environment: no X-Ray daemon here, so do not trace locally
                "POWERTOOLS_TRACE_DISABLED": "true",
                **self.handler_env,
            }
        )
        if self.handler_env.get("SCRAPERSKY_COST_LOG"):  # opt-in: the handler processes inherit this path
            env["PYTHONPATH"] = str(ROOT / "devstack" / "costhook")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(self.state_dir / "ministack.log", "w")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(MINISTACK)], env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.tmpdir
        )
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"ministack exited early; see {self.state_dir / 'ministack.log'}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.endpoint}/_ministack/health", timeout=1).ok:
                    log(f"ministack up on {self.endpoint}")
                    return
            time.sleep(0.2)
        raise SystemExit("ministack did not become healthy within 60s")

    def _deploy(self) -> None:
        s3 = aws_client("s3", self.endpoint)
        cfn = aws_client("cloudformation", self.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        template = load_template((BUILD / "template.yaml").read_text())
        for res in template["Resources"].values():
            key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(
                res["Type"]
            )
            uri = (res.get("Properties") or {}).get(key) if key else None
            if isinstance(uri, str) and not uri.startswith("s3://"):
                res["Properties"][key] = self._upload_dir(s3, BUILD / uri)
        body = json.dumps(template).encode()
        key = f"templates/{STACK}-{hashlib.sha256(body).hexdigest()[:16]}.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        params = {
            "AllowPrivateTargets": "true",
            "AnyTargetPort": "true",
            "WorkerMaxConcurrency": str(max(2, self.worker_concurrency)),
            "FanoutMaxConcurrency": "2",
            "LogLevel": os.environ.get("SCRAPERSKY_LOG_LEVEL", "WARNING"),
        }
        cfn.create_stack(
            StackName=STACK,
            TemplateURL=f"{self.endpoint}/{BUCKET}/{key}",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        while True:
            stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
            if not stack["StackStatus"].endswith("_IN_PROGRESS"):
                break
            time.sleep(0.3)
        if stack["StackStatus"] != "CREATE_COMPLETE":
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in cfn.describe_stack_events(StackName=STACK)["StackEvents"]
                if "FAILED" in e["ResourceStatus"]
            ]
            raise SystemExit(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')} {reasons}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        # ministack keeps ScalingConfig.MaximumConcurrency from a template parameter as a string, which breaks its
        # SQS poller; re-set it through the API (an int), which is what CloudFormation does on AWS.
        lam = aws_client("lambda", self.endpoint)
        for esm in lam.list_event_source_mappings()["EventSourceMappings"]:
            limit = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
            if limit is not None:
                lam.update_event_source_mapping(UUID=esm["UUID"], ScalingConfig={"MaximumConcurrency": int(limit)})
        # ministack ignores the template's TTL specification; set it by API as on AWS.
        for table in ("BatchesTableName", "ProxiesTableName"):
            aws_client("dynamodb", self.endpoint).update_time_to_live(
                TableName=self.outputs[table], TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
            )
        log(f"stack {STACK} deployed (API {self.outputs['ApiId']})")

    @staticmethod
    def _upload_dir(s3: Any, folder: Path) -> str:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(folder.rglob("*")):
                if path.is_file():  # with the bytecode `make build` compiled (as `sam deploy` ships it)
                    z.write(path, path.relative_to(folder))
        data = buf.getvalue()
        key = f"code/{hashlib.sha256(data).hexdigest()[:24]}.zip"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return f"s3://{BUCKET}/{key}"

    def _seed(self) -> None:
        from scrapersky.adapters.dynamo_tenants import DynamoTenantStore, DynamoWebhookSecrets
        from scrapersky.services.admin import hash_key

        ddb = aws_client("dynamodb", self.endpoint)
        tenants = DynamoTenantStore(self.outputs["TenantsTableName"], ddb)
        now = time.time()
        tenants.put_tenant(LOCAL_TENANT, "local", "tenant", hash_key(self.api_key), now)
        tenants.put_tenant(LOCAL_ADMIN, "local-admin", "admin", hash_key(self.admin_key), now)
        # the seeded tenant's webhooks are signed with a known secret (rotated with POST /tenant/webhook-secret)
        DynamoWebhookSecrets(self.outputs["TenantsTableName"], ddb).set_secret(LOCAL_TENANT, self.webhook_secret, now)

    def _wait_api(self) -> None:
        end = time.time() + 60
        while time.time() < end:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api_url}/health", timeout=30).ok:
                    return
            time.sleep(0.3)
        raise SystemExit("the API did not answer /health within 60s")

    def _warm(self) -> None:
        started = time.time()
        # a cold start on a loaded 2-core machine has taken over 40 s
        config = Config(max_pool_connections=32, read_timeout=300, retries={"max_attempts": 0})
        count = warmup.warm(aws_client("lambda", self.endpoint, config=config), self.api_key, log)
        log(f"{count} handler processes started in {time.time() - started:.1f}s")


class _Stop(BaseException):
    """Raised in the main thread by the first Ctrl-C or SIGTERM: it unwinds start-up or the wait alike."""


class _Signals:
    """The first SIGINT/SIGTERM stops the stack; any further one while it stops is ignored, so a supervisor's
    process-group kill plus a direct one cannot interrupt the clean-up (an Event set from a handler could
    deadlock the main thread inside Event.wait)."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        raise _Stop()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self)
        signal.signal(signal.SIGINT, self)


def main() -> None:
    signals = _Signals()
    signals.install()
    stack = LocalStack()
    try:
        stack.start()
        print(f"ScraperSky local stack: {stack.api_url}  (Ctrl-C to stop)", flush=True)
        while True:
            time.sleep(3600)
    except _Stop:
        pass
    finally:
        signals.stopping = True
        log("stopping")
        stack.stop()
        log("stopped")


if __name__ == "__main__":
    main()
