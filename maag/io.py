"""Atomic file writing: write beside the target, then rename, so nothing is half-written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from maag.errors import MaagError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    On any error the temporary file is removed and `target` is left as it was.
    """
    target = Path(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise MaagError(f"cannot write to {target.parent}: {exc.strerror}") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` and move the result onto `target` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` if needed and check that files can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise MaagError(f"cannot write to {path}: {exc.strerror or exc}") from None
    return path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
