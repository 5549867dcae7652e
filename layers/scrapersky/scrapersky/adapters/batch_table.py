"""The layout of the batches table, shared by the batch and item adapters (template.yaml declares it).

Keys (pk, sk):
  B#<batch>  A          the batch record (GSI by_tenant: gsi1pk=T#<tenant>, gsi1sk=<batch id, time-sortable>)
  B#<batch>  C#<nnn>    counter shard nnn: its share of the total and its counters
  B#<batch>  I#<seq>    one item
  G#<tenant>#<group> L  the group lock (running = batch id)
  K#<tenant>#<token> T  a client token -> batch id
  B#<batch>  F#<first>  a fan-out chunk's items, kept until the batch expires (the sweeper re-sends unsent ones)
Batches queued behind a busy group carry gwpk/gwsk (sparse GSI group_wait) until they start; batches whose
chunks are not all sent carry `unsent` (sparse GSI unsent); group locks carry `grp` (sparse GSI groups).

A batch's record and shards sort before "D" and its items after it, so one query reads a batch's progress
without touching its items.
"""

from __future__ import annotations

import re
from typing import Any

from scrapersky.adapters.expressions import Update

META_SK = "A"
BEFORE_ITEMS = "D"
ITEM_PREFIX = "I#"
EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds)
DEFAULT_RETENTION_S = 30 * 86_400
CHANGE_MARK = "chg"  # the id of the last change written to a record (see ItemChange.change_id)
ITEM_SK = re.compile(r"I#\d{6,7}")  # an item's sort key as item_sk writes it
SHARD_PREFIX = "C#"
CHUNK_PREFIX = "F#"
UNSENT = "unsent"  # sparse index (and its key): the batch's chunks are not all on the fan-out queue yet
GROUPS_INDEX, GROUPS = "groups", "grp"  # sparse index of group lock rows, and its key
ERROR_COUNTER = "e_"  # failed items by final error code: e_<code> on the counter shard
FINISHED = "finished"  # every terminal change counts here too, so a guard can tell the shard's last item
MAX_SAMPLES_PER_SHARD = 3


def batch_pk(batch_id: str) -> str:
    return f"B#{batch_id}"


def batch_id_of(pk: str) -> str:
    return pk.removeprefix("B#")


def item_sk(seq: int) -> str:
    return f"{ITEM_PREFIX}{seq:06d}"


def shard_sk(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard:03d}"


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item_key(batch_id: str, seq: int) -> dict[str, Any]:
    return key(batch_pk(batch_id), item_sk(seq))


def chunk_sk(first_seq: int) -> str:
    return f"{CHUNK_PREFIX}{first_seq:07d}"


def shard_key(batch_id: str, shard: int) -> dict[str, Any]:
    return key(batch_pk(batch_id), shard_sk(shard))


def meta_key(batch_id: str) -> dict[str, Any]:
    return key(batch_pk(batch_id), META_SK)


def group_key(tenant_id: str, group: str) -> dict[str, Any]:
    return key(f"G#{tenant_id}#{group}", "L")


def token_pk(tenant_id: str, token: str) -> str:
    return f"K#{tenant_id}#{token}"


TOKEN_SK = "T"


def token_key(tenant_id: str, token: str) -> dict[str, Any]:
    return key(token_pk(tenant_id, token), TOKEN_SK)


def waiting_line(tenant_id: str, group: str) -> str:
    return f"W#{tenant_id}#{group}"


def query_kwargs(table: str, key_condition: str, key_values: dict[str, Any], **equal: Any) -> dict[str, Any]:
    """Query arguments: `key_condition` with `{x}` standing for key_values["x"], and a filter `attribute = value`
    for each of `equal` that is not None (placeholders from one Update, so reserved words are safe)."""
    u = Update()
    condition = key_condition.format(**{k: u.value(v) for k, v in key_values.items()})
    for attribute, v in equal.items():
        if v is not None:
            u.when(f"#{attribute} = :x", x=v)
    out: dict[str, Any] = {"TableName": table, "KeyConditionExpression": condition}
    built = u.kwargs()
    if "ConditionExpression" in built:
        out |= {
            "FilterExpression": built["ConditionExpression"],
            "ExpressionAttributeNames": built["ExpressionAttributeNames"],
        }
    out["ExpressionAttributeValues"] = built["ExpressionAttributeValues"]
    return out


def expires_at(start: float, retention_s: float) -> int:
    return int(start + retention_s)
