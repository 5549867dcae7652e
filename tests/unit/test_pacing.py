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
