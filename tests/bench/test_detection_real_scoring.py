"""The real-data benchmark's scoring (bench/detection_real.py), on small replays made here."""

from bench.detection_real import Confusion, Replay, covered_rows, false_row_places, score_events
from handler.detection import Episode

STEP_MS = 1000


def replay_of(count: int, *spans: tuple[int, int | None]) -> Replay:
    """A replay of `count` rows, one second apart, with one episode per (first row, last row or None: open)."""
    timestamps = [index * STEP_MS for index in range(count)]
    episodes = [Episode("flow_rate", "level_shift", ("flow_rate",), first * STEP_MS,
                        ended_at=None if last is None else last * STEP_MS) for first, last in spans]
    return Replay(timestamps, episodes)


def test_rows_in_episodes_include_both_ends_and_an_open_episode_reaches_the_last_row():
    assert covered_rows(replay_of(10, (2, 3), (7, None))) == [
        False, False, True, True, False, False, False, True, True, True]


def test_false_rows_are_placed_after_or_before_the_labeled_rows_of_their_episode_or_apart():
    labels = [False] * 4 + [True] * 3 + [False] * 13
    # Rows 2-8 cover the labeled rows 4-6 from 2 before to 2 after; rows 12-14 touch no label;
    # row 1 lies before the first scored row.
    run = replay_of(20, (1, 8), (12, 14))
    assert false_row_places(run, labels, first_scored=2) == {"before": 2, "after": 2, "apart": 3}


def test_a_row_in_two_episodes_counts_once_in_the_first_place_that_applies():
    labels = [False] * 3 + [True] * 2 + [False] * 5
    # Row 6 is after the labels of the first episode and in the second, which covers no label.
    run = replay_of(10, (3, 6), (6, 7))
    assert false_row_places(run, labels, first_scored=0) == {"after": 2, "apart": 1}


def test_confusion_rows_report_pooled_rates():
    confusion = Confusion()
    confusion.add([True, True, False, False, True], [True, False, False, True, True])
    assert (confusion.tp, confusion.fp, confusion.tn, confusion.fn) == (2, 1, 1, 1)
    assert confusion.row("x") == "| x | 0.667 | 0.667 | **0.667** | 50.0 % | 33.3 % | 2 / 1 / 1 / 1 |"


def test_an_event_overlapping_a_window_is_a_hit_and_the_rest_false():
    flags = [False] * 3 + [True] * 2 + [False] * 10 + [True] + [False] * 4
    result = score_events(flags, windows=[(2, 6), (18, 19)], first_scored=0)
    assert (result.precision, result.recall) == (0.5, 0.5)
