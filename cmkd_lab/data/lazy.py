"""Lazy arrays: datasets too big for memory, decoded one sample at a time.

A :class:`LazyArray` looks like a read-only numpy array of float32 samples —
``len``, ``.shape``, ``.ndim``, ``.dtype`` and ``x[int | slice | index array]``
returning an ``np.ndarray`` — but holds only file paths. Indexing decodes the
asked-for samples on demand (JPEG frames with Pillow, ``.npy`` / ``.pkl``
spectrograms with numpy), so a task over VGGSound's 200,000 clips costs a few
megabytes until a batch is requested.

* :meth:`LazyArray.select` returns a lazy view on a subset (no decoding); use
  :func:`take` to subset any array, lazy or not.
* The trainer sends lazy arrays through a torch ``DataLoader`` with worker
  processes (:mod:`cmkd_lab.data.loader`); in-memory arrays keep the fast path.
* :func:`is_lazy` tells them apart.

Subclass :class:`LazyArray` and implement :meth:`LazyArray.load` (one sample,
shape ``item_shape``) to bring your own storage format.
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["LazyArray", "FrameFolderArray", "SpectrogramArray", "is_lazy", "take", "IMAGENET_MEAN",
           "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_SUFFIXES = (".jpg", ".jpeg", ".png")


def _raised_here(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == __file__


def is_lazy(x) -> bool:
    """True for a :class:`LazyArray` (decoded on demand), False for in-memory arrays."""
    return isinstance(x, LazyArray)


def take(x, idx):
    """``x[idx]`` that stays lazy for a :class:`LazyArray` (a view, nothing decoded)."""
    return x.select(idx) if is_lazy(x) else x[idx]


class LazyArray:
    """Base class: ``n`` samples of shape ``item_shape`` (float32), decoded on demand.

    Parameters
    ----------
    n : int
        Number of samples.
    item_shape : tuple of int
        Shape of one sample; ``shape`` is ``(n, *item_shape)``.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, n: int, item_shape: Tuple[int, ...]):
        self._n = int(n)
        self.item_shape = tuple(int(s) for s in item_shape)

    # -------------------------------------------------------- array protocol
    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> Tuple[int, ...]:
        return (self._n, *self.item_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.item_shape)

    def _indices(self, key) -> np.ndarray:
        """Normalise an int / slice / index array / boolean mask to positions (n_sel,)."""
        if isinstance(key, slice):
            return np.arange(self._n)[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (self._n,):
                raise IndexError(f"a boolean mask must have shape ({self._n},); got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.dtype.kind not in "iu":
            raise IndexError(f"LazyArray indices must be integers, slices or boolean masks; got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -self._n or idx.max() >= self._n):
            raise IndexError(f"index out of range for a LazyArray of length {self._n}")
        return np.where(idx < 0, idx + self._n, idx)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            raise IndexError("LazyArray supports one index (int, slice or index array) along the first axis")
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -self._n <= i < self._n:
                raise IndexError(f"index {i} is out of range for a LazyArray of length {self._n}")
            return self._checked(i % self._n)
        idx = self._indices(key)
        out = np.empty((idx.size, *self.item_shape), dtype=np.float32)  # (n_sel, *item_shape)
        for j, i in enumerate(idx):
            out[j] = self._checked(int(i))
        return out

    def __array__(self, dtype=None, copy=None):
        """Decode everything (np.asarray(lazy)); only sensible for small arrays."""
        a = self[:]
        return a if dtype is None else a.astype(dtype)

    def __iter__(self):
        for i in range(self._n):
            yield self[i]

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_loaders", None)  # the main process's DataLoaders (cmkd_lab.data.loader) stay behind
        return d

    def _checked(self, i: int) -> np.ndarray:
        try:
            a = self.load(i)
        except MemoryError:
            raise
        except Exception as e:  # a decoder's own error rarely names the clip: name it here (workers too)
            if _raised_here(e):  # this module's messages already name the file
                raise
            first = (str(e).strip().splitlines() or [""])[0]
            raise ValueError(f"cannot decode {self.describe(i)}: {type(e).__name__}: {first}") from e
        if a.shape != self.item_shape:
            raise ValueError(f"{self.describe(i)} decoded to shape {a.shape}, but this array's samples have shape "
                             f"{self.item_shape}; every sample of one modality must have the same shape")
        return a

    # ------------------------------------------------------------ subclass API
    def load(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        """Decode sample ``i`` into a float32 array of shape ``item_shape``."""
        raise NotImplementedError

    def describe(self, i: int) -> str:
        """Where sample ``i`` comes from (used in error messages)."""
        return f"sample {i}"

    def key(self) -> str:
        """A string identifying the content (paths, options), used by :meth:`fingerprint`."""
        return f"{type(self).__name__}{self.shape}"

    def fingerprint(self) -> str:
        """Short hash of :meth:`key` (what a cached teacher is keyed on; no decoding)."""
        return hashlib.sha256(self.key().encode()).hexdigest()[:16]

    def select(self, idx) -> "LazyArray":
        """A lazy view on the samples ``idx`` (index array, slice or mask)."""
        return _Selection(self, self._indices(idx))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} shape={self.shape} (decoded on demand)>"


class _Selection(LazyArray):
    """A subset of another lazy array; decodes through it."""

    def __init__(self, base: LazyArray, idx: np.ndarray):
        super().__init__(idx.size, base.item_shape)
        self.base, self.idx = base, idx

    def load(self, i: int) -> np.ndarray:
        return self.base.load(int(self.idx[i]))

    def describe(self, i: int) -> str:
        return self.base.describe(int(self.idx[i]))

    def key(self) -> str:
        h = hashlib.sha256(self.idx.tobytes()).hexdigest()[:16]
        return f"{self.base.key()}[{h}]"

    def select(self, idx) -> LazyArray:
        return _Selection(self.base, self.idx[self._indices(idx)])


OUTSIDE_HINT = ("fix the list, or pass allow_outside_root=True (command line: --task-option allow_outside_root=true) "
                "if you trust it")


def outside(path, roots: Sequence[str]):
    """The resolved ``path`` when it lies outside every folder of ``roots`` (itself resolved), else None.

    The one containment rule of the data loaders: the path is resolved first, so ``..`` and
    symlinks that point outside count as outside; the root itself is not inside it."""
    real = os.path.realpath(path)
    for r in roots:
        r = os.path.realpath(r)
        if real != r and real.startswith(r.rstrip(os.sep) + os.sep):
            return None
    return real


def _frame_files(folder: str) -> list:
    try:
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith(JPEG_SUFFIXES))
    except FileNotFoundError:
        raise FileNotFoundError(f"expected a folder of video frames at {folder} (frame_00001.jpg ...); "
                                "it does not exist") from None
    if not names:
        raise ValueError(f"the frame folder {folder} holds no .jpg/.jpeg/.png frames; expected frame_00001.jpg ...")
    return names


def pick_frames(n_files: int, frames: int) -> np.ndarray:
    """Indices of ``frames`` frames spread evenly over ``n_files`` (centres of equal segments)."""
    return np.minimum(((np.arange(frames) + 0.5) * n_files / frames).astype(np.int64), n_files - 1)


class FrameFolderArray(LazyArray):
    """Video clips stored as folders of JPEG frames → (N, T, 3, S, S) float32.

    Each sample takes ``frames`` frames spread evenly over the folder's sorted
    frame files, resizes each to ``size`` × ``size`` (bilinear) and normalises
    with the ImageNet mean and std — the evaluation transform of the public
    audio-visual code (no random crops or flips: a frozen teacher's feature
    bank must not change between reads).

    Parameters
    ----------
    folders : sequence of str, length N
        One folder per clip (``visual/<clip>/``).
    frames : int
        Frames per clip (T).
    size : int
        Output height and width (S), e.g. 224.
    inside : sequence of str, optional
        Folders every decoded frame must resolve into (the data root and
        its frame folder); a frame that is a symlink pointing elsewhere is
        refused when decoded. None: no check (``allow_outside_root=True``).
    """

    def __init__(self, folders: Sequence[str], *, frames: int = 1, size: int = 224,
                 inside: Optional[Sequence[str]] = None):
        super().__init__(len(folders), (frames, 3, size, size))
        self.folders = [str(f) for f in folders]
        self.frames, self.size = int(frames), int(size)
        self.inside = None if inside is None else [str(r) for r in inside]
        self._mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]  # (3, 1, 1)
        self._std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]

    def load(self, i: int) -> np.ndarray:
        from PIL import Image  # Pillow is a dependency; imported where used

        folder = self.folders[i]
        names = _frame_files(folder)
        out = np.empty(self.item_shape, np.float32)  # (T, 3, S, S)
        for t, j in enumerate(pick_frames(len(names), self.frames)):
            path = os.path.join(folder, names[j])
            inside = getattr(self, "inside", None)  # arrays pickled before the option existed have none
            real = outside(path, inside) if inside is not None else None
            if real is not None:
                raise ValueError(f"the frame {path} resolves to {real}, outside the data root {inside[0]} "
                                 f"(symlinks that point outside count as outside): {OUTSIDE_HINT}")
            try:
                with Image.open(path) as im:
                    im.draft("RGB", (self.size, self.size))  # JPEG: let libjpeg decode at a reduced scale
                    im = im.convert("RGB")
                    if im.size != (self.size, self.size):
                        im = im.resize((self.size, self.size), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.float32) / 255.0  # (S, S, 3)
            except OSError as e:
                raise ValueError(f"cannot decode the frame {path} ({e}); re-extract that clip's frames") from None
            out[t] = (a.transpose(2, 0, 1) - self._mean) / self._std  # (3, S, S)
        return out

    def describe(self, i: int) -> str:
        return f"the frame folder {self.folders[i]}"

    def key(self) -> str:
        h = hashlib.sha256("\n".join(self.folders).encode()).hexdigest()
        return f"frames|{h}|T={self.frames}|S={self.size}"


