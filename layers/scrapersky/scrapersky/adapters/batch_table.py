"""The layout of the batches table, shared by the batch and item adapters (template.yaml declares it).

Keys (pk, sk):
  B#<batch>           A          the batch record (GSI by_tenant: gsi1pk=T#<tenant>, gsi1sk=<batch id, time-sortable>)
  B#<batch>#C<nnn>    C#<nnn>    counter shard nnn: its share of the total and its counters
  B#<batch>#I<block>  I#<seq>    one item: seq in 7 digits, block = seq // ITEM_BLOCK in 4
  B#<batch>#F<nn>     F#<first>  a fan-out chunk's items, kept until the batch expires (the sweeper re-sends them);
                                 nn = block_of(first) % CHUNK_PARTITIONS
  G#<tenant>#<group>  L          the group lock (running = batch id)
  K#<tenant>#<token>  T          a client token -> batch id
Batches queued behind a busy group carry gwpk/gwsk (sparse GSI group_wait) until they start; batches whose
chunks are not all sent carry `unsent` = U (sparse GSI unsent), ended batches whose after-end messages are
not all sent `unsent` = E (same index); group locks carry `grp` (sparse GSI groups).

Why blocks: a batch may hold up to MAX_STORED_ITEMS (1,000,000) items. In one partition key all their writes
(put, claim, finish: several WCU per item) would share one partition's 1,000 WCU/s, and a partition key
written in sort-key order cannot be split for heat. ITEM_BLOCK = 1,000 items per key: a batch of a million
items spreads over 1,000 keys (no key holds more than 0.1% of it); concurrent fan-out chunks (100 items) and the
workers' finishes land in different keys; a block (≤ 1,000 rows, about one 1 MB Query page) is read in one or
two requests, so a listing page (≤ 1,000 items) touches at most two blocks. A smaller block would cost more
requests per page; a larger one would put more of a batch's write front in one key.

A million items' chunks are ~100 MB written at create: spread over CHUNK_PARTITIONS keys, not one (the sweeper
reads them back from those few keys).

Each counter shard has its own key too (every item change writes one): the status read is ONE BatchGetItem
of the meta row and the keys of shards 0..max_shards-1 (a missing shard costs like a small read), the same for
a batch of ten and of a million.
"""

from __future__ import annotations

import re
from typing import Any

from scrapersky.adapters.expressions import Update

META_SK = "A"
ITEM_PREFIX = "I#"
ITEM_BLOCK = 1_000  # items per partition key (see above)
MAX_STORED_ITEMS = 1_000_000  # the largest batch the store supports (a client's POST is capped lower, in models)
MAX_SEQ_DIGITS = 7  # item and chunk sort keys: seq 0..9,999,999 sort as numbers
EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds)
DEFAULT_RETENTION_S = 30 * 86_400
CHANGE_MARK = "chg"  # the id of the last change written to a record (see ItemChange.change_id)
ITEM_SK = re.compile(r"I#([0-9]{7})")  # an item's sort key as item_sk writes it (ASCII digits only)
SHARD_PREFIX = "C#"
CHUNK_PREFIX = "F#"
CHUNK_PARTITIONS = 16  # the keys a batch's fan-out chunk rows are spread over
UNSENT = "unsent"  # sparse index (and its key): the batch's chunks are not all on the fan-out queue yet ("U")
AFTER_END = "E"  # unsent's other value: the batch ended, its after-end messages may not all be sent yet
GROUPS_INDEX, GROUPS = "groups", "grp"  # sparse index of group lock rows, and its key
ERROR_COUNTER = "e_"  # failed items by final error code: e_<code> on the counter shard
FINISHED = "finished"  # every terminal change counts here too, so a guard can tell the shard's last item
MAX_SAMPLES_PER_SHARD = 3


def batch_pk(batch_id: str) -> str:
    return f"B#{batch_id}"


def batch_id_of(pk: str) -> str:
    """The batch of any of its rows' partition keys (a batch id holds no '#')."""
    return pk.removeprefix("B#").split("#", 1)[0]


def block_of(seq: int, block_items: int = ITEM_BLOCK) -> int:
    return seq // block_items


def block_pk(batch_id: str, block: int) -> str:
    return f"B#{batch_id}#I{block:04d}"


def item_pk(batch_id: str, seq: int, block_items: int = ITEM_BLOCK) -> str:
    return block_pk(batch_id, block_of(seq, block_items))


def item_sk(seq: int) -> str:
    return f"{ITEM_PREFIX}{seq:0{MAX_SEQ_DIGITS}d}"


def seq_of(sk: str) -> int | None:
    """The seq of an item sort key exactly as item_sk writes it, else None."""
    m = ITEM_SK.fullmatch(sk)
    return int(m.group(1)) if m else None


def shard_pk(batch_id: str, shard: int) -> str:
    return f"B#{batch_id}#C{shard:03d}"


def shard_sk(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard:03d}"


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item_key(batch_id: str, seq: int, block_items: int = ITEM_BLOCK) -> dict[str, Any]:
    return key(item_pk(batch_id, seq, block_items), item_sk(seq))


def chunk_pk(batch_id: str, part: int) -> str:
    return f"B#{batch_id}#F{part:02d}"


def chunk_part(first_seq: int) -> int:
    """Which of the batch's chunk partitions holds the chunk starting at this seq."""
    return block_of(first_seq) % CHUNK_PARTITIONS


def chunk_sk(first_seq: int) -> str:
    return f"{CHUNK_PREFIX}{first_seq:0{MAX_SEQ_DIGITS}d}"


def shard_key(batch_id: str, shard: int) -> dict[str, Any]:
    return key(shard_pk(batch_id, shard), shard_sk(shard))


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
