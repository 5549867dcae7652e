"""SessionStore on the batches table: one row per session under its proxy's partition (`SESS#<proxy_id>`, sort key
`<tenant>#<host>`), so a proxy's open sessions are one query. Rows expire by the table's TTL at the session's end
(and the maintenance sweep removes them sooner); an expired row still there is never handed out."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, query_all, raise_translated, ser, ser_item
from scrapersky.profile_ports import Cookie, Session, SessionKey, SessionStore

PREFIX = "SESS#"


def session_key(key: SessionKey) -> dict[str, Any]:
    return {"pk": ser(PREFIX + key.proxy_id), "sk": ser(f"{key.tenant_id}#{key.host}")}


class DynamoSessionStore(SessionStore):
    """`client` is a boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table = table_name
        self.ddb = client

    def get(self, key: SessionKey, now: float) -> Session | None:
        try:
            got = self.ddb.get_item(TableName=self.table, Key=session_key(key), ConsistentRead=True)
        except ClientError as e:
            raise_translated(e)
            raise
        row = de_item(got.get("Item"))
        if not row or float(row["ends_at"]) <= now:
            return None
        cookies = tuple(Cookie(**c) for c in json.loads(row["cookies"]))
        return Session(cookies, int(row["uses"]), float(row["created_at"]), float(row["ends_at"]))

    def put(self, key: SessionKey, session: Session) -> None:
        row = {
            "pk": PREFIX + key.proxy_id,
            "sk": f"{key.tenant_id}#{key.host}",
            "cookies": json.dumps([dataclasses.asdict(c) for c in session.cookies]),
            "uses": session.uses,
            "created_at": session.created_at,
            "ends_at": session.expires_at,
            bt.EXPIRES_AT: int(session.expires_at) + 1,
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=ser_item(row))
        except ClientError as e:
            raise_translated(e)
            raise

    def retire(self, key: SessionKey) -> None:
        try:
            self.ddb.delete_item(TableName=self.table, Key=session_key(key))
        except ClientError as e:
            raise_translated(e)
            raise

    def _rows(self, proxy_id: str) -> list[dict[str, Any]]:
        return query_all(
            self.ddb,
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": ser(PREFIX + proxy_id)},
            ProjectionExpression="pk, sk, ends_at",
        )

    def open_count(self, proxy_id: str, now: float) -> int:
        return sum(1 for r in self._rows(proxy_id) if float(r["ends_at"]) > now)

    def sweep(self, proxy_id: str, now: float) -> int:
        gone = [r for r in self._rows(proxy_id) if float(r["ends_at"]) <= now]
        for r in gone:
            try:
                self.ddb.delete_item(
                    TableName=self.table,
                    Key={"pk": ser(r["pk"]), "sk": ser(r["sk"])},
                    ConditionExpression="ends_at <= :now",  # a session reopened meanwhile stays
                    ExpressionAttributeValues={":now": ser(now)},
                )
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise_translated(e)
                    raise
        return len(gone)
