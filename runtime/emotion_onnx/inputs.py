"""Normalising what users pass in (str, list, tuple, numpy array, pandas Series) into a list of str."""

from __future__ import annotations

from typing import Any

from .parameters import top_k_ok


def is_pandas_series(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "Series" and cls.__module__.split(".")[0] == "pandas"


def as_text_list(inputs: Any) -> tuple[list[str], bool]:
    """Return (texts, was_single_string). Non-string items raise TypeError naming their index."""
    if isinstance(inputs, str):
        check_texts([inputs])
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
    """TypeError for an item that is not a str, ValueError for a str that is not text (a lone
    surrogate, which no encoder can read), each naming the item's index."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"input at index {offset + i} is {type(item).__name__}, not str"
                + (" (None is not a text; drop or fill missing values first)" if item is None else "")
            )
        surrogate = lone_surrogate(item)
        if surrogate is not None:
            message = f"holds a lone surrogate (\\u{surrogate:04x}), which is not text"
            raise ValueError(f"input at index {offset + i} {message}")


def lone_surrogate(text: str) -> int | None:
    """The code point of the first lone surrogate in `text`, or None when it is valid Unicode text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ord(text[exc.start])
    return None


def first_bad(items: list[Any], allow_none: bool = False) -> int | None:
    """The index of the first item `check_texts` would refuse (None allowed with `allow_none`)."""
    for i, item in enumerate(items):
        if item is None and allow_none:
            continue
        if not isinstance(item, str) or lone_surrogate(item) is not None:
            return i
    return None


def check_top_k(k: Any) -> None:
    """top_k is a positive int (not a bool) or None (every label): ValueError otherwise."""
    if not top_k_ok(k):
        raise ValueError(f"top_k must be a positive int or None, got {k!r}")
