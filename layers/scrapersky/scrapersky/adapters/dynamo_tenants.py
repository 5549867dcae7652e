"""TenantStore on DynamoDB: API keys are stored only as SHA-256 hashes (pk K#<hash>)."""

from __future__ import annotations

from typing import Any

from scrapersky.adapters.ddb import conditional, de_item, ser, ser_item
from scrapersky.adapters.expressions import Update
from scrapersky.event_ports import TenantSecret, WebhookSecrets
from scrapersky.ports import TenantStore
from scrapersky.records import TenantRecord


class DynamoTenantStore(TenantStore):
    """Tenants on the tenants table: the record (T#<tenant>) and a copy under its key's hash for the authorizer.

    `client` is a boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table = table_name
        self.ddb = client

    def put_tenant(self, tenant_id: str, name: str, role: str, key_hash: str, now: float) -> None:
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser_item(
                            {
                                "pk": f"T#{tenant_id}",
                                "tenant_id": tenant_id,
                                "name": name,
                                "role": role,
                                "created_at": now,
                            }
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser_item(
                            {
                                "pk": f"K#{key_hash}",
                                "tenant_id": tenant_id,
                                "name": name,
                                "role": role,
                                "created_at": now,
                            }
                        ),
                    }
                },
            ]
        )

    def by_key_hash(self, key_hash: str) -> TenantRecord | None:
        row = de_item(self.ddb.get_item(TableName=self.table, Key={"pk": ser(f"K#{key_hash}")}).get("Item"))
        if row is None:
            return None
        return TenantRecord(tenant_id=str(row["tenant_id"]), name=str(row["name"]), role=str(row.get("role", "tenant")))


class DynamoWebhookSecrets(WebhookSecrets):
    """Each tenant's webhook secret on its record (T#<tenant>) in the tenants table (encrypted at rest): it must be
    read back to sign, so it is kept, never hashed. `client` is a boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table = table_name
        self.ddb = client

    def tenant(self, tenant_id: str) -> TenantSecret | None:
        got = self.ddb.get_item(TableName=self.table, Key={"pk": ser(f"T#{tenant_id}")}, ConsistentRead=True)
        row = de_item(got.get("Item"))
        if row is None:
            return None
        secret = row.get("webhook_secret")
        return TenantSecret(str(row["tenant_id"]), str(row["name"]), str(secret) if secret else None)

    def set_secret(self, tenant_id: str, secret: str, now: float) -> bool:
        u = Update().set(webhook_secret=secret, secret_set_at=now).when("attribute_exists(pk)")
        return conditional(self.ddb.update_item, TableName=self.table, Key={"pk": ser(f"T#{tenant_id}")}, **u.kwargs())
