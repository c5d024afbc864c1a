"""``CrossModalTask``: two modalities, one label set, separate splits.

A task holds, for the **teacher modality** and for the **student modality**
independently, a train / val / test split of inputs ``x`` and labels ``y``
(integers in ``0..K-1``). Nothing ties a teacher sample to a student sample
unless the task also carries ``paired_teacher_x``: for each student sample, the
teacher-modality view of the *same* instance (used only by the ``paired``
pairing mode and by paired baselines such as ``kd`` and ``fitnet``).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._validation import (check_class_names, check_finite_array, check_float32_range, check_indices, check_int,
                           check_labels, check_positive, check_rectangular)
from .lazy import is_lazy, take
from .._seeds import STUDENT_SUBSET, numpy_rng

__all__ = ["Split", "CrossModalTask", "infer_encoder_spec"]

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Inputs ``x`` of shape (N, ...) and labels ``y`` of shape (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx) -> "Split":
        return Split(take(self.x, idx), self.y[idx])  # a lazy x stays lazy


def infer_encoder_spec(x: np.ndarray) -> dict:
    """Pick an encoder kind from the per-sample shape of ``x``.

    (N, F) -> ``mlp``; (N, C, L) -> ``cnn1d``; (N, H, W) -> ``cnn2d`` with one
    channel; (N, C, H, W) -> ``cnn2d``.
    """
    shape = tuple(x.shape[1:])
    if len(shape) == 1:
        return {"kind": "mlp", "in_features": shape[0]}
    if len(shape) == 2:
        return {"kind": "cnn1d", "in_channels": shape[0], "length": shape[1]}
    if len(shape) == 3:
        return {"kind": "cnn2d", "in_channels": shape[0], "height": shape[1], "width": shape[2]}
    raise ValueError(
        f"cannot infer an encoder for inputs of per-sample shape {shape}; "
        "pass teacher_encoder=/student_encoder= explicitly (a spec dict or an nn.Module factory)"
    )


@dataclass
class CrossModalTask:
    """A cross-modal distillation task.

    Parameters
    ----------
    name : str
        Short identifier (used in caches and results).
    class_names : sequence of str, length K
    teacher, student : dict split -> Split
        Splits ``train``, ``val``, ``test`` of each modality.
    paired_teacher_x : dict split -> array (N_split, ...) or None
        Teacher-modality view of each student sample, aligned with
        ``student[split].x``. ``None`` when the task has no pairs.
    teacher_modality, student_modality : str
        Human-readable modality names ("accelerometer", "gyroscope").
    teacher_encoder, student_encoder : dict
        Encoder specs for :func:`cmkd_lab.models.build_encoder`.
    info : dict
        Free-form provenance (source, licence, protocol notes).
    """

    name: str
    class_names: Sequence[str]
    teacher: Dict[str, Split]
    student: Dict[str, Split]
    paired_teacher_x: Optional[Dict[str, np.ndarray]] = None
    teacher_modality: str = "teacher"
    student_modality: str = "student"
    teacher_encoder: Optional[dict] = None
    student_encoder: Optional[dict] = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string (used in caches and results); got name={self.name!r}")
        for attr in ("teacher_modality", "student_modality"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"{attr} must be a string; got {getattr(self, attr)!r}")
        self.class_names = check_class_names(self.class_names)  # >= 2 distinct names
        for side_name in ("teacher", "student"):
            self._check_side(side_name, getattr(self, side_name))
        for side_name, side in (("teacher", self.teacher), ("student", self.student)):
            if len(side["train"]) < 2:
                raise ValueError(f"{side_name}['train'] must have at least 2 samples; got {len(side['train'])}")
        self._check_classes()
        self._check_pairs()
        self._check_encoders()

    def _check_side(self, side_name: str, side) -> None:
        """One modality's splits: train/val/test, each a Split (an (x, y) pair is accepted), x finite with
        one sample per label (a lazy x: its shape only), y in 0..K-1, one per-sample shape."""
        K = len(self.class_names)
        _check_split_keys(side_name, side, f"split -> Split(x, y) with keys {SPLITS}")
        for s in SPLITS:
            sp = side[s]
            if not isinstance(sp, Split):
                if not isinstance(sp, (tuple, list)) or len(sp) != 2:
                    raise TypeError(f"{side_name}[{s!r}] must be a Split(x, y) or an (x, y) pair; got "
                                    f"{type(sp).__name__}" + (f" of length {len(sp)}" if isinstance(sp, (tuple, list))
                                                              else ""))
                sp = Split(*sp)
                side[s] = sp
            if isinstance(sp.x, (list, tuple)):  # nested lists: an array (ragged rows are named)
                try:
                    sp.x = np.asarray(sp.x)
                except ValueError:
                    check_rectangular(f"{side_name}[{s!r}].x", sp.x)
                    raise
            if is_lazy(sp.x):  # decoded on demand: check the shape only, never load it all
                if sp.x.ndim < 2 or len(sp.x) < 1:
                    raise ValueError(f"{side_name}[{s!r}].x must have at least 2 dimensions and 1 sample; "
                                     f"got shape {sp.x.shape}")
            else:
                check_finite_array(f"{side_name}[{s!r}].x", sp.x, min_ndim=2, min_len=1)
            sp.y = check_labels(f"{side_name}[{s!r}].y", sp.y, K)
            if sp.x.shape[0] != sp.y.shape[0]:
                raise ValueError(f"{side_name}[{s!r}]: x has {sp.x.shape[0]} samples but y has {sp.y.shape[0]}")
        shapes = {tuple(side[s].x.shape[1:]) for s in SPLITS}
        if len(shapes) != 1:
            raise ValueError(f"{side_name} splits must share one per-sample shape; got {sorted(shapes)}")

    def _check_pairs(self) -> None:
        """``paired_teacher_x``: a dict split -> array with one teacher-shaped row per student sample."""
        if self.paired_teacher_x is None:
            return
        _check_split_keys("paired_teacher_x", self.paired_teacher_x, "split -> array (N_split, ...) or None",
                          required=False, hint=" (CrossModalTask.from_arrays takes one array and splits it)")
        for s in SPLITS:
            if s not in self.paired_teacher_x:
                continue
            px = self.paired_teacher_x[s]
            if is_lazy(px):
                pass
            elif not hasattr(px, "shape") or not hasattr(px, "dtype"):
                raise TypeError(f"paired_teacher_x[{s!r}] must be an array (N_split, ...); got {type(px).__name__}")
            else:
                check_finite_array(f"paired_teacher_x[{s!r}]", px, min_ndim=2, min_len=0)
            if px.shape[0] != len(self.student[s]):
                raise ValueError(f"paired_teacher_x[{s!r}] must have one row per student sample "
                                 f"({len(self.student[s])}); got {px.shape[0]}")
            if tuple(px.shape[1:]) != tuple(self.teacher["train"].x.shape[1:]):
                raise ValueError(f"paired_teacher_x[{s!r}] must have the teacher's per-sample shape "
                                 f"{tuple(self.teacher['train'].x.shape[1:])}; got {tuple(px.shape[1:])}")

    def _check_encoders(self) -> None:
        """Encoder specs: a dict with a 'kind' or a factory; inferred from the input shape when omitted."""
        for attr, side in (("teacher_encoder", self.teacher), ("student_encoder", self.student)):
            spec = getattr(self, attr)
            if spec is not None and not (isinstance(spec, dict) and "kind" in spec) and \
                    (isinstance(spec, dict) or not callable(spec)):
                try:
                    example = infer_encoder_spec(side["train"].x)
                except ValueError:
                    example = {"kind": "mlp", "in_features": 16}
                raise TypeError(f"{attr} must be an encoder spec dict with a 'kind' key (e.g. {example}) or a factory "
                                f"fn(feature_dim) -> nn.Module; got {spec!r}")
        if self.teacher_encoder is None:
            self.teacher_encoder = infer_encoder_spec(self.teacher["train"].x)
        if self.student_encoder is None:
            self.student_encoder = infer_encoder_spec(self.student["train"].x)

    def _check_classes(self) -> None:
        """One rule on the label set, whatever built the task: classes no sample carries are named in a
        warning, sides whose training splits share no class are refused (nothing can be distilled),
        and a partial overlap is named in a warning (kept on purpose: a teacher may know more classes
        than the student sees, and the reverse is a legitimate experiment)."""
        K, names = len(self.class_names), self.class_names

        def shown(idx):
            idx = sorted(int(i) for i in idx)
            more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
            return f"{[names[i] for i in idx[:10]]}{more}"

        present = np.unique(np.concatenate([np.asarray(side[s].y) for side in (self.teacher, self.student)
                                            for s in SPLITS]))
        empty = np.setdiff1d(np.arange(K), present)
        if empty.size:
            warnings.warn(f"classes {shown(empty)} ({empty.size} of K={K}) have no sample on either side: remap the "
                          f"labels to 0..{K - empty.size - 1} (np.unique(y, return_inverse=True)) or leave the empty "
                          "classes out of class_names (your own arrays), or choose task options that give every class "
                          "samples (a generated task: a smaller prior_skew, label_shift or num_classes, or more "
                          "n_teacher / n_student)", RuntimeWarning, stacklevel=4)
        t, st = np.unique(self.teacher["train"].y), np.unique(self.student["train"].y)
        if np.intersect1d(t, st).size == 0:
            raise ValueError(f"teacher and student share no class: the teacher's training labels are {shown(t)}, the "
                             f"student's {shown(st)}; distillation needs one label set on both sides (check that both "
                             "label arrays use the same encoding)")
        only_t, only_s = np.setdiff1d(t, st), np.setdiff1d(st, t)
        if only_t.size or only_s.size:
            lacks = ([f"the teacher has no sample of {shown(only_s)}"] if only_s.size else []) + \
                    ([f"the student none of {shown(only_t)}"] if only_t.size else [])
            warnings.warn(f"teacher and student training splits cover different classes: {', '.join(lacks)}; the "
                          "teacher cannot teach a class it never saw (pairing='class-matched' refuses such a task)",
                          RuntimeWarning, stacklevel=4)

    # ------------------------------------------------------------------ info
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_pairs(self) -> bool:
        return self.paired_teacher_x is not None and "train" in self.paired_teacher_x

    def summary(self) -> dict:
        """Sizes per split and modality, class count and pairing availability."""
        return {
            "name": self.name,
            "classes": self.num_classes,
            "teacher_modality": self.teacher_modality,
            "student_modality": self.student_modality,
            "teacher_sizes": {s: len(self.teacher[s]) for s in SPLITS},
            "student_sizes": {s: len(self.student[s]) for s in SPLITS},
            "teacher_input_shape": list(self.teacher["train"].x.shape[1:]),
            "student_input_shape": list(self.student["train"].x.shape[1:]),
            "has_pairs": self.has_pairs,
        }

    def fingerprint(self, sides: Sequence[str] = ("teacher", "student")) -> str:
        """A short hash of the data of ``sides`` (the teacher side alone keys cached teachers)."""
        h = hashlib.sha256(self.name.encode())
        for side in (getattr(self, name) for name in sides):
            for s in SPLITS:
                x = side[s].x
                h.update(x.fingerprint().encode() if is_lazy(x) else np.ascontiguousarray(x).tobytes())
                h.update(np.ascontiguousarray(side[s].y).tobytes())
                h.update(str(side[s].x.shape).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------ transforms
    def student_fraction_indices(self, fraction: float, seed: int) -> np.ndarray:
        """Sorted indices into the student train split of the stratified ``fraction`` that
        :meth:`with_student_fraction` keeps (at least one sample per class; the same for a given seed)."""
        from .._validation import check_fraction

        check_fraction("student_fraction", fraction)
        tr = self.student["train"]
        if fraction >= 1.0:
            return np.arange(len(tr.y))
        rng = numpy_rng(seed, STUDENT_SUBSET)
        keep = []
        for k in range(self.num_classes):
            idx = np.flatnonzero(tr.y == k)
            if idx.size == 0:
                continue
            n = max(1, int(round(fraction * idx.size)))
            keep.append(np.sort(rng.choice(idx, size=n, replace=False)))
        return np.sort(np.concatenate(keep))

    def with_student_fraction(self, fraction: float, seed: int) -> "CrossModalTask":
        """A copy whose student train split keeps a stratified ``fraction``
        (at least one sample per class), the same subset for a given seed."""
        keep = self.student_fraction_indices(fraction, seed)
        if fraction >= 1.0:
            return self
        tr = self.student["train"]
        student = dict(self.student)
        student["train"] = tr.subset(keep)
        paired = None
        if self.paired_teacher_x is not None:
            paired = dict(self.paired_teacher_x)
            if "train" in paired:
                paired["train"] = take(paired["train"], keep)
        info = dict(self.info, student_fraction=fraction, student_train_kept=int(keep.size))
        return CrossModalTask(
            name=self.name, class_names=self.class_names, teacher=self.teacher, student=student,
            paired_teacher_x=paired, teacher_modality=self.teacher_modality,
            student_modality=self.student_modality, teacher_encoder=self.teacher_encoder,
            student_encoder=self.student_encoder, info=info,
        )

    # -------------------------------------------------------- bring your own
    @classmethod
    def from_arrays(
        cls,
        teacher_x,
        teacher_y,
        student_x,
        student_y,
        *,
        teacher_splits: Optional[Mapping[str, Sequence[int]]] = None,
        student_splits: Optional[Mapping[str, Sequence[int]]] = None,
        paired_teacher_x=None,
        class_names: Optional[Sequence[str]] = None,
        name: str = "custom",
        teacher_modality: str = "teacher",
        student_modality: str = "student",
        teacher_encoder: Optional[dict] = None,
        student_encoder: Optional[dict] = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ) -> "CrossModalTask":
        """Build a task from your own arrays (the "bring your own data" door).

        Parameters
        ----------
        teacher_x : array (M, ...)
            Teacher-modality inputs (float).
        teacher_y : array (M,)
            Teacher labels, integers in 0..K-1.
        student_x : array (N, ...)
            Student-modality inputs.
        student_y : array (N,)
            Student labels, same label set.
        teacher_splits, student_splits : dict {"train", "val", "test"} -> indices, optional
            Explicit splits; when omitted a stratified random split with
            ``val_fraction`` / ``test_fraction`` is drawn with ``seed``.
        paired_teacher_x : array (N, ...), optional
            Teacher-modality view of each student sample (enables ``paired``).
        class_names : list of K str, optional
        teacher_encoder, student_encoder : dict, optional
            Encoder specs (see :func:`cmkd_lab.models.build_encoder`); inferred
            from the input shape when omitted.
        """
        tx, ty, sx, sy = _input_arrays(teacher_x, teacher_y, student_x, student_y)
        class_names, ty, sy = _label_set(ty, sy, class_names)
        check_int("seed", seed)
        ts = _given_or_stratified("teacher", ty, teacher_splits, val_fraction, test_fraction, seed)
        ss = _given_or_stratified("student", sy, student_splits, val_fraction, test_fraction, seed)
        paired = _paired_views(paired_teacher_x, tx, sx, ss)
        return cls(
            name=name,
            class_names=class_names,
            teacher={s: Split(tx[ts[s]].astype(np.float32), ty[ts[s]]) for s in SPLITS},
            student={s: Split(sx[ss[s]].astype(np.float32), sy[ss[s]]) for s in SPLITS},
            paired_teacher_x=paired,
            teacher_modality=teacher_modality,
            student_modality=student_modality,
            teacher_encoder=teacher_encoder,
            student_encoder=student_encoder,
            info={"source": "from_arrays"},
        )


# ------------------------------------------------------------- the steps of from_arrays
def _array(name, v) -> np.ndarray:
    """``v`` as a numeric array; a ragged list names the rows that differ."""
    try:
        a = np.asarray(v)
    except Exception as e:
        check_rectangular(name, v)  # a ragged list: name the rows that differ
        raise TypeError(f"{name} must be array-like; got {type(v).__name__} ({e})") from e
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers; got dtype {a.dtype}" + (
            f": encode class names as 0..K-1 (classes, {name} = np.unique({name}, return_inverse=True)) and pass "
            "class_names=list(classes)" if name.endswith("_y") and a.dtype.kind in "USO" else ""))
    return a


def _input_arrays(teacher_x, teacher_y, student_x, student_y):
    """The four arrays, checked: finite inputs that fit float32, 1-D labels, one label per sample."""
    tx, ty = _array("teacher_x", teacher_x), _array("teacher_y", teacher_y)
    sx, sy = _array("student_x", student_x), _array("student_y", student_y)
    for n, x in (("teacher_x", tx), ("student_x", sx)):
        check_finite_array(n, x, min_ndim=2, min_len=3)
        check_float32_range(n, x)
    if ty.ndim != 1 or sy.ndim != 1:
        raise ValueError(f"teacher_y and student_y must be 1-D; got shapes {ty.shape} and {sy.shape}")
    if tx.shape[0] != ty.shape[0]:
        raise ValueError(f"teacher_x has {tx.shape[0]} samples but teacher_y has {ty.shape[0]}")
    if sx.shape[0] != sy.shape[0]:
        raise ValueError(f"student_x has {sx.shape[0]} samples but student_y has {sy.shape[0]}")
    return tx, ty, sx, sy


def _label_set(ty, sy, class_names):
    """(class names, teacher labels, student labels): without names, K = the largest label + 1, refused
    before anything is allocated when that makes more classes than samples."""
    if class_names is None:
        ty, sy = check_labels("teacher_y", ty, None), check_labels("student_y", sy, None)
        K = int(max(ty.max(), sy.max())) + 1
        n = ty.size + sy.size
        if K > n:  # before any allocation: labels [0, 10**9] would make 10**9 + 1 class names
            distinct = np.union1d(ty, sy).size
            raise ValueError(
                f"teacher_y and student_y hold {distinct} distinct labels up to {K - 1}: that makes K={K} classes "
                f"for {n} samples, nearly all empty; re-encode the labels as 0..K-1 (np.unique(y, "
                "return_inverse=True)) or pass class_names")
        class_names = [str(k) for k in range(K)]  # gaps in 0..K-1 are kept, and named by the task's warning
    class_names = check_class_names(class_names)
    K = len(class_names)
    return class_names, check_labels("teacher_y", ty, K), check_labels("student_y", sy, K)


def _check_split_keys(name: str, d, what: str, *, required: bool = True, hint: str = "") -> None:
    """``d`` is a dict keyed by the split names: every split (when ``required``) and no other key."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{name} must be a dict {what}; got {type(d).__name__}{hint}")
    missing = [s for s in SPLITS if s not in d]
    if required and missing:
        raise ValueError(f"{name} must have keys {SPLITS}; missing {missing}")
    unknown = sorted(map(str, set(d) - set(SPLITS)))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; the keys are {SPLITS}")


