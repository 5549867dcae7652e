"""SessionStore on the batches table: one row per session under its proxy's partition (`SESS#<proxy_id>`, sort key
`<tenant>#<host>`), so a proxy's open sessions are one query. A row expires by the table's TTL at the session's
end; a retired session, and an expired one the maintenance sweep finds, loses its cookies at once (no function may
delete rows: least privilege), and an ended row is never handed out."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, is_condition_failure, query_all, raise_translated, ser, ser_item
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
            "has_cookies": True,  # until the session ends (retired or swept): its cookies are dropped then
            bt.EXPIRES_AT: int(session.expires_at) + 1,
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=ser_item(row))
        except ClientError as e:
            raise_translated(e)
            raise

    def retire(self, key: SessionKey) -> None:
        # no function may delete rows (least privilege): the session ends now, its cookies go, TTL removes the row
        self._end(session_key(key), None)

    def _end(self, key: dict[str, Any], expired_by: float | None) -> None:
        """Ends the session and drops its cookies; with `expired_by`, only if it had ended by then (a session
        opened again meanwhile stays)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": "SET ends_at = :zero, #ttl = :zero REMOVE cookies, has_cookies",
            "ExpressionAttributeNames": {"#ttl": bt.EXPIRES_AT},
            "ExpressionAttributeValues": {":zero": ser(0)},
            "ConditionExpression": "attribute_exists(pk)",
        }
        if expired_by is not None:
            kwargs["ConditionExpression"] += " AND ends_at <= :now AND attribute_exists(has_cookies)"
            kwargs["ExpressionAttributeValues"][":now"] = ser(expired_by)
        try:
            self.ddb.update_item(**kwargs)
        except ClientError as e:
            if not is_condition_failure(e):
                raise_translated(e)
                raise

    def _rows(self, proxy_id: str) -> list[dict[str, Any]]:
        return query_all(
            self.ddb,
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": ser(PREFIX + proxy_id)},
            ProjectionExpression="pk, sk, ends_at, has_cookies",
        )

    def open_count(self, proxy_id: str, now: float) -> int:
        return sum(1 for r in self._rows(proxy_id) if float(r["ends_at"]) > now)

    def sweep(self, proxy_id: str, now: float) -> int:
        gone = [r for r in self._rows(proxy_id) if float(r["ends_at"]) <= now and r.get("has_cookies")]
        for r in gone:
            self._end({"pk": ser(r["pk"]), "sk": ser(r["sk"])}, now)
        return len(gone)
