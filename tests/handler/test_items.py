"""DynamoDB items on plain data: values the table accepts, derived from the data only."""

from handler import items


def test_tiny_numbers_are_stored_as_zero_as_dynamodb_allows():
    assert items.number(1e-200) == {"N": "0.0"}
    assert items.number(-2.5e-7) == {"N": "-2.5E-7"}


def test_window_sort_key_is_fixed_width_utc_and_sorts_by_time():
    keys = [items.window_key("press-001", ms)["sk"]["S"] for ms in (1_577_836_800_000, 1_795_081_560_000)]
    assert keys == ["2020-01-01T00:00:00.000Z#metrics", "2026-11-19T09:46:00.000Z#metrics"]
    assert sorted(keys) == keys