def _given_or_stratified(side, y, given, val_fraction, test_fraction, seed) -> Dict[str, np.ndarray]:
    """The user's splits of one side, checked (keys, indices, non-empty, disjoint), or a stratified draw."""
    if given is None:
        return stratified_split(y, val_fraction, test_fraction, seed)
    _check_split_keys(f"{side}_splits", given, f"split -> indices with keys {SPLITS}")
    out = {s: check_indices(f"{side}_splits[{s!r}]", given[s], y.shape[0]) for s in SPLITS}
    for s in SPLITS:
        if out[s].size == 0:
            raise ValueError(f"{side}_splits[{s!r}] is empty; every split needs at least one sample")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = np.intersect1d(out[a], out[b])
        if both.size:
            raise ValueError(f"{side}_splits[{a!r}] and [{b!r}] share {both.size} sample(s) (e.g. "
                             f"{both[:5].tolist()}); splits must be disjoint or evaluation leaks")
    return out


def _paired_views(paired_teacher_x, tx, sx, ss):
    """The teacher view of each student sample, per student split (None without one), checked."""
    if paired_teacher_x is None:
        return None
    px = _array("paired_teacher_x", paired_teacher_x)
    check_finite_array("paired_teacher_x", px, min_ndim=2, min_len=0)
    check_float32_range("paired_teacher_x", px)
    if px.shape[0] != sx.shape[0]:
        raise ValueError(f"paired_teacher_x must have one row per student sample ({sx.shape[0]}); got {px.shape[0]}")
    if px.shape[1:] != tx.shape[1:]:
        raise ValueError(f"paired_teacher_x must have the teacher's per-sample shape {tuple(tx.shape[1:])} "
                         f"(teacher_x is {tuple(tx.shape)}); got {tuple(px.shape[1:])} (shape {px.shape})")
    return {s: px[ss[s]].astype(np.float32) for s in SPLITS}


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Dict[str, np.ndarray]:
    """Stratified train/val/test indices; every split gets >= 1 sample when possible."""
    for n, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_positive(n, v)
        if not 0 < v < 1:
            raise ValueError(f"{n} must be in (0, 1); got {n}={v!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1; got {val_fraction} + {test_fraction}"
        )
    rng = np.random.default_rng(seed)
    out = {s: [] for s in SPLITS}
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n = idx.size
        n_te = int(round(test_fraction * n))
        n_va = int(round(val_fraction * n))
        out["test"].append(idx[:n_te])
        out["val"].append(idx[n_te:n_te + n_va])
        out["train"].append(idx[n_te + n_va:])
    res = {s: np.sort(np.concatenate(v)).astype(np.int64) for s, v in out.items()}
    for s in SPLITS:
        if res[s].size == 0:
            raise ValueError(
                f"the {s} split is empty with {y.shape[0]} samples; pass more data or explicit splits"
            )
    return res
