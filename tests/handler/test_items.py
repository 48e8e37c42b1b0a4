"""DynamoDB items on plain data: values the table accepts, derived from the data only."""

from handler import items


def test_tiny_numbers_are_stored_as_zero_as_dynamodb_allows():
    assert items.number(1e-200) == {"N": "0.0"}
    assert items.number(-2.5e-7) == {"N": "-2.5E-7"}


def test_window_sort_key_is_fixed_width_utc_and_sorts_by_time():
    keys = [items.window_key("press-001", ms)["sk"]["S"] for ms in (1_577_836_800_000, 1_795_081_560_000)]
    assert keys == ["2020-01-01T00:00:00.000Z#metrics", "2026-11-19T09:46:00.000Z#metrics"]
    assert sorted(keys) == keys


def test_numbers_are_the_shortest_repr_as_decimal_writes_it():
    import random
    import struct
    from decimal import Decimal

    rng = random.Random(9)
    values = [0.1, 70.0, -1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1.5e300, 5e-300, 123456.789]
    values += [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(20_000)]
    values += [rng.uniform(-1, 1) * 10 ** rng.uniform(-8, 18) for _ in range(20_000)]
    for value in values:
        if value == value and abs(value) >= 1e-120:  # NaN and tiny values: the other tests
            assert items.number(value) == {"N": str(Decimal(repr(value)))}, value
    assert items.number(float("inf")) == {"N": "Infinity"} and items.number(12) == {"N": "12"}
