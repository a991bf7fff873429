"""The Chinese catalogs are complete and compiled: every word of the pages and their
scripts is in liveshop/locale/zh_Hans/, translated, and the committed .mo files say
what the .po files say (run `make messages` after changing a page's words)."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest

LIVESHOP = Path(__file__).resolve().parents[2] / "liveshop"
CATALOGS = LIVESHOP / "locale" / "zh_Hans" / "LC_MESSAGES"


def po_entries(path: Path) -> dict[str, list[str]]:
    """msgid -> msgstr (one, or one per plural form) of a .po file, header excluded."""
    entries: dict[str, list[str]] = {}
    for block in path.read_text().split("\n\n"):
        fields: dict[str, str] = {}
        current = ""
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                current = match[1]
                fields[current] = ast.literal_eval(match[2])
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if fields.get("msgid"):
            entries[fields["msgid"]] = [value for key, value in sorted(fields.items()) if key.startswith("msgstr")]
    return entries


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_entry_is_translated_and_compiled(domain):
    entries = po_entries(CATALOGS / f"{domain}.po")
    assert entries
    untranslated = [msgid for msgid, strings in entries.items() if not all(strings)]
    assert untranslated == []
    assert "#, fuzzy" not in (CATALOGS / f"{domain}.po").read_text()  # msgfmt would leave those out
    with (CATALOGS / f"{domain}.mo").open("rb") as compiled:
        catalog = vars(gettext.GNUTranslations(compiled))["_catalog"]
    # A plural entry is compiled under (msgid, 0), (msgid, 1)...; compare the first form.
    stale = [msgid for msgid, strings in entries.items() if catalog.get(msgid, catalog.get((msgid, 0))) != strings[0]]
    assert stale == []


def test_every_word_of_the_scripts_is_in_the_catalog():
    known = po_entries(CATALOGS / "djangojs.po")
    used: set[str] = set()
    for script in (LIVESHOP / "static" / "liveshop" / "js").rglob("*.js"):
        text = script.read_text()
        used.update(ast.literal_eval(f"'{m}'") for m in re.findall(r"\bn?gettext\('((?:[^'\\]|\\.)*)'", text))
    assert used
    assert sorted(used - set(known)) == []


def test_every_word_of_the_templates_is_in_the_catalog():
    known = po_entries(CATALOGS / "django.po")
    used: set[str] = set()
    for template in (LIVESHOP / "templates").rglob("*.html"):
        text = template.read_text()
        used.update(re.findall(r'{% translate "([^"]+)"', text))
        used.update(re.findall(r"{% translate '([^']+)'", text))
    assert used
    assert sorted(used - set(known)) == []
