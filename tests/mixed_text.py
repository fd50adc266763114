# ruff: noqa: RUF001  (look-alike letters and odd dashes are the point)
"""Generated mixed-script text, and the platforms' own libraries run under node to say
what they make of it (`tests/reference`, installed by `make test`). Shared by the
reference tests of X's counting and links and of Bluesky's links.

The texts are built from pieces that exercise what the references treat specially: links
with and without a scheme, any top-level domain (the internationalised ones and upper case
included), ports, paths with brackets and queries, `t.co` links, e-mail addresses and
mentions beside links, long labels, punycode, text of many scripts written straight after
a link, emoji (sequences, keycaps, flags, skin tones), direction marks and odd spaces.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from policies import twitter_text

REFERENCE = Path(__file__).parent / "reference"
NODE = shutil.which("node")
INSTALLED = (REFERENCE / "node_modules" / "twitter-text").is_dir()


def need_node() -> None:
    """Skip the calling module when node or the references are missing; under CI, fail."""
    if NODE and INSTALLED:
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError("the references need node and `make test` to install them")
    pytest.skip("node or tests/reference/node_modules missing", allow_module_level=True)


TLDS = sorted(
    tld
    for group in yaml.safe_load(
        (Path(twitter_text.__file__).parent / "data" / "tld_lib.yml").read_text("utf-8")
    ).values()
    for tld in group
)

WORDS = [
    "thanks", "Hilfe", "Grüße", "café", "naïve", "спасибо", "Привет", "ευχαριστώ", "ΓΕΙΑ",
    "ありがとう", "をご覧ください", "客服", "中文", "감사합니다", "شكرا", "תודה", "ขอบคุณ",
    "धन्यवाद", "ｆｕｌｌ", "ＡＢＣ", "ſtraße", "İstanbul", "e\u0301", "Ⅻ", "123", "3.5", "e.g.",
    "v1.2.3", "$9.99", "#help", "@acme", "@user@example.social", "support@acme-bank.com",
    "a.b", "x", "",
]  # fmt: skip
EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇩🇪", "1️⃣", "#️⃣", "*⃣", "©", "©️", "®", "™", "❤", "❤️",
    "🧑🏿‍💻", "☺︎", "🫠", "\U0001f9ff", "\U000e0067",
]  # fmt: skip
MARKS = ["\u200e", "\u200f", "\u202a", "\u202c", "\u2066", "\u2069", "\u061c", "\ufeff",
         "\u200b", "\u200d", "\ufe0f", "\u0301"]  # fmt: skip
SEPARATORS = [
    " ", " ", " ", "", "\n", "\u00a0", "\u3000", "\u2009", ",", ".", "!", "?", ":", ";", "(",
    ")", "/", "-", "_", "@", "#", "$", "+", "=", "—", "–", "…", "。", "、", "\"", "'", "[", "]",
]  # fmt: skip
LABELS = ["acme", "acme-bank", "a", "x1", "b_c", "www", "t", "_x", "-x", "xn--bcher-kva",
          "ドメイン", "münchen", "例え", "пример", "a" * 63, "b" * 64, "中文", "ACME"]  # fmt: skip
PATH_PIECES = ["/", "/help", "/a/b", "/wiki/Foo_(bar)", "/(a(b)c)", "/x?", "/é", "/путь",
               "/a.b", "/~u", "/@user/", "/p!", "/a,b", "/%20", "/#frag", "/x-", "/x+"]  # fmt: skip
QUERIES = ["", "?q=1", "?a=b&c=d", "?x", "?x.", "?!", "?q=(1)", "?q=a#f"]


@st.composite
def domains(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=0, max_size=3))
    tld = draw(st.sampled_from([*TLDS, "zz", "notatld", "xn--p1ai", "c", "COM", "Com", "ＣＯＭ"]))
    return ".".join([*labels, draw(st.sampled_from(LABELS)), tld])


@st.composite
def links(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["", "", "https://", "http://", "HTTPS://", "ftp://", "www."]))
    if draw(st.integers(0, 12)) == 0:
        return scheme + "t.co/" + draw(st.sampled_from(["abc123", "x" * 41, "AbC", "a-b"]))
    port = draw(st.sampled_from(["", "", "", ":8080", ":", ":x"]))
    path = "".join(draw(st.lists(st.sampled_from(PATH_PIECES), max_size=2)))
    return scheme + draw(domains()) + port + path + draw(st.sampled_from(QUERIES))


PIECES = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(EMOJI),
    st.sampled_from(MARKS),
    links(),
    links(),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4),
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(PIECES, min_size=1, max_size=10))
    return "".join(piece + draw(st.sampled_from(SEPARATORS)) for piece in pieces)


def reference(script: str, batch: list[str]) -> list:
    """What `tests/reference/<script>` answers for each text of `batch`."""
    done = subprocess.run(
        [str(NODE), str(REFERENCE / script)],
        input=json.dumps(batch), capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(done.stdout)


# Random strings over the characters link rules turn on, for the corners the pieces miss.
_ALPHABET = [
    *"abcxyzACMEtco0123456789.-_/:?#@()[]!,;=&%+~$'*| \u00a0\u3000\n",
    *"éü中дΩſKİıςσΣ\u0345ιΙ\u200e\u202e\u2066\ufeff＠＃。．\u2013—",
    "😀", "🇩🇪", "1️⃣", "http://", "https://", "www.", "t.co/", "xn--",
]  # fmt: skip


def random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = [*_ALPHABET, *("." + tld for tld in rng.sample(TLDS, 300))]
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(count)]


def differences(
    script: str, batch: list[str], ours: Callable[[str], Any]
) -> list[tuple[str, Any, Any]]:
    """Each text of `batch` on which `ours` and the reference `script` disagree."""
    answers = reference(script, batch)
    return [
        (text, expected, ours(text))
        for text, expected in zip(batch, answers, strict=True)
        if ours(text) != expected
    ]


def none_differ(script: str, batch: list[str], ours: Callable[[str], Any]) -> None:
    disagree = differences(script, batch, ours)
    assert not disagree, f"{len(disagree)} of {len(batch)} differ; first: {disagree[0]!r}"


# Batches of generated texts per test run (each batch one call of node).
BATCHES = settings(
    max_examples=int(os.environ.get("REFERENCE_BATCHES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
