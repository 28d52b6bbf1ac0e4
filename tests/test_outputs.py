"""Output locations (``sapbert_st.outputs``): checks, overwrite rules, staged writes."""

from __future__ import annotations

import os

import pytest

from sapbert_st.outputs import (
    OutputPathError,
    check_output_file,
    check_output_folder,
    staged_folder,
    write_text_file,
)


def leftovers(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def test_new_and_empty_folders_are_fine(tmp_path):
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty") == tmp_path / "empty"
    assert not (tmp_path / "a").exists()  # a check has no side effects


@pytest.mark.parametrize("check", [check_output_folder, check_output_file])
def test_wrong_kind_and_existing_outputs(check, tmp_path):
    a_file, folder = tmp_path / "f.txt", tmp_path / "d"
    a_file.write_text("x", encoding="utf-8")
    folder.mkdir()
    (folder / "x").write_text("x", encoding="utf-8")
    if check is check_output_folder:
        with pytest.raises(OutputPathError, match=r"--output .*f\.txt: is a file; expected a folder"):
            check(a_file, "--output", overwrite=True)
        with pytest.raises(OutputPathError, match="not empty; pass --overwrite to replace it"):
            check(folder, "--output", hint="pass --overwrite")
        assert check(folder, overwrite=True) == folder
    else:
        with pytest.raises(OutputPathError, match="is a folder; expected a file path"):
            check(folder, "--output", overwrite=True)
        with pytest.raises(OutputPathError, match="the file exists; pass overwrite=True"):
            check(a_file)
        assert check(a_file, overwrite=True) == a_file
    with pytest.raises(OutputPathError, match="f.txt is a file, not a folder"):
        check(a_file / "below" / "x")


def test_protected_paths_are_never_written_over(tmp_path):
    model = tmp_path / "models" / "m"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "weights").write_text("w", encoding="utf-8")
    protected = [("--model", model), ("--other", None), ("--hub", "org/name")]
    for output, where in ((model, "is"), (model.parent, "contains")):
        with pytest.raises(OutputPathError, match=f"{where} the --model .*overwrite or not"):
            check_output_folder(output, "--output", overwrite=True, protected=protected)
    with pytest.raises(OutputPathError, match="is inside the --model"):
        check_output_folder(model / "sub", "--output", overwrite=True, protected=protected)
    # a new (or empty) folder inside the model folder replaces nothing
    assert check_output_folder(model / "index", "--output", protected=protected)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root may write anywhere")
def test_unwritable_parent(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_folder(locked / "out", "--output")
    finally:
        locked.chmod(0o700)


def test_staged_folder_replaces_as_a_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.faiss").write_text("old", encoding="utf-8")
    with pytest.raises(OutputPathError, match="pass overwrite=True"), staged_folder(out):
        pass
    with staged_folder(out, overwrite=True) as folder:
        assert folder != out and folder.parent == out.parent
        (folder / "new.txt").write_text("new", encoding="utf-8")
        assert (out / "stale.faiss").is_file()  # the old output stays until the new is complete
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert leftovers(out) == []
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask


def test_staged_folder_that_fails_keeps_the_old_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), staged_folder(out, overwrite=True) as folder:
        (folder / "half.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("crashed while saving")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert leftovers(out) == []
    with (pytest.raises(OutputPathError, match="could not write the folder .*No space"),
          staged_folder(out, "--output", overwrite=True)):
        raise OSError(28, "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


def test_staged_folder_into_an_empty_folder_writes_in_place(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    with pytest.raises(RuntimeError), staged_folder(out) as folder:
        assert folder == out
        (folder / "half.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("crashed")
    assert list(out.iterdir()) == []  # emptied again
    with staged_folder(out) as folder:
        (folder / "done.txt").write_text("done", encoding="utf-8")
    assert [p.name for p in out.iterdir()] == ["done.txt"]


def test_write_text_file(tmp_path):
    path = tmp_path / "new" / "results.json"
    write_text_file(path, "{}\n")
    assert path.read_text(encoding="utf-8") == "{}\n"
    with pytest.raises(OutputPathError, match="exists"):
        write_text_file(path, "again")
    write_text_file(path, "[]\n", overwrite=True)
    assert path.read_text(encoding="utf-8") == "[]\n"
    assert leftovers(path) == []
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
