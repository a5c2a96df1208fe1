"""Unit tests for the pipeline stages (accepted, stored, processed), their figures, and figures.py."""

from __future__ import annotations

import pytest

from seed.core.figures import percentile, rate, spread
from seed.core.stages import STEADY_MIN_IMAGES, StageBook, middle, rate_by_size, steady_rate
from seed.core.summary import Summary


# --- middle -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "now", "floor", "expected"),
    [
        (10.0, 12.0, None, 11.0),  # the middle of the interval between two looks
        (10.0, 12.0, 9.0, 11.0),  # a floor before the interval changes nothing
        (10.0, 12.0, 11.0, 11.5),  # never before the stage before
        (10.0, 12.0, 12.0, 12.0),
        (10.0, 12.0, 13.0, 12.0),  # a floor after now (a late 202): never after the look
        (12.0, 12.0, None, 12.0),
    ],
)
def test_middle_stays_inside_its_bounds(before, now, floor, expected):
    assert middle(before, now, floor) == expected


def test_middle_is_always_between_the_floor_the_look_before_and_now():
    for before in (0.0, 1.0, 2.5):
        for floor in (None, 0.0, 1.5, 3.0, 9.0):
            t = middle(before, 3.0, floor)
            assert t <= 3.0
            assert t >= min(3.0, max(before, floor if floor is not None else before))


# --- one image's stages ----------------------------------------------------------------------------
def test_stored_then_processed_each_timed_at_the_middle_of_the_poll_that_saw_it():
    book = StageBook()
    book.accepted(0, "u", 10.0)
    assert book.seen(0, "u", 0, before=10.0, now=12.0)
    s = book.stages[0]
    assert (s.stored_at, s.processed_at, s.faces) == (11.0, None, 0)
    assert not book.seen(0, "u", 0, before=12.0, now=13.0)  # nothing new
    assert book.seen(0, "u", 2, before=13.0, now=15.0)
    assert (s.stored_at, s.processed_at, s.faces) == (11.0, 14.0, 2)
    assert not book.seen(0, "u", 2, before=15.0, now=16.0)


def test_stored_and_processed_in_one_poll_keep_their_order():
    book = StageBook()
    book.accepted(0, "u", 11.0)
    book.seen(0, "u", 1, before=10.0, now=12.0)
    s = book.stages[0]
    assert s.accepted_at <= s.stored_at <= s.processed_at <= 12.0
    assert (s.stored_at, s.processed_at) == (11.5, 11.75)


def test_a_new_uuid_starts_the_stages_over():
    book = StageBook()
    book.accepted(0, "old", 1.0)
    book.seen(0, "old", 1, 1.0, 2.0)
    book.accepted(0, "new", 5.0)  # a repair
    s = book.stages[0]
    assert (s.uuid, s.stored_at, s.processed_at, s.accepted_at) == ("new", None, None, 5.0)


def test_faceless_is_settled_only_when_stored_and_a_late_face_wins():
    book = StageBook()
    book.accepted(0, "u", 1.0)
    book.accepted(1, "v", 1.0)
    book.seen(0, "u", 0, 1.0, 3.0)  # stored at 2
    book.settle_faceless(0, 1.5)  # never before it was stored
    book.settle_faceless(1, 5.0)  # not stored: nothing to settle
    s0, s1 = book.stages[0], book.stages[1]
    assert (s0.processed_at, s0.faceless) == (2.0, True)
    assert (s1.processed_at, s1.faceless) == (None, False)
    book.settle_faceless(0, 9.0)  # settled once
    assert s0.processed_at == 2.0
    assert book.seen(0, "u", 1, before=9.0, now=11.0)
    assert (s0.processed_at, s0.faceless, s0.faces) == (10.0, False, 1)


def test_drop_forgets_an_image():
    book = StageBook()
    book.accepted(0, "u", 1.0)
    book.drop(0)
    book.drop(5)
    assert book.stages == {}


def test_samples_count_only_counted_stages_and_keep_the_backlog_peak():
    book = StageBook()
    for i in range(4):
        book.accepted(i, f"u{i}", 1.0)
    book.accepted(9, "resumed", None, counted=False)
    book.seen(9, "resumed", 1, 0.0, 1.0)
    book.sample(2.0, range(10))
    book.seen(0, "u0", 1, 2.0, 3.0)
    book.seen(1, "u1", 0, 2.0, 3.0)
    book.sample(3.0, range(10))
    assert book.samples == [(2.0, 4, 0, 0), (3.0, 4, 2, 1)]
    assert book.backlog_peak == 4


