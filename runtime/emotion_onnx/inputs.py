"""Normalising what users pass in (str, list, tuple, numpy array, pandas Series) into a list of str."""

from __future__ import annotations

from typing import Any


def is_pandas_series(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "Series" and cls.__module__.split(".")[0] == "pandas"


def as_text_list(inputs: Any) -> tuple[list[str], bool]:
    """Return (texts, was_single_string). Non-string items raise TypeError naming their index."""
    if isinstance(inputs, str):
        return [inputs], True
    if is_pandas_series(inputs):
        items = inputs.tolist()
    elif isinstance(inputs, (list, tuple)):
        items = list(inputs)
    elif type(inputs).__module__ == "numpy" and hasattr(inputs, "tolist"):
        items = inputs.tolist()
        if not isinstance(items, list):
            items = [items]
    else:
        raise TypeError(
            f"expected a str, a list/tuple of str or a pandas Series, got {type(inputs).__name__}; "
            "use .stream() for iterators and generators"
        )
    check_texts(items)
    return items, False


def check_texts(items: list[Any], offset: int = 0) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"input at index {offset + i} is {type(item).__name__}, not str"
                + (" (None is not a text; drop or fill missing values first)" if item is None else "")
            )


def is_positive_int(value: Any) -> bool:
    """A real int (not a bool) of at least 1, as top_k must be."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
