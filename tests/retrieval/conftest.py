"""Fixtures for retrieval tests: one engine over the seed corpus per session, and a sample issue."""

from __future__ import annotations

import shutil

import pytest

from retrieval.engine import Engine
from tests.conftest import SEEDS

__all__ = ["SAMPLE", "SEEDS"]

# A small issue in the newspaper's layout, written for these tests: a feature with subtitle,
# byline and section headings; a paragraph cut by the print column; a kicker + headline news
# item with a dateline and a trailing byline; a photo news item; a continuation.
SAMPLE = """


## 守正创新谱新篇

——白银市政协扎实推进协商议事

□ 通讯员 李明

今年以来,白银市政协聚焦中心工作,把协商议事作为履职重点,取得明显成效。

**一、搭建平台强基础**

市政协在全市乡镇建

立了35个委员工作站,打造协商议事室120个。

会宁县政协
召开十届五次常委会会议

本报会宁讯(通讯员王芳)3月12日,会宁县政协主席赵强主持召开县政协十届五次常委会会议。会议审议通过了有关事项。(刘洋 陈晨)

乡村文化进万家

3月10日,景泰县政协组织委员开展送文化下乡活动,群众喜闻乐见。张华 摄影报道

(接一版)

深化协商促发展

委员们围绕产业发展提出建议12条,均已转交有关部门办理。
"""


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    corpus = tmp_path_factory.mktemp("corpus")
    for f in SEEDS.glob("*.txt"):
        shutil.copy(f, corpus / f.name)
    engine, _ = Engine.open(corpus, tmp_path_factory.mktemp("data"))
    return engine
