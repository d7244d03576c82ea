"""Run.config and Run.summary: mutable mappings that queue their changes for the writer."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from .._limits import check_json
from .._values import _jsonable, check_key, normalize_config

__all__ = ["Config", "Summary"]


class Config(MutableMapping[str, Any]):
    """The run's hyperparameters. Nested dicts are kept; ``config["a.b.c"]`` reaches into them.

    Also readable as attributes (``run.config.lr``). Every change is sent to the store.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        on_change: Callable[[dict[str, Any]], None],
        guard: Callable[[], None] = lambda: None,
    ) -> None:
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_guard", guard)  # raises RunFinishedError after finish()

    def _changed(self) -> None:
        self._on_change(copy.deepcopy(self._data))

    def _replace(self, new: dict[str, Any]) -> None:
        """Adopt ``new`` as the whole config once it passes the size and depth limits."""
        check_json("config", new)
        object.__setattr__(self, "_data", new)
        self._changed()

    def __getitem__(self, key: str) -> Any:
        if key in self._data:
            return self._data[key]
        if isinstance(key, str) and "." in key:
            node: Any = self._data
            for part in key.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    raise KeyError(key)
                node = node[part]
            return node
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        """Set ``key``; a dotted key whose first part is a nested dict sets inside it."""
        self._guard()
        if isinstance(key, str) and "." in key and key not in self._data:
            head, *rest = key.split(".")
            if isinstance(self._data.get(head), dict):
                check_key(key)
                new = copy.deepcopy(self._data)
                node = new[head]
                for part in rest[:-1]:
                    nxt = node.get(part)
                    if not isinstance(nxt, dict):
                        nxt = node[part] = {}
                    node = nxt
                node[rest[-1]] = normalize_config({"v": value})["v"]
                self._replace(new)
                return
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        self._guard()
        del self._data[key]
        self._changed()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Merge a dict, Namespace, dataclass or Mapping (and keyword arguments) into the config."""
        self._guard()
        new = normalize_config(other) if other != () else {}
        if kwargs:
            new.update(normalize_config(kwargs))
        self._replace({**self._data, **new})

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        return f"Config({self._data!r})"


class Summary(MutableMapping[str, Any]):
    """Each metric's last value, unless set explicitly (explicit assignments win)."""

    def __init__(
        self,
        last_value: Callable[[str], Any],
        known_keys: Callable[[], set[str]],
        on_change: Callable[[dict[str, Any]], None],
        guard: Callable[[], None] = lambda: None,
    ) -> None:
        self._explicit: dict[str, Any] = {}
        self._last_value = last_value
        self._known_keys = known_keys
        self._on_change = on_change
        self._guard = guard  # raises RunFinishedError after finish()

    def __getitem__(self, key: str) -> Any:
        if key in self._explicit:
            return self._explicit[key]
        return self._last_value(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._guard()
        check_key(key)
        bad: list[str] = []
        v = value if isinstance(value, float) else _jsonable(value, key, bad, 1)
        new = {**self._explicit, key: v}
        check_json("summary", new)
        self._explicit = new
        self._on_change(dict(self._explicit))

    def __delitem__(self, key: str) -> None:
        self._guard()
        del self._explicit[key]
        self._on_change(dict(self._explicit))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._explicit) | self._known_keys()))

    def __len__(self) -> int:
        return len(set(self._explicit) | self._known_keys())

    def explicit(self) -> dict[str, Any]:
        return dict(self._explicit)

    def __repr__(self) -> str:
        return f"Summary({dict(self)!r})"
