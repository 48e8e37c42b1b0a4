"""Each local run gets its own folder, and `latest` names it from the start."""

from local.runs import KEEP_RUNS, LATEST, SNAPSHOT_FILE, new_run_folder


def test_latest_moves_to_the_new_folder_before_the_run_writes_anything(tmp_path):
    first = new_run_folder(tmp_path)
    (first / SNAPSHOT_FILE).write_text("the first run's table\n")
    second = new_run_folder(tmp_path)
    # A run that fails now has written nothing: `latest` must not show the first run's table.
    assert (tmp_path / LATEST).resolve() == second.resolve() != first.resolve()
    assert not (tmp_path / LATEST / SNAPSHOT_FILE).exists()
    assert (first / SNAPSHOT_FILE).exists()


def test_only_the_newest_runs_are_kept_and_never_the_new_one_dropped(tmp_path):
    for _ in range(KEEP_RUNS + 3):
        folder = new_run_folder(tmp_path)
        assert folder.is_dir() and (tmp_path / LATEST).resolve() == folder.resolve()
    assert len([p for p in (tmp_path / "runs").iterdir()]) == KEEP_RUNS


def test_a_real_folder_named_latest_is_left_alone(tmp_path):
    (tmp_path / LATEST).mkdir()
    (tmp_path / LATEST / "notes.txt").write_text("mine\n")
    try:
        new_run_folder(tmp_path)
    except SystemExit as stopped:
        assert "is not a link to a run folder" in str(stopped)
    else:
        raise AssertionError("a folder named latest was replaced")
    assert (tmp_path / LATEST / "notes.txt").read_text() == "mine\n"
