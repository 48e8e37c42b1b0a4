"""The backtest's CSV reader on files in each shape exports come in, and on files it must refuse."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.detection_real import SKAB_COLUMNS
from local.csv_series import CsvError, ReadOptions, read_series, sensor_name

T0 = datetime(2026, 3, 9, 10, 0, 0, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)


def write(tmp_path: Path, text: str, name: str = "line-3.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def rows(separator: str, times: list[str], header_time: str = "timestamp") -> str:
    lines = [separator.join([header_time, "Temperature (°C)", "Motor Current"])]
    lines += [separator.join([stamp, f"{70 + index}.5", f"{1 + index / 10}"]) for index, stamp in enumerate(times)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("separator", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_the_separator_is_sniffed_and_the_values_read(tmp_path, separator):
    series = read_series(write(tmp_path, rows(separator, ["2026-03-09 10:00:00", "2026-03-09 10:00:01"])))
    assert series.separator == separator
    assert [column.sensor for column in series.sensors] == ["temperature", "motor_current"]
    assert list(series.sensors[0].values) == [70.5, 71.5]
    assert list(series.sensors[1].values) == [1.0, 1.1]
    assert list(series.times) == [T0_MS, T0_MS + 1000]
    assert series.devices == ["line-3"]


@pytest.mark.parametrize("times, written", [
    (["2026-03-09T10:00:00Z", "2026-03-09T10:00:01.250Z"], "2026-03-09T10:00:01.250Z"),
    (["2026-03-09T11:00:00+01:00", "2026-03-09T11:00:01.250+01:00"], "2026-03-09T11:00:01.250+01:00"),
    (["2026-03-09 10:00:00", "2026-03-09 10:00:01.250"], "2026-03-09 10:00:01.250"),
    ([str(T0_MS // 1000), f"{T0_MS / 1000 + 1.25:.3f}"], f"{T0_MS / 1000 + 1.25:.3f}"),
    ([str(T0_MS), str(T0_MS + 1250)], str(T0_MS + 1250)),
], ids=["iso-utc", "iso-offset", "space-naive", "epoch-s", "epoch-ms"])
def test_each_time_format_reads_to_the_same_instants_and_writes_back_as_the_file(tmp_path, times, written):
    series = read_series(write(tmp_path, rows(",", times)))
    assert list(series.times) == [T0_MS, T0_MS + 1250]
    assert series.time_format.format(series.times[1]) == written


def test_naive_times_are_on_the_given_time_zone_and_written_back_on_its_clock(tmp_path):
    path = write(tmp_path, rows(";", ["2026-07-01 12:00:00", "2026-07-01 12:00:01"], header_time="Zeit"))
    series = read_series(path, ReadOptions(timezone="Europe/Berlin"))
    # Summer time in Berlin is UTC+2.
    assert series.times[0] == int(datetime(2026, 7, 1, 10, tzinfo=timezone.utc).timestamp() * 1000)
    assert series.time_format.format(series.times[0]) == "2026-07-01 12:00:00"
    assert series.time_column == "Zeit"


def test_other_time_formats_by_strptime_pattern(tmp_path):
    path = write(tmp_path, rows(";", ["09.03.2026 10:00:00", "09.03.2026 10:00:01"], header_time="Datum"))
    series = read_series(path, ReadOptions(time_format="%d.%m.%Y %H:%M:%S"))
    assert list(series.times) == [T0_MS, T0_MS + 1000]
    assert series.time_format.format(series.times[1]) == "09.03.2026 10:00:01"


def test_a_time_column_can_be_named_and_epoch_times_refuse_a_time_zone(tmp_path):
    text = "when;value\n" + "".join(f"{T0_MS // 1000 + i};{i}\n" for i in range(3))
    path = write(tmp_path, text)
    with pytest.raises(CsvError, match="no time column.*--time-column"):
        read_series(path)
    assert list(read_series(path, ReadOptions(time_column="when")).times) == [T0_MS, T0_MS + 1000, T0_MS + 2000]
    with pytest.raises(CsvError, match="epoch numbers.*drop --timezone"):
        read_series(path, ReadOptions(time_column="when", timezone="Europe/Berlin"))


def test_a_device_column_splits_the_rows_by_device_in_file_order(tmp_path):
    text = "time,machine,vibration\n" + "".join(
        f"2026-03-09T10:00:{i // 2:02d}Z,{'press-1' if i % 2 == 0 else 'press-2'},{i}\n" for i in range(6))
    series = read_series(write(tmp_path, text), ReadOptions(device_column="machine"))
    assert series.devices == ["press-1", "press-2"]
    assert list(series.device_index) == [0, 1, 0, 1, 0, 1]
    assert [column.sensor for column in series.sensors] == ["vibration"]
    assert series.out_of_order.total == 0  # per device, each one's times increase


def test_label_columns_are_not_sensors_and_the_chosen_one_is_read(tmp_path):
    text = "datetime;Current;anomaly;changepoint;status\n" + "".join(
        f"2026-03-09 10:00:0{i};{i};{1.0 if i >= 2 else 0.0};0;running\n" for i in range(4))
    series = read_series(write(tmp_path, text), ReadOptions(labels="anomaly"))
    assert [column.sensor for column in series.sensors] == ["current"]
    assert series.label_columns == ["anomaly", "changepoint"]
    assert series.text_columns == ["status"]
    assert list(series.labels) == [0, 0, 1, 1]


@pytest.mark.parametrize("header, name, unit", [
    ("Temperature (°C)", "temperature", "°C"),  # the known sensor's unit: its limits apply
    ("Pressure [bar]", "pressure_bar", "bar"),  # not kPa: kept apart from the kPa limits of `pressure`
    ("Temperature [°F]", "temperature_degf", "°F"),
    ("Motor Current", "motor_current", None),
    ("Volume Flow RateRMS", "volume_flow_rate_rms", None),
    ("Accelerometer1RMS", "accelerometer1_rms", None),
    ("2nd bearing", "s_2nd_bearing", None),
])
def test_column_names_become_message_format_sensor_names(header, name, unit):
    assert sensor_name(header) == (name, unit)


def test_an_exports_known_names_and_sensor_overrides_are_used(tmp_path):
    header = ["datetime", *SKAB_COLUMNS, "anomaly", "changepoint"]
    text = ";".join(header) + "\n" + ";".join(["2026-03-09 10:00:00"] + ["1.5"] * len(SKAB_COLUMNS) + ["0", "0"]) + "\n"
    path = write(tmp_path, text)
    skab = read_series(path, ReadOptions(known_columns=SKAB_COLUMNS))
    assert [column.sensor for column in skab.sensors] == list(SKAB_COLUMNS.values())
    renamed = read_series(path, ReadOptions(known_columns=SKAB_COLUMNS, sensors={"loop_bar": "Pressure"},
                                            ignore=("Voltage",)))
    names = {column.header: column.sensor for column in renamed.sensors}
    assert names["Pressure"] == "loop_bar" and "Voltage" not in names
    assert renamed.ignored_columns == ["Voltage"]


def test_columns_that_map_to_one_name_are_kept_apart(tmp_path):
    series = read_series(write(tmp_path, "time,Temp,temp,TEMP\n2026-03-09T10:00:00Z,1,2,3\n"))
    assert [column.sensor for column in series.sensors] == ["temp", "temp_2", "temp_3"]


def test_decimal_commas_are_read_in_semicolon_files(tmp_path):
    series = read_series(write(tmp_path, "Zeit;Druck [bar]\n2026-03-09 10:00:00;1,25\n2026-03-09 10:00:01;-0,5\n"))
    assert list(series.sensors[0].values) == [1.25, -0.5]
    assert series.sensors[0].sensor == "druck" and series.sensors[0].unit == "bar"


def test_refused_rows_are_counted_by_reason_with_their_first_lines(tmp_path):
    lines = ["time,temperature,vibration"]
    for i in range(12):
        lines.append(f"2026-03-09T10:00:{i:02d}Z,{70 + i},{2 + i / 100}")
    lines[3] = "2026-03-09T10:00:02Z,seventy,2.0"          # line 4: non-numeric
    lines[5] = ",71,2.0"                                     # line 6: no time
    lines[6] = "yesterday,71,2.0"                            # line 7: unreadable time
    lines[8] = "2026-03-09T10:00:07Z,NaN,2.0"                 # line 9: not a JSON number
    lines[9] = "2026-03-09T10:00:08Z,71"                      # line 10: a field short
    lines[10] = "2026-03-09T10:00:09Z,,"                      # line 11: nothing to send
    lines[11] = "2026-03-09T10:00:10Z,,2.5"                   # line 12: one empty cell, sent without it
    lines.append("2026-03-09T10:00:05Z,72,2.0")               # line 14: earlier than line 13
    lines.append("")
    lines.append("2026-03-09T10:00:11Z,72,2.0")               # line 16: same time as line 13
    series = read_series(write(tmp_path, "\n".join(lines) + "\n"))
    assert series.refused.counts == {
        "rows with a non-numeric value (first in 'temperature')": 2,
        "rows without a time": 1,
        "rows whose time is not ISO 8601": 1,
        "rows with 2 fields, the header has 3": 1,
        "rows without any sensor value": 1,
    }
    assert series.refused.first_lines["rows with a non-numeric value (first in 'temperature')"] == [4, 9]
    assert series.refused.first_lines["rows without a time"] == [6]
    assert series.rows_read == 14 and series.blank_lines == 1 and len(series) == 8
    assert series.empty_cells == 1
    assert math.isnan(series.sensors[0].values[list(series.lines).index(12)])
    assert series.out_of_order.counts == {"rows out of time order (sent in file order)": 1,
                                          "rows repeating the previous time": 1}
    assert series.out_of_order.first_lines["rows out of time order (sent in file order)"] == [14]
    assert list(series.lines)[-2:] == [14, 16]  # kept, in file order


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\x00\x01binary\x00", "not a text file"),
    (b"just one column\n1\n2\n", "one column only"),
    (b"time,temperature\n2026-03-09T10:00:00Z,hot\n2026-03-09T10:00:01Z,warm\n", "no sensor column"),
    (b"time,temperature\nnot a time,1\n", "cannot read the time 'not a time'"),
    (b"a,b;c\n1;2,3\n1,2,3,4\n", "cannot tell the separator"),
], ids=["empty", "binary", "one-column", "no-sensor", "bad-times", "no-separator"])
def test_an_unreadable_file_gets_one_error_naming_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(CsvError) as raised:
        read_series(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(CsvError, match="no such file"):
        read_series(tmp_path / "nope.csv")
    with pytest.raises(CsvError, match="is a folder"):
        read_series(tmp_path)


def test_an_encoding_change_past_the_sample_is_named_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr("local.csv_series.SNIFF_BYTES", 200)
    lines = ["time,temperature"] + [f"2026-03-09T10:00:{i:02d}Z,{i}" for i in range(20)] + ["2026-03-09T10:01:00Z,\xb0"]
    path = tmp_path / "mixed.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    with pytest.raises(CsvError, match=r"mixed.csv: line 22 is not utf-8-sig text, as the lines before it are: export the whole file"):
        read_series(path)


def test_windows_1252_exports_are_read(tmp_path):
    path = write(tmp_path, "time;Temperatur (°C)\n2026-03-09 10:00:00;21,5\n", encoding="cp1252")
    series = read_series(path)
    assert series.encoding == "cp1252" and series.sensors[0].unit == "°C" and series.sensors[0].values[0] == 21.5


def test_a_column_named_like_time_is_the_time_column_only_if_it_holds_times(tmp_path):
    text = "Last Update,Sample Time,level\n3,2026-03-09T10:00:00Z,1\n4,2026-03-09T10:00:01Z,2\n"
    series = read_series(write(tmp_path, text))
    assert series.time_column == "Sample Time"
    assert [column.sensor for column in series.sensors] == ["last_update", "level"]


def test_the_empty_field_after_a_trailing_separator_is_no_sensor(tmp_path):
    series = read_series(write(tmp_path, "time;level;\n2026-03-09 10:00:00;1;\n2026-03-09 10:00:01;2;\n"))
    assert [column.sensor for column in series.sensors] == ["level"]


def test_slashed_dates_and_separate_date_and_time_columns(tmp_path):
    slashed = read_series(write(tmp_path, "Time;level\n2026/03/09 10:00:00;1\n2026/03/09 10:00:01;2\n"))
    assert list(slashed.times) == [T0_MS, T0_MS + 1000]
    assert slashed.time_format.format(slashed.times[1]) == "2026/03/09 10:00:01"
    split = read_series(write(tmp_path, "Date,Time,level\n2026-03-09,10:00:00,1\n2026-03-09,10:00:01.5,2\n,10:00:02,3\n",
                              name="plc.csv"))
    assert split.time_column == "Date + Time"
    assert list(split.times) == [T0_MS, T0_MS + 1500]
    assert [column.sensor for column in split.sensors] == ["level"]
    assert split.refused.counts == {"rows without a time": 1}
