from dataclasses import dataclass

import pytest
from scrapersky.domain.pacing import HostPace, PacingPolicy

POLICY = PacingPolicy(default_rate=1.0)


def test_successes_speed_up_fast_until_the_first_refusal_then_stay_under_a_ceiling():
    pace = HostPace(1.0)
    pace = pace.after_success(POLICY)
    assert pace.rate == 1.5 and pace.ceiling is None  # slow start
    refused = pace.after_success(POLICY).after_rate_limit(POLICY)
    assert refused.rate == 2.25 * POLICY.decrease
    assert refused.ceiling == 2.25 * POLICY.ceiling_margin
    back = refused.after_success(POLICY).after_success(POLICY)
    assert back.rate == back.ceiling  # two successes climb back to the learnt limit
    later = refused
    for _ in range(50):
        later = later.after_success(POLICY)
    assert later.rate <= later.ceiling < 2.25  # never back up to the refused rate for a long while


def test_a_refusal_waits_out_retry_after_and_at_least_the_new_interval():
    pace = HostPace(2.0).after_rate_limit(POLICY)
    assert pace.next_allowed(POLICY, 100.0, 7.0) == 107.0
    assert pace.next_allowed(POLICY, 100.0, None) == 100.0 + 1 / 1.4


def test_a_pool_of_paced_proxies_stays_just_under_a_token_bucket_site():
    """One proxy against a site allowing 2 requests/s: goodput close to the limit, few refusals."""
    pace, t, tokens, last, ok, refused, next_at = HostPace(1.0), 0.0, 1.0, 0.0, 0, 0, 0.0
    while t < 60:
        t = max(t, next_at) + 0.01
        tokens, last = min(1.0, tokens + (t - last) * 2), t
        if tokens >= 1:
            tokens, ok = tokens - 1, ok + 1
            pace = pace.after_success(POLICY)
            next_at = t + POLICY.interval(pace.rate)
        else:
            refused += 1
            pace = pace.after_rate_limit(POLICY)
            next_at = pace.next_allowed(POLICY, t, 1.0)
    assert ok / 60 / 2 > 0.9
    assert refused / ok < 0.05


def test_a_refusal_at_the_learnt_ceiling_lowers_it_only_a_little():
    at_limit = HostPace(rate=1.9, ceiling=1.9)
    after = at_limit.after_rate_limit(POLICY)
    assert after.ceiling == 1.9 * POLICY.ceiling_step
    assert after.rate == 1.9 * POLICY.decrease


def test_a_site_that_halves_its_limit_is_followed_down():
    """Refusals at the ceiling keep lowering it: within a few 429s the pace is under the new limit."""
    pace, refusals = HostPace(rate=2.0, ceiling=2.0), 0
    for _ in range(200):
        if pace.rate > 1.0:  # the site now allows 1 request/s
            pace, refusals = pace.after_rate_limit(POLICY), refusals + 1
        else:
            pace = pace.after_success(POLICY)
    assert 0.8 < pace.rate <= 1.0
    assert refusals <= 8


def test_what_a_request_takes_beyond_the_usual_answer_time_counts_as_the_way_in():
    new = HostPace(2.0)  # nothing known of the host's answers yet: only a short way back is assumed
    assert new.reached_at(POLICY, sent=10.0, answered=10.003) == 10.0
    assert new.reached_at(POLICY, sent=10.0, answered=10.3) == pytest.approx(10.295)
    thinker = HostPace(2.0, answer_s=0.3)  # a site that usually takes 0.3 s to answer
    assert thinker.reached_at(POLICY, sent=10.0, answered=10.31) == 10.01  # thinking: arrived at once
    assert thinker.reached_at(POLICY, sent=10.0, answered=10.5) == pytest.approx(10.2)  # 0.2 s late on the way


def test_the_usual_answer_time_follows_the_answers_and_survives_pace_changes():
    pace = HostPace(1.0).with_answer_time(POLICY, 0.3)
    assert pace.answer_s == 0.3
    pace = pace.with_answer_time(POLICY, 0.8)  # one slow answer moves it a little
    assert pace.answer_s == pytest.approx(0.4)
    assert pace.after_success(POLICY).answer_s == pace.after_rate_limit(POLICY).answer_s == pace.answer_s


@dataclass(frozen=True)
class Host:
    rate: float | None = None
    max_rate: float | None = None
    ceiling: float | None = None


