"""Distillation methods, one small module each, registered by decorator.

Every module in this package is imported here, so a new method only needs a
file with an ``@register_method("name")`` class.
"""
import importlib
import pkgutil

from .base import METHODS, Batch, Method, available_methods, get_method, register_method

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m != "base":
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["METHODS", "Batch", "Method", "available_methods", "get_method", "register_method"]
