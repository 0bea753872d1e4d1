"""scikit-learn style parameters derived from a config dataclass, shared by estimators and refuters.

A method's config dataclass declares each parameter once; :class:`Parameters` derives from it the
keyword-only constructor (and its signature), ``get_params`` / ``set_params`` and ``clone``.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any


class Parameters:
    """The parameters of :meth:`param_defaults` as attributes; subclasses say how they derive from the
    config dataclass (:meth:`param_defaults`) and whether setting them checks them (:meth:`_params_set`)."""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if (
            Parameters not in cls.__bases__
        ):  # a base class (BaseEstimator) sets its own once its module is loaded
            cls.__signature__ = signature(cls)

    def __init__(self, **params: Any):
        defaults = self.param_defaults()
        _refuse_unknown(type(self), params, defaults)
        for key, default in defaults.items():
            setattr(self, key, params.get(key, default))
        self._params_set()

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return param_names(cls)

    def _params_set(self) -> None:
        """Called after the constructor or :meth:`set_params` stored parameters (refuters check them here)."""

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {name: getattr(self, name) for name in param_names(type(self))}

    def set_params(self, **params: Any):
        _refuse_unknown(type(self), params, param_names(type(self)))
        for key, value in params.items():
            setattr(self, key, value)
        self._params_set()
        return self

    def clone(self):
        return type(self)(**self.get_params())


@cache
def param_names(cls: type) -> tuple[str, ...]:
    """The keyword parameters of ``cls`` (looked up once per class: refuters clone per simulation)."""
    return tuple(cls.param_defaults())


def signature(cls: type) -> inspect.Signature:
    """``cls(**params)`` as introspection (``help``, IDEs, ``inspect.signature``) should show it."""
    return inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in cls.param_defaults().items()
        ]
    )


def _refuse_unknown(cls: type, params: dict[str, Any], allowed) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(
            f"{cls.__name__} got unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