def test_a_proxy_new_to_a_host_starts_from_the_shared_ceiling_else_the_known_limit_else_the_default():
    assert POLICY.pace_of(None) == HostPace(rate=1.0)
    assert POLICY.pace_of(None, Host()) == HostPace(rate=1.0)
    assert POLICY.pace_of(None, Host(rate=4.0)) == HostPace(rate=4.0 * 0.97, ceiling=4.0 * 0.97)
    shared = POLICY.pace_of(None, Host(rate=4.0, ceiling=2.0))
    assert shared == HostPace(rate=2.0, ceiling=2.0)  # what the pool learnt beats what it was told


def test_a_proxys_own_learnt_pace_is_kept_under_the_hosts_cap_and_known_limit():
    learnt = HostPace(rate=9.0, ceiling=10.0, answer_s=0.2)
    assert POLICY.pace_of(learnt, Host(ceiling=9.0)) == learnt  # its own ceiling, a little above the pool's, holds
    assert POLICY.pace_of(learnt, Host(max_rate=3.0)) == HostPace(rate=3.0, ceiling=10.0, answer_s=0.2)
    limited = POLICY.pace_of(learnt, Host(rate=4.0))
    assert limited.rate == limited.ceiling == pytest.approx(4.0 * 0.97) and limited.answer_s == 0.2
    slow = HostPace(rate=0.5)  # slower than the limit: only the ceiling is set to it
    kept = POLICY.pace_of(slow, Host(rate=4.0))
    assert kept.rate == 0.5 and kept.ceiling == pytest.approx(3.88)


def test_a_slot_opens_at_its_booked_start_or_now_and_books_the_next_one_interval_later():
    assert POLICY.opens_at(None, 100.0) == 100.0
    assert POLICY.opens_at(99.0, 100.0) == 100.0
    assert POLICY.opens_at(100.4, 100.0) == 100.4
    assert POLICY.slot_after(100.4, HostPace(rate=2.0)) == pytest.approx(100.9)


def test_only_a_wait_longer_than_the_pace_itself_is_a_cooldown():
    pace = HostPace(rate=2.0)  # 0.5 s between requests
    assert not POLICY.is_cooldown(100.5, pace, now=100.0)
    assert not POLICY.is_cooldown(100.54, pace, now=100.0)  # within the 50 ms a slot may drift
    assert POLICY.is_cooldown(100.6, pace, now=100.0)
    assert POLICY.is_cooldown(120.0, pace, now=100.0)  # Retry-After: 20


def test_capacity_adds_the_proxies_paces_and_assumes_the_default_rate_with_none():
    assert POLICY.capacity([HostPace(1.5), HostPace(0.5)]) == 2.0
    assert POLICY.capacity([]) == POLICY.default_rate


def test_a_useful_answer_speeds_up_learns_the_answer_time_and_counts_the_next_slot_from_the_arrival():
    learnt = POLICY.after_answer(HostPace(1.0), None, sent=100.0, answered=100.3)
    assert learnt.pace.rate == 1.5 and learnt.pace.ceiling is None and learnt.pace.answer_s == pytest.approx(0.3)
    assert learnt.next_at == pytest.approx(100.295 + 1 / 1.5)  # arrived just before the answer left
    assert learnt.shared_ceiling is None


def test_a_useful_answer_never_speeds_past_the_hosts_cap():
    learnt = POLICY.after_answer(HostPace(1.8), Host(max_rate=2.0), sent=100.0, answered=100.004)
    assert learnt.pace.rate == 2.0
    assert learnt.next_at == pytest.approx(100.5)


def test_a_failed_request_keeps_the_pace_and_spaces_the_next_from_its_arrival():
    pace = HostPace(2.0, answer_s=0.1)
    learnt = POLICY.after_failure(pace, sent=100.0, answered=100.5)
    assert learnt.pace == pace
    assert learnt.next_at == pytest.approx(100.4 + 0.5)


def test_a_refusal_slows_down_waits_out_retry_after_and_shares_its_ceiling():
    learnt = POLICY.after_refusal(HostPace(2.0), now=100.0, retry_after_s=20.0)
    assert learnt.pace.rate == pytest.approx(1.4) and learnt.pace.ceiling == pytest.approx(1.7)
    assert learnt.next_at == 120.0
    assert learnt.shared_ceiling == learnt.pace.ceiling


def test_an_unused_pace_is_forgotten_hours_after_its_last_use_but_never_inside_a_cooldown():
    assert POLICY.forget_at(100.0, 101.0) == 101.0 + POLICY.keep_s  # the next slot, then the keep
    assert POLICY.forget_at(100.0, None) == 100.0 + POLICY.keep_s
    retry_after = 3 * POLICY.keep_s  # a site that said "come back in 18 hours"
    assert POLICY.forget_at(100.0, 100.0 + retry_after) > 100.0 + retry_after
