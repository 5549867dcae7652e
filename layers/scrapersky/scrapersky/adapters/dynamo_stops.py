"""BatchStops on the batches table: the stop reason on the batch record (`stop_reason`, read as BatchRecord's)."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, is_condition_failure, raise_translated
from scrapersky.adapters.expressions import Update
from scrapersky.event_ports import BatchStops
from scrapersky.models import ACTIVE_BATCH

_STOP_MARK = "stop_chg"  # the id of the stop that won, so a retried write whose answer was lost knows it won


class DynamoBatchStops(BatchStops):
    """`client` is a boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table = table_name
        self.ddb = client

    def stop(self, batch_id: str, reason: str, now: float) -> bool:
        mark = uuid.uuid4().hex
        active = {f"s{i}": s.value for i, s in enumerate(ACTIVE_BATCH)}
        u = Update().set(stop_reason=reason, updated_at=now, **{_STOP_MARK: mark})
        u.when("attribute_exists(pk)").when("attribute_not_exists(#stop_reason)")
        u.when(f"#status IN ({', '.join(':' + k for k in active)})", **active)
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=bt.meta_key(batch_id),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **u.kwargs(),
            )
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return (de_item(e.response.get("Item")) or {}).get(_STOP_MARK) == mark
            raise_translated(e)
            raise
