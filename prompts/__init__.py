"""Prompt templates (``*.md``, shipped as package data) and their loader; imports nothing of ours."""

from prompts.loader import Prompt, load_prompt, render

__all__ = ["Prompt", "load_prompt", "render"]
