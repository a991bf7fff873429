"""Chongqing's districts and counties: English in the API, Chinese on the Chinese pages."""

from __future__ import annotations

import json
import re

import pytest

from liveshop.districts import ALIASES, DISTRICTS, district_names_zh

pytestmark = pytest.mark.django_db


def test_all_38_districts_and_counties_once_each():
    assert len(DISTRICTS) == 38
    assert len(set(DISTRICTS.values())) == 38
    assert all(target in DISTRICTS for target in ALIASES.values())
    assert district_names_zh()["Nanan"] == district_names_zh()["Nan'an"] == "南岸"


def page_config(client, language):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    found = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found[1])


def test_the_chinese_page_gets_the_chinese_names_and_the_english_page_none(client):
    assert page_config(client, "zh-CN")["district_names"]["Wulong"] == "武隆"
    assert page_config(client, "en-US")["district_names"] == {}
