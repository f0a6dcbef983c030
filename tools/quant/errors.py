"""Typed errors of the quant layer. Each message is one line that names the artefact, model or window.

``ModelError`` is the base: the CLI prints it as ``error: <message>`` (exit 2); the agent's quant node
abstains with it as the reason. Nothing here returns an empty result to mean "failed" (shared/DESIGN.md).
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every quant-model failure; its message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ArtefactError(ModelError):
    """A model artefact is corrupt or foreign: bad JSON, hash mismatch, unknown kind, missing file."""


class NoUsableModelError(ModelError):
    """No model of this kind and universe was trained strictly before the day asked for."""


class TrainingError(ModelError):
    """Training cannot run: too little data, no labelled rows, a class-less window, a bad parameter."""