def load_spectrogram(path: str) -> np.ndarray:
    """Read one spectrogram array from ``.npy`` (no pickle) or ``.pkl`` (restricted unpickler)."""
    try:
        if path.endswith(".npy"):
            a = np.load(path, allow_pickle=False)
        else:
            from ._safe_pickle import safe_load

            with open(path, "rb") as f:
                a = safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"expected a spectrogram file at {path}; it does not exist") from None
    except Exception as e:
        raise ValueError(f"cannot read the spectrogram {path} ({type(e).__name__}: {e}); it must hold one numpy "
                         "array of shape (freq, time) saved with np.save or pickle.dump") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise ValueError(f"the spectrogram {path} must hold a numeric numpy array; got {type(a).__name__}")
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"the spectrogram {path} must be 2-D (freq, time); got shape {a.shape}")
    return a.astype(np.float32, copy=False)


class SpectrogramArray(LazyArray):
    """Per-clip spectrogram / filterbank arrays → (N, 1, F, L) float32.

    Clips whose time axis differs from ``length`` are tiled (repeated, as the
    public preprocessing does for short audio) or cropped to ``length`` frames.

    Parameters
    ----------
    paths : sequence of str, length N
        One ``.npy`` or ``.pkl`` file per clip holding an array (F, time).
    freq : int
        Frequency bins F (every clip must have them).
    length : int
        Time frames L after tiling / cropping.
    """

    def __init__(self, paths: Sequence[str], *, freq: int, length: int):
        super().__init__(len(paths), (1, freq, length))
        self.paths = [str(p) for p in paths]
        self.freq, self.length = int(freq), int(length)

    def load(self, i: int) -> np.ndarray:
        a = load_spectrogram(self.paths[i])  # (F, time)
        if a.shape[0] != self.freq:
            raise ValueError(f"the spectrogram {self.paths[i]} has {a.shape[0]} frequency bins, but the others have "
                             f"{self.freq}; recompute it with the same settings")
        if a.shape[1] < self.length:
            a = np.tile(a, (1, -(-self.length // a.shape[1])))  # repeat short clips
        a = a[:, :self.length]
        if not np.all(np.isfinite(a)):
            raise ValueError(f"the spectrogram {self.paths[i]} contains NaN or inf; take log(x + 1e-7), not log(x)")
        return a[None]  # (1, F, L)

    def describe(self, i: int) -> str:
        return f"the spectrogram {self.paths[i]}"

    def key(self) -> str:
        h = hashlib.sha256("\n".join(self.paths).encode()).hexdigest()
        return f"spec|{h}|F={self.freq}|L={self.length}"
