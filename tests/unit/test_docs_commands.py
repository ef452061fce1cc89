"""Every `edge-agent ...` command line in the install/survey/config docs parses with today's CLI.

A renamed or positional option in the docs is what a plant engineer types first; argparse is the
judge (parse only, nothing runs). In lines with `...` (sketches) the options named must exist.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from edge_agent.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = ("docs/install.md", "docs/config.md", "docs/survey-and-calibration.md",
        "docs/troubleshooting.md", "docs/privacy.md", "deploy/mosquitto/README.md",
        "deploy/termux/README.md", "deploy/cluster.md")
_FENCE_RE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHELL_LANGS = ("", "sh", "bash", "console", "shell")
_INLINE_RE = re.compile(r"`([^`\n]+)`")


def _segments(text: str) -> list[str]:
    """Shell command segments from fenced blocks (continuations joined) and inline code."""
    out: list[str] = []
    for lang, block in _FENCE_RE.findall(text):
        if lang not in SHELL_LANGS:
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            out += re.split(r"&&|\|\||[|;>]", line.split(" #", 1)[0])
    prose = _FENCE_RE.sub("", text)
    for span in _INLINE_RE.findall(prose):
        out += re.split(r"&&|\|\||[|;>]", span)
    return out


def _edge_agent_argvs(text: str) -> list[list[str]]:
    """argv after the program for every segment that runs edge-agent (bare or by path)."""
    argvs = []
    for seg in _segments(text):
        try:
            words = shlex.split(seg.strip().strip("'\""))
        except ValueError:
            continue
        for i, word in enumerate(words):
            if word.rsplit("/", 1)[-1] == "edge-agent" and (i == 0 or "/" in word
                                                            or words[i - 1] == "sudo"):
                if len(words) > i + 1 and re.match(r"-|[a-z]", words[i + 1]):
                    argvs.append(words[i + 1:])
                break
    return argvs


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The CLI's sub-command parsers by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no sub-commands")


def _doc_commands() -> list[tuple[str, list[str]]]:
    return [(doc, argv) for doc in DOCS
            for argv in _edge_agent_argvs((REPO / doc).read_text())]


def test_the_docs_have_command_lines_to_check() -> None:
    assert len(_doc_commands()) > 20


@pytest.mark.parametrize(("doc", "argv"), _doc_commands(),
                         ids=[f"{d}:{' '.join(a)[:40]}" for d, a in _doc_commands()])
def test_doc_command_line_parses(doc: str, argv: list[str]) -> None:
    parser = build_parser()
    if argv[0].startswith("-"):  # edge-agent --version
        assert argv[0] in parser._option_string_actions, (doc, argv)
        return
    commands = _commands(parser)
    assert argv[0] in commands, f"{doc}: no command {argv[0]!r}"
    if len(argv) == 1:
        return  # prose naming a command
    if "..." in argv:  # a sketch: the options it names must exist
        known = commands[argv[0]]._option_string_actions
        unknown = [w for w in argv if w.startswith("-") and w.split("=")[0] not in known]
        assert not unknown, f"{doc}: `edge-agent {argv[0]}` has no option {unknown}"
        return
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `edge-agent {' '.join(argv)}` does not parse (exit {exc.code})")


def test_a_wrong_option_is_caught() -> None:
    argvs = _edge_agent_argvs("```sh\nedge-agent record --out walk/ ...  # x\n```\n")
    assert argvs == [["record", "--out", "walk/", "..."]]
    with pytest.raises(SystemExit):
        build_parser().parse_args(argvs[0][:3])
    with pytest.raises(AssertionError, match="no option"):
        test_doc_command_line_parses("x.md", argvs[0])
