import json

from scrapersky.checks import (
    CheckState,
    FinishedCheck,
    TargetError,
    TargetEventType,
    TargetRecord,
    apply_check,
)

PRESENT, ABSENT, NOT_FOUND = CheckState.PRESENT, CheckState.ABSENT, CheckState.NOT_FOUND
NEW = TargetRecord(target="alice", check="stories")


def ok(at, state, batch="b1"):
    return FinishedCheck(batch_id=batch, at=at, state=state)


def failed(at, code="blocked", batch="b1"):
    return FinishedCheck(batch_id=batch, at=at, error=TargetError(code, f"{code} at {at}", at))


def run(record, *finished):
    events = []
    for f in finished:
        applied = apply_check(record, f)
        record = applied.record
        if applied.event:
            events.append(applied.event)
    return record, events


def test_a_new_target_is_unknown():
    assert NEW.active is None and NEW.checks == 0 and NEW.last_error is None


def test_a_first_observation_fires_no_event_whatever_it_is():
    for state in (PRESENT, ABSENT, NOT_FOUND):
        applied = apply_check(NEW, ok(10, state))
        assert applied.event is None
        assert applied.record.active is (state is PRESENT)


def test_off_on_on_off_fires_exactly_one_became_active_and_one_became_inactive():
    record, events = run(NEW, ok(10, ABSENT, "b1"), ok(20, PRESENT, "b2"), ok(30, PRESENT, "b3"), ok(40, ABSENT, "b4"))
    assert [(e.event, e.previous_state, e.state, e.batch_id, e.at) for e in events] == [
        (TargetEventType.BECAME_ACTIVE, ABSENT, PRESENT, "b2", 20),
        (TargetEventType.BECAME_INACTIVE, PRESENT, ABSENT, "b4", 40),
    ]
    assert events[0].to_dict()["event"] == "target.became_active"
    assert (record.active, record.active_since, record.last_state, record.last_batch_id) == (False, None, ABSENT, "b4")
    assert (record.checks, record.detections, record.last_detected_at, record.last_checked_at) == (4, 2, 30, 40)


def test_active_since_is_the_first_present_of_the_current_streak():
    record, _ = run(NEW, ok(10, PRESENT), ok(20, PRESENT), ok(30, NOT_FOUND), ok(40, PRESENT), ok(50, PRESENT))
    assert (record.active, record.active_since, record.last_detected_at) == (True, 40, 50)


def test_not_found_makes_a_target_inactive():
    record, events = run(NEW, ok(10, PRESENT), ok(20, NOT_FOUND))
    assert record.active is False
    assert [e.event for e in events] == [TargetEventType.BECAME_INACTIVE]


def test_failures_count_and_keep_the_state_then_a_success_clears_the_errors():
    record, events = run(NEW, ok(10, PRESENT), failed(20, "blocked"), failed(30, "login_required"))
    assert (record.checks, record.consecutive_errors, record.last_error) == (
        3,
        2,
        TargetError("login_required", "login_required at 30", 30),
    )
    assert (record.active, record.last_state, record.last_checked_at) == (True, PRESENT, 10)
    record, more = run(record, ok(40, PRESENT))
    assert (record.consecutive_errors, record.last_error, record.checks) == (0, None, 4)
    assert events == more == []


def test_a_result_older_than_the_last_check_never_rolls_the_state_back():
    record, _ = run(NEW, ok(10, ABSENT), ok(30, PRESENT))
    applied = apply_check(record, ok(20, ABSENT, "late"))
    late = applied.record
    assert applied.event is None
    assert (late.active, late.active_since, late.last_state, late.last_checked_at) == (True, 30, PRESENT, 30)
    assert late.last_batch_id == "b1"
    assert late.checks == 3


def test_an_old_present_counts_as_a_detection_without_moving_the_state():
    record, _ = run(NEW, ok(30, ABSENT), ok(10, PRESENT), ok(20, PRESENT))
    assert (record.active, record.last_state, record.last_checked_at) == (False, ABSENT, 30)
    assert (record.detections, record.last_detected_at, record.checks) == (2, 20, 3)


def test_a_failure_older_than_the_last_success_leaves_the_errors_alone():
    record, _ = run(NEW, ok(30, PRESENT), failed(20))
    assert (record.checks, record.consecutive_errors, record.last_error) == (2, 0, None)


def test_a_success_older_than_the_last_error_does_not_clear_it():
    record, _ = run(NEW, ok(10, ABSENT), failed(30), ok(20, PRESENT))
    assert record.consecutive_errors == 1 and record.last_error is not None and record.last_error.at == 30
    assert (record.last_state, record.last_checked_at, record.active) == (PRESENT, 20, True)


def test_a_record_round_trips_through_json():
    record, _ = run(NEW, ok(10, PRESENT), failed(20))
    data = json.loads(json.dumps(record.to_dict()))
    assert data["last_state"] == "present" and data["last_error"]["code"] == "blocked"
    assert TargetRecord.from_dict(data) == record
    assert TargetRecord.from_dict(NEW.to_dict()) == NEW
