"""A synthetic modality-gap generator for teaching.

Shared latent classes, two different nonlinear views:

* latent ``h ~ N(mu_y, overlap^2 I)`` in ``R^latent_dim`` with class means on a
  scaled simplex-like random layout;
* teacher view ``x_T = tanh(W_T h) + teacher_noise * e`` (``teacher_dim`` features);
* student view ``x_S = softplus(W_S (R(rotation) h + gap * u)) + noise * e``
  (``student_dim`` features), where ``R`` rotates the first two latent axes and
  ``u`` is a fixed unit direction;
* ``label_shift`` skews the student's class prior (geometric weights) while the
  teacher's stays uniform.

Every student sample also gets the teacher view of the *same* latent, so the
task supports the ``paired`` mode.
"""
from __future__ import annotations

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
        Student class prior ∝ exp(-label_shift * k); 0 = uniform.
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
    check_int("seed", seed)
    check_number("rotation", rotation)

    lay = _Layout(num_classes, latent_dim, teacher_dim, student_dim, rotation)
    rng = np.random.default_rng(seed)
    prior_s = np.exp(-label_shift * np.arange(num_classes))
    prior_s /= prior_s.sum()
    # Draw order (one stream): teacher latents, teacher view, student latents, student view, paired view.
    h_t, y_t = lay.latents(rng, n_teacher, np.full(num_classes, 1.0 / num_classes), overlap)
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
                          latent_dim=latent_dim, seed=seed),
        },
    )


class _Layout:
    """The generator's geometry: class means (K, L) on a sphere of radius 2.5, the two view maps, the gap
    direction u and the rotation R of the student's latent. It depends only on the structure (K and the
    dimensions), never on ``seed``, so tasks that differ by a knob share their geometry."""

    def __init__(self, num_classes, latent_dim, teacher_dim, student_dim, rotation):
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

    def latents(self, rng, n, prior, overlap):
        """(h (n, L), y (n,)): labels from ``prior``, latents around their class mean."""
        y = rng.choice(self.K, size=n, p=prior)
        h = self.means[y] + overlap * rng.normal(size=(n, self.L))  # (n, L)
        return h, y

    def teacher_view(self, rng, h, teacher_noise):
        return np.tanh(h @ self.W_T) + teacher_noise * rng.normal(size=(h.shape[0], self.W_T.shape[1]))

    def student_view(self, rng, h, gap, noise):
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
