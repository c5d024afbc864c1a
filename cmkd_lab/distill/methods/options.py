"""A method's own options: a small typed dataclass per method, declared next to its code.

A method with options of its own (beyond what every method shares, the fields of
:class:`~cmkd_lab.distill.DistillConfig`) declares them as a subclass of :class:`MethodOptions` with a
``prefix``, each field with :func:`~cmkd_lab._validation.opt` (default, rule, help) — the same declaration
form as the config's fields, so one table of rules (:func:`cmkd_lab.distill.config.option_table`) drives
validation, the CLI help and the reference. The values travel in ``DistillConfig.extra`` under
``<prefix><field>`` (``c2kd_tau``; the prefix may be empty: ``ucmkd``'s ``n1``) and can be given by that
name everywhere an option can (``DistillConfig(c2kd_tau=0.5)``, ``from_dict``, ``replace``, ``--set
c2kd_tau=0.5``, a config file, a sweep's grid). The method reads them from its typed object
(``self.opts.tau``).

An option belongs to its method: a single run refuses another method's option given away from its
default (:func:`check_method_options`: it would be stored and never read), and a grid applies each
method's options to that method's runs only (:func:`config_for`).
"""
from __future__ import annotations

import difflib
from dataclasses import Field, dataclass, fields
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

from ..._validation import Float, Rule, apply_rules, opt, rule_of

__all__ = ["MethodOptions", "PseudoLabelOptions", "option_fields", "option_specs", "option_owner",
           "relevant_options", "extra_rules", "canonical_extra", "config_for", "check_method_options",
           "foreign_options", "divergence_advice"]


@dataclass
class MethodOptions:
    """Base class: subclasses set ``prefix`` and declare their fields with :func:`opt`."""

    prefix: ClassVar[str] = ""

    @classmethod
    def specs(cls) -> Dict[str, Field]:
        """``"<prefix><field>"`` → the dataclass field (its default and its metadata: rule, help)."""
        return {cls.prefix + f.name: f for f in fields(cls)}

    @classmethod
    def from_extra(cls, extra: Dict[str, Any]) -> "MethodOptions":
        """The options found in ``extra`` (the others at their defaults), checked by their rules."""
        specs = cls.specs()
        given = apply_rules({k: v for k, v in extra.items() if k in specs}, {k: rule_of(specs[k]) for k in specs})
        return cls(**{specs[k].name: v for k, v in given.items()})


@dataclass
class PseudoLabelOptions(MethodOptions):
    """The options of a class-aware method that also pulls confidently pseudo-labelled unlabelled samples
    (``cc-fa``, ``proto``): the weight of its term and the confidence threshold."""

    weight: float = opt(1.0, Float(ge=0), "weight of the method's alignment term")
    threshold: float = opt(0.9, Float(gt=0, le=1, why="a probability"),
                           "pseudo-label confidence an unlabelled student sample needs to join the term")


def _registry() -> Dict[str, Tuple[str, Type[MethodOptions], Field]]:
    """name → (method, options class, field) of every registered method option, built again only when a
    method is registered (methods are never unregistered)."""
    from . import METHODS
    key = tuple((name, getattr(cls, "options", None)) for name, cls in METHODS.items())
    if _CACHE.get("key") != key:
        out = {}
        for name, opts in sorted(key, key=lambda x: x[0]):
            for k, f in (opts.specs().items() if opts is not None else ()):
                out[k] = (name, opts, f)
        _CACHE.update(key=key, registry=out)
    return _CACHE["registry"]


_CACHE: Dict[str, Any] = {}


def option_fields() -> Dict[str, Tuple[str, Type[MethodOptions]]]:
    """Every registered method option: ``"<prefix><field>"`` → (method name, its options class)."""
    return {k: (m, cls) for k, (m, cls, _) in _registry().items()}


def option_specs() -> Dict[str, Tuple[str, Field]]:
    """Every registered method option: name → (method name, its declared field)."""
    return {k: (m, f) for k, (m, _, f) in _registry().items()}


def option_owner(name: str) -> Optional[str]:
    """The method that option ``name`` belongs to (None for a shared config field or an unknown name)."""
    hit = _registry().get(name)
    return None if hit is None else hit[0]


def relevant_options(method: str) -> Tuple[str, ...]:
    """The names of ``method``'s own options (empty for a method without any)."""
    from .base import get_method
    opts = get_method(method).options
    return tuple(opts.specs()) if opts is not None else ()


def extra_rules(extra: Dict[str, Any]) -> Dict[str, Rule]:
    """The rule of every key of ``extra``; an unknown key is refused with the closest known name."""
    known = option_specs()
    for k in extra:
        if k not in known:
            close = difflib.get_close_matches(k, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"extra has an unknown method option {k!r}{hint}; the method options are "
                             f"{', '.join(sorted(known)) or '(none)'}")
    return {k: rule_of(known[k][1]) for k in extra}


def canonical_extra(extra: Dict[str, Any]) -> Dict[str, Any]:
    """``extra`` (checked) without the options at their default, in the table's order: a config with an
    option left at its default and one with it given at its default are the same config."""
    specs = option_specs()
    return {k: extra[k] for k in specs if k in extra and extra[k] != specs[k][1].default}


def foreign_options(method: str, config) -> Dict[str, str]:
    """The options of ``config`` (away from their default) that belong to a method other than ``method``:
    name → owning method."""
    mine = set(relevant_options(method))
    return {k: option_owner(k) for k in config.extra if k not in mine}


def config_for(method: str, config):
    """``config`` with the options of every other method back at their default: what a run of ``method``
    reads (a grid calls it per job, so that ``ccfa_threshold`` in a bench of ``ce,cc-fa`` changes the
    ``cc-fa`` runs only and the ``ce`` runs stay one run)."""
    if not foreign_options(method, config):
        return config
    import dataclasses
    mine = set(relevant_options(method))
    return dataclasses.replace(config, extra={k: v for k, v in config.extra.items() if k in mine})


def check_method_options(method: str, config) -> None:
    """Refuse a single run of ``method`` whose config sets another method's option (it would be stored
    in the run's config and never read).

    Raises
    ------
    ValueError
        Naming the option, its value, its method and the remedy.
    """
    foreign = foreign_options(method, config)
    if foreign:
        k, owner = next(iter(foreign.items()))
        others = f" (and {', '.join(sorted(foreign)[1:])})" if len(foreign) > 1 else ""
        raise ValueError(f"{k}={config.extra[k]!r}{others} is an option of method {owner!r}, and this run is method "
                         f"{method!r}, which never reads it: leave it out, or run method {owner!r}")


def divergence_advice(method: str) -> str:
    """What to change when a run of ``method`` diverges, naming its own knobs (``Method.knobs`` to lower,
    ``Method.knobs_up`` to raise): ``"lower lr or lambda_fa, or raise eps"`` for ``fa``."""
    from .base import get_method
    cls = get_method(method)

    def either(names):
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"lower {either(['lr', *cls.knobs])}" + (f", or raise {either(list(cls.knobs_up))}" if cls.knobs_up else "")
