"""Readable run names and random run ids."""

from __future__ import annotations

import os
import random

__all__ = ["new_run_id", "new_run_name"]

_ADJECTIVES = (
    "amber azure bold brave bright calm clever cosmic crisp daring deep eager fierce fluent "
    "gentle golden grand happy hidden honest humble icy jolly keen kind lively lucid lunar "
    "mellow mighty misty noble polar proud quick quiet rapid rare royal rustic sharp shiny silent "
    "silver smooth snowy solar sonic spry steady stellar stormy sunny swift tidy vivid warm wild wise"
).split()
_NOUNS = (
    "badger bear beacon breeze canyon cedar comet coral crane delta dune eagle ember falcon fern "
    "fjord fox galaxy glacier harbor hawk heron island jaguar lagoon lark lynx maple meadow mesa "
    "meteor moose nebula oak orbit otter owl panda pebble pine planet quasar raven reef river "
    "sparrow spruce summit tiger tundra valley violet wave willow wolf"
).split()

_rng = random.SystemRandom()


def new_run_id() -> str:
    """32 lowercase hex characters from the OS's random source (like a uuid4, unordered)."""
    return os.urandom(16).hex()


def new_run_name() -> str:
    """``adjective-noun-NN``, e.g. ``brave-otter-42``."""
    return f"{_rng.choice(_ADJECTIVES)}-{_rng.choice(_NOUNS)}-{_rng.randrange(1, 100)}"
