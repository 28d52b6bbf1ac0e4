"""Output locations: checked before the work, never overwritten by accident, never half-written.

Training a model, encoding a dictionary or running the quickstart takes minutes to hours,
so a command checks where its results go *first thing* (:func:`check_output_folder`,
:func:`check_output_file`) and then writes them through :func:`staged_folder` /
:func:`write_text_file`:

- a path that does not exist yet (its parent folders are created) or an empty folder is
  written to;
- an existing non-empty folder, or an existing file, is replaced only with ``overwrite``;
  a folder is then replaced *as a whole*: the new content is written into a fresh hidden
  sibling (``.NAME.partial-XXXX``) that takes the old folder's place only once complete,
  so no file of the old output (an ``index.faiss`` of an earlier HNSW build, say) is left
  behind, and a failed run leaves the old output as it was;
- a file where a folder is expected, or a folder where a file is expected, is an error;
- a *protected* path (the model an index is built from, a training run's base model, an
  input file) is never written over, ``overwrite`` or not: neither the path itself, nor
  a folder that contains it, nor (with ``overwrite``) an existing file or non-empty folder
  inside it; a new or empty folder inside it is fine.

Errors are :class:`OutputPathError` (an ``OSError``) with a one-line message that names
the argument and the path: ``"--output runs/idx: the folder exists and is not empty; pass
--overwrite to replace it"``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

PathLike = str | os.PathLike

#: ``(argument, path)`` pairs that an output must never replace; ``path`` may be ``None``
#: or a Hub id (then nothing on disk is protected).
Protected = Sequence[tuple[str, PathLike | None]]


class OutputPathError(OSError):
    """An output location that cannot, or must not, be written; the message names it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path.absolute()


def _nearest_existing(path: Path) -> Path:
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def _check_creatable(path: Path, argument: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder."""
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise OutputPathError(f"{argument} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{argument} {path}: cannot create it, {ancestor} is not writable")


def _check_protected(path: Path, argument: str, protected: Protected, replacing: bool) -> None:
    """``replacing``: an existing file or non-empty folder at ``path`` would be replaced."""
    target = _resolve(path)
    for name, other in protected:
        if other is None or not Path(other).expanduser().exists():
            continue
        kept = _resolve(Path(other).expanduser())
        if target == kept:
            where = "is"
        elif target in kept.parents:
            where = "contains"
        elif kept in target.parents and replacing:
            where = "is inside"
        else:
            continue
        raise OutputPathError(
            f"{argument} {path}: {where} the {name} {kept}, which must not be overwritten "
            f"(overwrite or not); choose another {argument}")


def check_output_folder(path: PathLike, argument: str = "output_dir", overwrite: bool = False,
                        protected: Protected = (), hint: str = "pass overwrite=True") -> Path:
    """Check that a folder can be written at ``path`` (see the module docstring); no side effects.

    Args:
        path: The output folder.
        argument: How the caller names it in messages (``"--output"``).
        overwrite: Allow replacing an existing non-empty folder.
        protected: ``(name, path)`` pairs never to write over, e.g. ``[("--model", model)]``.
        hint: How the caller allows overwriting (``"pass --overwrite"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path` (``~`` expanded).

    Raises:
        OutputPathError: ``path`` is a file, a non-empty folder without ``overwrite``, a
            protected path, or cannot be created.
    """
    path = Path(path).expanduser()
    nonempty = path.is_dir() and any(path.iterdir())
    _check_protected(path, argument, protected, replacing=overwrite and (
        nonempty or (path.exists() and not path.is_dir())))
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{argument} {path}: the folder is not writable")
        if nonempty:
            if not overwrite:
                raise OutputPathError(f"{argument} {path}: the folder exists and is not empty; "
                                      f"{hint} to replace it")
            if not os.access(path.absolute().parent, os.W_OK | os.X_OK):
                raise OutputPathError(f"{argument} {path}: cannot replace it, "
                                      f"{path.absolute().parent} is not writable")
    elif path.exists() or path.is_symlink():
        raise OutputPathError(f"{argument} {path}: is a file; expected a folder (a new or "
                              f"empty one, or an existing one to replace)")
    else:
        _check_creatable(path, argument)
    return path


def check_output_file(path: PathLike, argument: str = "output", overwrite: bool = False,
                      protected: Protected = (), hint: str = "pass overwrite=True") -> Path:
    """Check that a file can be written at ``path``; no side effects.

    Same arguments as :func:`check_output_folder`; an existing file needs ``overwrite``
    and a folder is an error.
    """
    path = Path(path).expanduser()
    _check_protected(path, argument, protected, replacing=overwrite and path.is_file())
    if path.is_dir():
        raise OutputPathError(f"{argument} {path}: is a folder; expected a file path "
                              f"(e.g. {path / 'results.json'})")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OutputPathError(f"{argument} {path}: the file exists; {hint} to replace it")
        if not os.access(path.absolute().parent, os.W_OK | os.X_OK):
            raise OutputPathError(f"{argument} {path}: cannot replace it, "
                                  f"{path.absolute().parent} is not writable")
    else:
        _check_creatable(path, argument)
    return path


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _swap_in(stage: Path, target: Path) -> None:
    """Put the complete ``stage`` folder at ``target``, replacing what is there."""
    if not (target.exists() or target.is_symlink()):
        os.replace(stage, target)
        return
    backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, backup)
    try:
        os.replace(stage, target)
    except BaseException:
        os.replace(backup, target)
        raise
    _remove(backup)


@contextlib.contextmanager
def staged_folder(path: PathLike, argument: str = "output_dir", overwrite: bool = False,
                  protected: Protected = (), hint: str = "pass overwrite=True") -> Iterator[Path]:
    """Write a folder all at once: ``with staged_folder(out) as folder: model.save(folder)``.

    Checks ``path`` again (:func:`check_output_folder`), then yields the folder to write
    into: ``path`` itself when it is an empty folder (emptied again if the block fails),
    otherwise a fresh hidden sibling that replaces ``path`` when the block succeeds and is
    removed when it fails. An ``OSError`` while writing (disk full, permissions) becomes
    an :class:`OutputPathError` naming ``argument`` and ``path``.
    """
    path = check_output_folder(path, argument, overwrite, protected, hint)
    try:
        if path.is_dir() and not any(path.iterdir()):
            try:
                yield path
            except BaseException:
                for child in path.iterdir():
                    _remove(child)
                raise
            return
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.absolute().parent))
        try:
            stage.chmod(0o777 & ~_umask())
            yield stage
            _swap_in(stage, path)
        except BaseException:
            _remove(stage)
            raise
    except (OutputPathError, BrokenPipeError):
        raise
    except OSError as exc:
        raise OutputPathError(f"{argument} {path}: could not write the folder ({exc})") from exc


def write_text_file(path: PathLike, text: str, argument: str = "output", overwrite: bool = False,
                    protected: Protected = (), hint: str = "pass overwrite=True") -> Path:
    """Write ``text`` (UTF-8) to ``path`` all at once: a temporary sibling, then a rename.

    Checks ``path`` again (:func:`check_output_file`) and creates its parent folders.
    """
    path = check_output_file(path, argument, overwrite, protected, hint)
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                         dir=path.absolute().parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputPathError(f"{argument} {path}: could not write the file ({exc})") from exc
    return path
