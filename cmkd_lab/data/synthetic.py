"""A synthetic modality-gap generator for teaching.

Shared latent classes, two different nonlinear views:

* latent ``h ~ N(mu_y, overlap^2 I)`` in ``R^latent_dim`` with class means on a
  scaled simplex-like random layout;
* teacher view ``x_T = tanh(W_T h) + teacher_noise * e`` (``teacher_dim`` features);
* student view ``x_S = softplus(W_S (R(rotation) h + gap * u)) + noise * e``
  (``student_dim`` features), where ``R`` rotates the first two latent axes and
  ``u`` is a fixed unit direction;
* ``label_shift`` skews the student's class prior (geometric weights) while the
  teacher's stays uniform; ``prior_skew`` skews both priors alike (a class layout that is no longer
  symmetric under a relabelling, which can pin the classes of a class-agnostic alignment);
* ``shared_decisive`` (off by default: every latent factor is seen by both views) moves a share of the
  class separation into factors **only the teacher sees**: the latent gains a private block of
  ``latent_dim`` factors that enters the teacher view alone; the class means are split so that a share
  ``s`` of the squared separation lies in the shared block and ``1 − s`` in the private one. The teacher's
  total squared separation does not depend on ``s`` (its accuracy moves a little through its nonlinear
  view: 80.00 % at ``s = 1`` and 83.02 % at ``s = 0`` in the published positive control); the student sees only the
  shared part: at ``s = 1`` everything that decides the label is visible in both modalities, at
  ``s = 0`` nothing the student sees tells the classes apart (the modality focusing hypothesis, Xue et
  al., ICLR 2023: cross-modal transfer needs decisive features that both modalities carry).

Every student sample also gets the teacher view of the *same* latent, so the
task supports the ``paired`` mode.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._validation import check_int, check_nonneg, check_number, check_positive
from .registry import register_task
from .task import CrossModalTask, Split
from .._seeds import SYNTHETIC_LAYOUT, numpy_rng

__all__ = ["make_synthetic_task"]


def _softplus(x):
    return np.logaddexp(0.0, x)


def make_synthetic_task(
    *,
    n_teacher: int = 3000,
    n_student: int = 3000,
    num_classes: int = 5,
    latent_dim: int = 8,
    teacher_dim: int = 32,
    student_dim: int = 24,
    gap: float = 1.0,
    rotation: float = 0.5,
    noise: float = 0.3,
    teacher_noise: float = 0.1,
    overlap: float = 1.0,
    label_shift: float = 0.0,
    prior_skew: float = 0.0,
    shared_decisive: Optional[float] = None,
    seed: int = 0,
) -> CrossModalTask:
    """Generate a two-view task with controllable modality gap.

    Parameters
    ----------
    n_teacher, n_student : int
        Samples per modality (split 70/15/15).
    num_classes : int
        K.
    latent_dim, teacher_dim, student_dim : int
        Latent and view dimensions.
    gap : float >= 0
        Shift of the student's latent along a fixed direction.
    rotation : float
        Rotation angle (radians) of the student's latent in its first plane.
    noise : float >= 0
        Student observation noise.
    teacher_noise : float >= 0
        Teacher observation noise.
    overlap : float > 0
        Within-class latent spread (larger: classes overlap more).
    label_shift : float >= 0
        Student class prior ∝ exp(-(prior_skew + label_shift) * k); 0 = the teacher's prior.
    prior_skew : float >= 0
        Both class priors ∝ exp(-prior_skew * k) (the student's further skewed by ``label_shift``);
        0 = uniform.
    shared_decisive : float in [0, 1] or None
        None (default): every latent factor is seen by both views. A number ``s``: the teacher also sees
        a private block of ``latent_dim`` factors, and a share ``s`` of the class separation lies in the
        factors both views see, ``1 - s`` in the teacher's private ones.
    seed : int
    """
    check_int("n_teacher", n_teacher, minimum=20)
    check_int("n_student", n_student, minimum=20)
    check_int("num_classes", num_classes, minimum=2)
    check_int("latent_dim", latent_dim, minimum=2)
    check_int("teacher_dim", teacher_dim, minimum=1)
    check_int("student_dim", student_dim, minimum=1)
    check_nonneg("gap", gap)
    check_nonneg("noise", noise)
    check_nonneg("teacher_noise", teacher_noise)
    check_positive("overlap", overlap)
    check_nonneg("label_shift", label_shift)
    check_nonneg("prior_skew", prior_skew)
    if shared_decisive is not None:
        check_number("shared_decisive", shared_decisive)
        if not 0 <= shared_decisive <= 1:
            raise ValueError(f"shared_decisive must be in [0, 1] (the share of the class separation both views "
                             f"see) or None (every factor shared); got shared_decisive={shared_decisive!r}")
        shared_decisive = float(shared_decisive)
    check_int("seed", seed)
    check_number("rotation", rotation)

    lay = _Layout(num_classes, latent_dim, teacher_dim, student_dim, rotation, shared_decisive)
    rng = np.random.default_rng(seed)
    prior_t, prior_s = _prior(num_classes, prior_skew), _prior(num_classes, prior_skew + label_shift)
    # Draw order (one stream): teacher latents, teacher view, student latents, student view, paired view.
    h_t, y_t = lay.latents(rng, n_teacher, prior_t, overlap)
    x_t = lay.teacher_view(rng, h_t, teacher_noise)
    h_s, y_s = lay.latents(rng, n_student, prior_s, overlap)
    x_s = lay.student_view(rng, h_s, gap, noise)
    x_sp = lay.teacher_view(rng, h_s, teacher_noise)  # the teacher view of the student's own instances
    ct, cs = _cut(n_teacher), _cut(n_student)
    return CrossModalTask(
        name="synthetic",
        class_names=[f"class {k}" for k in range(num_classes)],
        teacher={k: Split(_f32(x_t[v]), y_t[v]) for k, v in ct.items()},
        student={k: Split(_f32(x_s[v]), y_s[v]) for k, v in cs.items()},
        paired_teacher_x={k: _f32(x_sp[v]) for k, v in cs.items()},
        teacher_modality="view A (tanh)",
        student_modality="view B (softplus, shifted, rotated)",
        teacher_encoder={"kind": "mlp", "in_features": teacher_dim},
        student_encoder={"kind": "mlp", "in_features": student_dim},
        info={
            "source": "synthetic generator",
            "knobs": dict(gap=gap, rotation=rotation, noise=noise, teacher_noise=teacher_noise,
                          overlap=overlap, label_shift=label_shift, num_classes=num_classes,
                          latent_dim=latent_dim, seed=seed,
                          **({"prior_skew": prior_skew} if prior_skew else {}),
                          **({"shared_decisive": shared_decisive} if shared_decisive is not None else {})),
        },
    )


def _prior(num_classes: int, skew: float) -> np.ndarray:
    """Class prior ∝ exp(-skew · k), shape (K,)."""
    p = np.exp(-skew * np.arange(num_classes))
    return p / p.sum()


class _Layout:
    """The generator's geometry: class means (K, L) on a sphere of radius 2.5, the two view maps, the gap
    direction u and the rotation R of the student's latent. It depends only on the structure (K and the
    dimensions), never on ``seed``, so tasks that differ by a knob share their geometry.

    With ``shared_decisive = s`` the latent has a second, teacher-only block of L factors: class means
    (K, 2L) = [√s · shared means, √(1−s) · private means] (each block's means on a sphere of radius 2.5,
    so the squared separation splits s : 1−s and its total does not depend on s), and the teacher view
    maps all 2L factors (its map drawn from a stream of its own: the default geometry is unchanged)."""

    def __init__(self, num_classes, latent_dim, teacher_dim, student_dim, rotation, shared_decisive=None):
        geo = numpy_rng(SYNTHETIC_LAYOUT, num_classes, latent_dim, teacher_dim, student_dim)
        self.means = geo.normal(size=(num_classes, latent_dim))
        self.means *= 2.5 / np.linalg.norm(self.means, axis=1, keepdims=True)  # (K, L)
        self.W_T = geo.normal(size=(latent_dim, teacher_dim)) / np.sqrt(latent_dim)  # (L, Dt)
        self.W_S = geo.normal(size=(latent_dim, student_dim)) / np.sqrt(latent_dim)  # (L, Ds)
        u = geo.normal(size=latent_dim)
        self.u = u / np.linalg.norm(u)
        self.R = np.eye(latent_dim)
        c, s = np.cos(rotation), np.sin(rotation)
        self.R[:2, :2] = [[c, -s], [s, c]]
        self.K, self.L = num_classes, latent_dim
        if shared_decisive is not None:
            private = numpy_rng(SYNTHETIC_LAYOUT, num_classes, latent_dim, teacher_dim, student_dim, 1)
            mp = private.normal(size=(num_classes, latent_dim))
            mp *= 2.5 / np.linalg.norm(mp, axis=1, keepdims=True)  # (K, L)
            self.means = np.concatenate([np.sqrt(shared_decisive) * self.means,
                                         np.sqrt(1 - shared_decisive) * mp], axis=1)  # (K, 2L)
            self.W_T = private.normal(size=(2 * latent_dim, teacher_dim)) / np.sqrt(2 * latent_dim)  # (2L, Dt)

    def latents(self, rng, n, prior, overlap):
        """(h (n, L) or (n, 2L), y (n,)): labels from ``prior``, latents around their class mean."""
        y = rng.choice(self.K, size=n, p=prior)
        h = self.means[y] + overlap * rng.normal(size=(n, self.means.shape[1]))  # (n, L) or (n, 2L)
        return h, y

    def teacher_view(self, rng, h, teacher_noise):
        return np.tanh(h @ self.W_T) + teacher_noise * rng.normal(size=(h.shape[0], self.W_T.shape[1]))

    def student_view(self, rng, h, gap, noise):
        h = h[:, :self.L]  # the student sees the shared block only, shape (n, L)
        g = h @ self.R.T + gap * self.u
        return _softplus(g @ self.W_S) + noise * rng.normal(size=(h.shape[0], self.W_S.shape[1]))


def _cut(n):
    """Train / val / test: the first 70 %, the next 15 %, the last 15 % (the draws are already shuffled)."""
    a, b = int(0.7 * n), int(0.85 * n)
    return {"train": slice(0, a), "val": slice(a, b), "test": slice(b, n)}


def _f32(a):
    return a.astype(np.float32)


@register_task("synthetic")
def _synthetic(*, seed: int = 0, fast: bool = False, **knobs):
    if fast:
        knobs.setdefault("n_teacher", 800)
        knobs.setdefault("n_student", 800)
    return make_synthetic_task(seed=seed, **knobs)


_synthetic.options_from = make_synthetic_task  # load_task names unknown options
