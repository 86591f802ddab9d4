"""Model families (``sardata.models.<family>``) behind one registry; see :mod:`sardata.models._registry`."""

from sardata.models._registry import create_model, describe_model, list_models, register_model

__all__ = ["create_model", "describe_model", "list_models", "register_model"]
