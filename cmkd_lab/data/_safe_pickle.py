"""A restricted unpickler for old pandas pickles that never runs foreign code.

:mod:`pickle` rebuilds objects by calling whatever globals the stream names, so
loading an untrusted pickle can execute arbitrary code (``os.system``,
``builtins.eval`` ...). :class:`SafeUnpickler` resolves only an allow-list:

* numpy array reconstruction (``_reconstruct``, ``_frombuffer``, ``ndarray``,
  ``dtype``) and the two helpers protocol-2 pickles use for bytes and plain
  objects (``_codecs.encode`` limited to latin-1, ``copyreg._reconstructor``
  limited to the stubs below), plus ``slice``;
* a handful of pandas names (``DataFrame``, ``BlockManager``, ``Index`` ...),
  resolved to inert :class:`PandasStub` classes that only record the arguments
  and state they receive, so pandas itself is never imported nor needed.

Any other global raises :class:`pickle.UnpicklingError` naming it.
:func:`frame_columns` turns a recorded ``DataFrame`` back into a dict of
column arrays.
"""
from __future__ import annotations

import pickle
from typing import BinaryIO, Dict

import numpy as np

__all__ = ["SafeUnpickler", "PandasStub", "safe_load", "frame_columns"]

_np_core = getattr(np, "_core", None) or np.core  # numpy >= 2 moved numpy.core to numpy._core


class PandasStub:
    """Inert stand-in for a pandas object.

    Attributes
    ----------
    args : tuple
        Positional arguments the pickle called the class with.
    state : object
        What the pickle passed to ``__setstate__`` (``None`` if nothing).
    """

    pandas_name = "pandas object"

    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<stub {self.pandas_name}>"


_PANDAS_NAMES = {
    "pandas.core.frame": ("DataFrame",),
    "pandas.core.internals.managers": ("BlockManager",),
    "pandas.core.internals": ("BlockManager",),
    "pandas.core.indexes.base": ("Index",),
    "pandas.core.indexes.range": ("RangeIndex",),
    "pandas.core.indexes.numeric": ("Int64Index",),
}
_STUBS = {
    (mod, name): type(name, (PandasStub,), {"pandas_name": f"{mod}.{name}"})
    for mod, names in _PANDAS_NAMES.items() for name in names
}


def _stub_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` restricted to creating an empty stub."""
    if not (isinstance(cls, type) and issubclass(cls, PandasStub)) or base is not object or state is not None:
        raise pickle.UnpicklingError(
            f"copyreg._reconstructor is allowed only for pandas stubs on object; got {cls!r}, {base!r}"
        )
    return cls()


def _new_index(cls, state):
    """``pandas.core.indexes.base._new_Index`` restricted to stubs."""
    if not (isinstance(cls, type) and issubclass(cls, PandasStub)):
        raise pickle.UnpicklingError(f"_new_Index is allowed only for pandas stubs; got {cls!r}")
    obj = cls()
    obj.state = state
    return obj


def _latin1_encode(text, encoding):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only as encode(str, 'latin1'); got {encoding!r}")
    return text.encode("latin1")


class _Sealed:
    """A Python function the stream may call but not modify.

    A pickle's BUILD opcode sets attributes on whatever object it is given
    (``__defaults__`` of a function, say); this wrapper refuses that. The
    allowed classes need no wrapper: numpy's and the built-in ones are
    immutable and the stubs define ``__setstate__``.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn):
        self._fn = fn

    def __call__(self, *args):
        return self._fn(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"refusing to set state on {self._fn.__qualname__}")


_ALLOWED = {
    **_STUBS,
    ("pandas.core.indexes.base", "_new_Index"): _Sealed(_new_index),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _Sealed(_latin1_encode),
}
# Protocol-2 pickles written by Python 3 use Python-2 module names; the C
# unpickler hands them to find_class unchanged, so allow both spellings.
for _mod in ("copyreg", "copy_reg"):
    _ALLOWED[(_mod, "_reconstructor")] = _Sealed(_stub_reconstructor)
for _mod in ("builtins", "__builtin__"):
    _ALLOWED[(_mod, "object")] = object
    _ALLOWED[(_mod, "slice")] = slice
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _np_core.multiarray._reconstruct
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _Sealed(_np_core.numeric._frombuffer)


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals (see the module doc).

    The allow-list accepts the Python-2 module names (``copy_reg``,
    ``__builtin__``) that protocol-2 pickles carry.
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays and inert pandas stubs "
                "are allowed by cmkd_lab's safe unpickler"
            ) from None


def safe_load(fileobj: BinaryIO):
    """Unpickle ``fileobj`` with :class:`SafeUnpickler`.

    Parameters
    ----------
    fileobj : binary file-like
        An open pickle stream (e.g. ``gzip.open(path, "rb")``).

    Returns
    -------
    object
        The unpickled object; pandas objects come back as :class:`PandasStub`.

    Raises
    ------
    pickle.UnpicklingError
        If the stream references a global outside the allow-list.
    """
    return SafeUnpickler(fileobj, encoding="latin1").load()


def _index_values(index) -> np.ndarray:
    """The labels of a stubbed ``Index`` / ``RangeIndex``."""
    state = index.state if isinstance(index, PandasStub) else None
    if isinstance(state, dict) and "data" in state:
        return np.asarray(state["data"])
    if isinstance(state, dict) and {"start", "stop", "step"} <= set(state):
        return np.arange(state["start"], state["stop"], state["step"])
    raise ValueError(f"cannot read the labels of {index!r} with state {state!r}")


def frame_columns(frame: PandasStub) -> Dict[str, np.ndarray]:
    """Columns of a stubbed pandas ``DataFrame``, in column order.

    Parameters
    ----------
    frame : PandasStub
        A ``DataFrame`` stub from :func:`safe_load` whose ``BlockManager`` was
        pickled by pandas 0.14.1 or later (the ``"0.14.1"`` state layout).

    Returns
    -------
    dict str -> array (n_rows,)
    """
    manager = frame.state.get("_data") if isinstance(frame.state, dict) else None
    try:
        layout = manager.state[3]["0.14.1"]
    except (AttributeError, IndexError, KeyError, TypeError):
        raise ValueError(f"{frame!r} does not hold a BlockManager in the pandas >= 0.14.1 layout") from None
    names = [str(c) for c in _index_values(layout["axes"][0])]
    columns = {}
    for block in layout["blocks"]:
        values, locs = np.asarray(block["values"]), block["mgr_locs"]
        positions = range(len(names))[locs] if isinstance(locs, slice) else np.asarray(locs)
        for row, pos in enumerate(positions):
            columns[names[pos]] = values[row]
    return {name: columns[name] for name in names}
