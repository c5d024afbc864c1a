"""Failures outside the program: a full disk while a file is written, a clip that cannot be decoded in a
DataLoader worker. The old file survives, nothing half-written is left, and the message names the file
or the clip and says what to do."""
import errno
import os

import numpy as np
import pytest

from cmkd_lab._atomic import atomic_write_bytes, atomic_write_text
from cmkd_lab.data.lazy import LazyArray
from cmkd_lab.data.loader import iterate_batches


def _disk_full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_full_disk_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch, where):
    p = tmp_path / "result.json"
    atomic_write_text(p, '{"a": 1}')
    if where == "write":
        real = os.fdopen

        class Full:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                _disk_full()

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    else:
        monkeypatch.setattr(os, where, _disk_full)
    with pytest.raises(OSError, match=r"cannot write '.*result.json' \(No space left on device\): the disk may be "
                                      r"full \(or over quota\); free some space or write elsewhere; the previous "
                                      r"file is unchanged") as e:
        atomic_write_text(p, '{"a": 2}' * 1000)
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC  # still an OSError with its errno, for callers that test it
    assert p.read_text() == '{"a": 1}'
    assert sorted(x.name for x in tmp_path.iterdir()) == ["result.json"]  # no temp file left


def test_a_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError, match=r"cannot write '.*new.bin' \(Permission denied\): check that you may "
                                              r"write to .*; no file was written"):
        atomic_write_bytes(tmp_path / "new.bin", b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_a_checkpoint_is_written_keeps_the_last_good_one(tmp_path, monkeypatch):
    import torch
    from cmkd_lab.distill.checkpoint import CHECKPOINT_FORMAT, read_checkpoint, write_checkpoint
    p = tmp_path / "checkpoint.pt"
    write_checkpoint({"format": CHECKPOINT_FORMAT, "epoch": 1, "w": torch.ones(3)}, p)
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError, match=r"cannot write '.*checkpoint.pt' \(No space left on device\): the disk may be full"):
        write_checkpoint({"format": CHECKPOINT_FORMAT, "epoch": 2, "w": torch.zeros(3)}, p)
    monkeypatch.undo()
    assert read_checkpoint(p)["epoch"] == 1  # the last good checkpoint still loads
    assert sorted(x.name for x in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_the_command_line_reports_a_full_disk_in_one_line(tmp_path, monkeypatch, capsys):
    from cmkd_lab.cli import main
    d = tmp_path / "run"
    d.mkdir()
    (d / "result.json").write_text('{"task": "t", "method": "ce", "history": []}')
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert main(["report", str(d)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m cmkd_lab report: error: [Errno 28] cannot write ") \
        and "report.html" in err[0] and "the disk may be full" in err[0], err


# --------------------------------------------------------------- workers
class Clips(LazyArray):
    """Four 'clips'; clip 2 fails to decode with an error that does not name it (as third-party decoders do)."""

    def __init__(self, exc):
        super().__init__(4, (2,))
        self.exc = exc

    def load(self, i):
        if i == 2:
            raise self.exc
        return np.full(2, i, np.float32)

    def describe(self, i):
        return f"the clip clip{i:02d}.mp4"


@pytest.mark.parametrize("exc,shown", [(KeyError("codec"), "KeyError: 'codec'"),
                                       (RuntimeError("moov atom not found\nat offset 0"),
                                        "RuntimeError: moov atom not found"),
                                       (OSError(errno.EIO, "Input/output error"), "OSError: [Errno 5] Input/output")])
@pytest.mark.parametrize("workers", [0, 1])
def test_a_clip_that_fails_to_decode_is_named_in_the_main_process_and_in_workers(exc, shown, workers):
    lz = Clips(exc)
    with pytest.raises(ValueError) as e:
        list(iterate_batches(lz, [np.array([0, 1]), np.array([3, 2])], "cpu", num_workers=workers))
    msg = str(e.value)
    assert msg.startswith("cannot decode the clip clip02.mp4: ") and shown in msg, msg
    assert "\n" not in msg
    if workers:
        assert msg.endswith("(raised in a DataLoader worker; CMKD_LAB_WORKERS=0 decodes in the main process)")
    with pytest.raises(ValueError, match=r"cannot decode the clip clip02.mp4"):
        lz[2]
    assert lz[3].tolist() == [3, 3]


def test_an_out_of_memory_error_is_not_turned_into_a_bad_clip():
    with pytest.raises(MemoryError):
        Clips(MemoryError())[2]


class Crashing(LazyArray):
    def __init__(self):
        super().__init__(4, (2,))

    def load(self, i):
        if i == 2:
            os._exit(3)  # a decoder that takes its process down (a segfault, the OOM killer)
        return np.zeros(2, np.float32)


def test_a_worker_that_dies_says_how_to_find_the_clip():
    with pytest.raises(RuntimeError, match=r"DataLoader worker .* exited unexpectedly.*while decoding "
                                           r"<Crashing shape=\(4, 2\).*: a decoder crashed or ran out of memory in a "
                                           r"worker process; run again with CMKD_LAB_WORKERS=0 to decode in the main "
                                           r"process, where the failing sample is named"):
        list(iterate_batches(Crashing(), [np.array([0, 1]), np.array([2, 3])], "cpu", num_workers=1))
