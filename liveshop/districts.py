"""Chongqing's 38 districts and counties: the English names the API and the reports use
(free text in the contract, "Wulong", "Rongchang"), and the Chinese names the pages show.

26 districts (区), 8 counties (县) and 4 autonomous counties (自治县), as of 2024.
"""

from __future__ import annotations

# English name -> Chinese name (the short form people say: 武隆, not 武隆区).
DISTRICTS: dict[str, str] = {
    # Districts
    "Wanzhou": "万州",
    "Fuling": "涪陵",
    "Yuzhong": "渝中",
    "Dadukou": "大渡口",
    "Jiangbei": "江北",
    "Shapingba": "沙坪坝",
    "Jiulongpo": "九龙坡",
    "Nan'an": "南岸",
    "Beibei": "北碚",
    "Qijiang": "綦江",
    "Dazu": "大足",
    "Yubei": "渝北",
    "Banan": "巴南",
    "Qianjiang": "黔江",
    "Changshou": "长寿",
    "Jiangjin": "江津",
    "Hechuan": "合川",
    "Yongchuan": "永川",
    "Nanchuan": "南川",
    "Bishan": "璧山",
    "Tongliang": "铜梁",
    "Tongnan": "潼南",
    "Rongchang": "荣昌",
    "Kaizhou": "开州",
    "Liangping": "梁平",
    "Wulong": "武隆",
    # Counties
    "Chengkou": "城口",
    "Fengdu": "丰都",
    "Dianjiang": "垫江",
    "Zhongxian": "忠县",
    "Yunyang": "云阳",
    "Fengjie": "奉节",
    "Wushan": "巫山",
    "Wuxi": "巫溪",
    # Autonomous counties
    "Shizhu": "石柱",
    "Xiushan": "秀山",
    "Youyang": "酉阳",
    "Pengshui": "彭水",
}

# Spellings people type for the same places.
ALIASES: dict[str, str] = {"Nanan": "Nan'an", "Zhong": "Zhongxian", "Kaixian": "Kaizhou"}


def district_names_zh() -> dict[str, str]:
    """Every spelling the pages may meet -> its Chinese name, for the Chinese pages."""
    return DISTRICTS | {alias: DISTRICTS[name] for alias, name in ALIASES.items()}
