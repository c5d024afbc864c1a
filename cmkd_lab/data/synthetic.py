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

    # The layout (class means, view maps) depends only on the structure seed so
    # that tasks differing by a knob share their geometry.
    geo = numpy_rng(SYNTHETIC_LAYOUT, num_classes, latent_dim, teacher_dim, student_dim)
    means = geo.normal(size=(num_classes, latent_dim))
    means *= 2.5 / np.linalg.norm(means, axis=1, keepdims=True)  # (K, L)
    W_T = geo.normal(size=(latent_dim, teacher_dim)) / np.sqrt(latent_dim)  # (L, Dt)
    W_S = geo.normal(size=(latent_dim, student_dim)) / np.sqrt(latent_dim)  # (L, Ds)
    u = geo.normal(size=latent_dim)
    u /= np.linalg.norm(u)
    R = np.eye(latent_dim)
    c, s = np.cos(rotation), np.sin(rotation)
    R[:2, :2] = [[c, -s], [s, c]]

    rng = np.random.default_rng(seed)
    prior_s = np.exp(-label_shift * np.arange(num_classes))
    prior_s /= prior_s.sum()

    def latents(n, prior):
        y = rng.choice(num_classes, size=n, p=prior)
        h = means[y] + overlap * rng.normal(size=(n, latent_dim))  # (n, L)
        return h, y

    def teacher_view(h):
        return np.tanh(h @ W_T) + teacher_noise * rng.normal(size=(h.shape[0], teacher_dim))

    def student_view(h):
        g = h @ R.T + gap * u
        return _softplus(g @ W_S) + noise * rng.normal(size=(h.shape[0], student_dim))

    h_t, y_t = latents(n_teacher, np.full(num_classes, 1.0 / num_classes))
    x_t = teacher_view(h_t)
    h_s, y_s = latents(n_student, prior_s)
    x_s = student_view(h_s)
    x_sp = teacher_view(h_s)  # the teacher view of the student's own instances

    def cut(n):
        a, b = int(0.7 * n), int(0.85 * n)
        return {"train": slice(0, a), "val": slice(a, b), "test": slice(b, n)}

    ct, cs = cut(n_teacher), cut(n_student)
    f32 = lambda a: a.astype(np.float32)
    return CrossModalTask(
        name="synthetic",
        class_names=[f"class {k}" for k in range(num_classes)],
        teacher={k: Split(f32(x_t[v]), y_t[v]) for k, v in ct.items()},
        student={k: Split(f32(x_s[v]), y_s[v]) for k, v in cs.items()},
        paired_teacher_x={k: f32(x_sp[v]) for k, v in cs.items()},
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


@register_task("synthetic")
def _synthetic(*, seed: int = 0, fast: bool = False, **knobs):
    if fast:
        knobs.setdefault("n_teacher", 800)
        knobs.setdefault("n_student", 800)
    return make_synthetic_task(seed=seed, **knobs)


_synthetic.options_from = make_synthetic_task  # load_task names unknown options
