"""Fixtures for the query tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from labledger.store import open_store


@pytest.fixture
def store(any_store_uri: str) -> Iterator[Any]:
    st = open_store(any_store_uri)
    yield st
    st.close()