# --- the pipeline's figures ----------------------------------------------------------------------------
def test_figures_are_seconds_from_the_first_upload_and_count_only_counted_stages():
    book = StageBook()
    book.accepted(0, "a", 101.0)
    book.seen(0, "a", 1, 101.0, 103.0)  # stored 102, processed 102.5
    book.accepted(1, "b", 102.0)
    book.seen(1, "b", 0, 102.0, 106.0)  # stored 104, never processed
    book.accepted(2, "old", None, counted=False)  # resumed: not timed
    book.seen(2, "old", 3, 0.0, 500.0)
    book.accepted(3, "present", 50.0, counted=False)
    book.seen(3, "present", 3, 50.0, 900.0)
    book.sample(106.0, range(4))
    p = book.figures(first_sent=100.0, held_back_s=1.23456)
    assert (p.accepted_s, p.stored_s, p.processed_s) == (2.0, 4.0, 2.5)
    assert p.lag_s == {
        "stored": {"p50": 1.0, "p95": 2.0, "p99": 2.0, "max": 2.0},
        "processed": {"p50": 1.5, "p95": 1.5, "p99": 1.5, "max": 1.5},
    }
    assert p.processed_per_s == 0.4  # one image over the 2.5 s from the first upload
    assert p.backlog_peak == 1 and p.held_back_s == 1.235


def test_figures_without_a_first_upload_or_counted_stages_are_empty():
    book = StageBook()
    assert book.figures(None, 0.0).accepted_s is None
    book.accepted(0, "old", None, counted=False)
    book.seen(0, "old", 1, 0.0, 1.0)
    p = book.figures(0.0, 2.0)
    assert (p.accepted_s, p.stored_s, p.processed_s, p.processed_per_s) == (None, None, None, None)
    assert p.lag_s == {}
    assert p.held_back_s == 2.0


# --- the steady rate -----------------------------------------------------------------------------------
def test_steady_rate_of_a_steady_stream_is_its_rate():
    times = [100.0 + k / 4 for k in range(1, 201)]  # 4 images a second
    assert steady_rate(times, 100.0) == 4.0


def test_steady_rate_leaves_out_the_ramp_up_and_the_tail():
    times = [100.0 + 10 + 2 * k for k in range(4)]  # a slow start: 4 images in 8 s after 10 s of nothing
    times += [118.0 + k / 10 for k in range(1, 73)]  # then 10 a second
    times += [130.0 + 5 * k for k in range(1, 5)]  # a slow tail
    assert len(times) == 80
    assert steady_rate(sorted(times), 100.0) == 10.0


def test_steady_rate_with_times_quantized_to_the_polls():
    times = sorted(0.5 + k for k in range(10) for _ in range(10))  # 10 a second, seen once a second
    assert steady_rate(times, 0.0) == 10.0


def test_steady_rate_of_few_images_is_over_the_whole_span_from_the_first_upload():
    times = [1.0 * k for k in range(1, STEADY_MIN_IMAGES)]
    assert steady_rate(times, 0.0) == 1.0
    assert steady_rate([5.0, 10.0], 0.0) == 0.2
    assert steady_rate([], 0.0) is None
    assert steady_rate([3.0], 3.0) is None  # no span


def test_steady_rate_of_images_all_processed_at_once_is_none():
    assert steady_rate([7.0] * 40, 0.0) is None


# --- figures.py ----------------------------------------------------------------------------------------
def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert [percentile(values, p) for p in (0, 10, 50, 90, 95, 100)] == [1.0, 1.0, 5.0, 9.0, 10.0, 10.0]
    assert percentile([], 50) == 0.0
    assert percentile([4.0], 99) == 4.0


def test_rate_is_zero_for_an_empty_window():
    assert rate(10, 0.0, 5.0) == 2.0
    assert rate(10, None, 5.0) == 0.0 and rate(10, 5.0, None) == 0.0
    assert rate(10, 5.0, 5.0) == 0.0 and rate(0, 0.0, 5.0) == 0.0


def test_spread_is_p50_p95_p99_max_rounded_to_ms():
    assert spread([]) is None
    assert spread([0.0004, 1.23456, 2.0]) == {"p50": 1.235, "p95": 2.0, "p99": 2.0, "max": 2.0}
    assert spread(iter([3.0, 1.0, 2.0])) == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0}


def test_the_processed_rate_is_shown_against_the_events_size():
    # 40 images at 10/s, then 40 more at 2/s: the event slowed as it grew.
    fast = [i * 0.1 for i in range(40)]
    slow = [fast[-1] + (i + 1) * 0.5 for i in range(40)]
    by_size = rate_by_size(fast + slow, held_before=100)
    assert [size for size, _ in by_size] == [120, 140, 160, 180]
    assert by_size[0][1] == pytest.approx(10.0, rel=0.1) and by_size[-1][1] == pytest.approx(2.0, rel=0.1)


def test_a_slowdown_of_a_third_or_more_is_said():
    s = Summary(
        event_code="e", events=["e"], host="h", host_kind="local", data_set="d", images=80, wait_for="faces"
    )
    s.pipeline.rate_by_size = [[20, 12.0], [40, 9.0], [60, 6.0], [80, 4.0]]
    assert "12.0 images/s at first and 4.0/s past 60 images in the event (3.0x slower" in s.slowdown_text()
    s.pipeline.rate_by_size = [[20, 12.0], [40, 11.0], [60, 10.0]]
    assert s.slowdown_text() == ""
