"""The report's fixed words in English and Chinese (`reports.language`).

One table, looked up by key: the HTML, the PDF, the charts and the Slack summary say
the same thing in the same words. User text (posts, authors, theme labels, brand names)
is never translated.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh"]

LABELS: dict[str, dict[Language, str]] = {
    "title": {"en": "Brand report", "zh": "品牌报告"},
    "period": {"en": "Period", "zh": "时段"},
    "compared": {"en": "compared with the period before", "zh": "与上一时段相比"},
    "time_zone": {"en": "time zone", "zh": "时区"},
    "generated": {"en": "generated", "zh": "生成于"},
    "headline": {"en": "Headline figures", "zh": "核心指标"},
    "mentions": {"en": "Mentions", "zh": "提及量"},
    "share_of_voice": {"en": "Share of voice", "zh": "声量占比"},
    "net_sentiment": {"en": "Net sentiment", "zh": "净情感"},
    "negative_mentions": {"en": "Negative mentions", "zh": "负面提及"},
    "previous": {"en": "before", "zh": "上期"},
    "change": {"en": "change", "zh": "变化"},
    "sov_chart": {"en": "Share of voice by day", "zh": "每日声量占比"},
    "sentiment_chart": {"en": "Sentiment by day", "zh": "每日情感"},
    "sov_chart_hourly": {"en": "Share of voice by hour", "zh": "每小时声量占比"},
    "sentiment_chart_hourly": {"en": "Sentiment by hour", "zh": "每小时情感"},
    "positive": {"en": "positive", "zh": "正面"},
    "neutral": {"en": "neutral", "zh": "中性"},
    "negative": {"en": "negative", "zh": "负面"},
    "uncertain": {"en": "uncertain", "zh": "不确定"},
    "competitors": {"en": "Brands compared", "zh": "对比品牌"},
    "brand": {"en": "brand", "zh": "品牌"},
    "themes": {"en": "Top complaint themes", "zh": "主要投诉主题"},
    "theme": {"en": "theme", "zh": "主题"},
    "size": {"en": "posts", "zh": "帖子数"},
    "no_themes": {"en": "No complaint themes (too few negative posts).",
                  "zh": "无投诉主题（负面帖子过少）。"},
    "themes_sampled": {"en": "Sizes estimated from a random sample of {sampled} of the {total} "
                             "negative mentions.",
                       "zh": "规模按 {total} 条负面提及中随机抽取的 {sampled} 条估算。"},
    "top_negative": {"en": "Top negative posts (by author reach)",
                     "zh": "主要负面帖子（按作者影响力）"},
    "top_positive": {"en": "Top positive posts (by author reach)",
                     "zh": "主要正面帖子（按作者影响力）"},
    "no_posts": {"en": "None in this period.", "zh": "本时段无。"},
    "authors": {"en": "Notable authors by reach", "zh": "高影响力作者"},
    "author": {"en": "author", "zh": "作者"},
    "source": {"en": "source", "zh": "来源"},
    "reach": {"en": "reach", "zh": "影响力"},
    "alerts": {"en": "Alerts in this period", "zh": "本时段告警"},
    "no_alerts": {"en": "No alerts in this period.", "zh": "本时段无告警。"},
    "alerts_unavailable": {"en": "Alerts are not available", "zh": "告警不可用"},
    "kind": {"en": "kind", "zh": "类型"},
    "when": {"en": "when", "zh": "时间"},
    "observed": {"en": "observed / expected", "zh": "实际 / 预期"},
    "status": {"en": "status", "zh": "状态"},
    "open_post": {"en": "open", "zh": "打开"},
    "charts_note": {"en": "Chart text is in English: no font with Chinese characters is "
                          "installed on this machine.",
                    "zh": "图表文字为英文：本机未安装中文字体。"},
    "reposts_excluded": {"en": "reposts excluded", "zh": "已排除转发"},
    "reposts_counted": {"en": "reposts counted", "zh": "含转发"},
    "full_report": {"en": "Full report", "zh": "完整报告"},
}


def label(key: str, language: Language) -> str:
    """The word for `key` in `language` (KeyError for an unknown key: a typo is a bug)."""
    return LABELS[key][language]
