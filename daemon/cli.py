"""`python scheduler.py <subcommand>`: the one command-line entry point.

Also installed as the `brandpulse` console script. Each subcommand is what a team
does by hand; `run` is the daemon itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from brandpulse.config import Config, ConfigError, load_config
from brandpulse.secrets import mask_url, redact, reveal
from daemon.logs import configure_logging
from store.errors import ES_ERRORS, describe_es_error

DEFAULT_CONFIG = "config.yaml"


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    args.loaded_config = config  # for error messages that name the configured hosts
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.roles import role_problem, run_role

    config = _config(args)
    problem = role_problem(config, args.role)
    if problem is not None:
        raise ConfigError(args.config, [problem])
    configure_logging(config.daemon.log_format, config.daemon.log_level)
    run_role(config, args.role)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    config = _config(args)
    enabled = [s.name for s in config.sources if s.enabled]
    print(f"{args.config}: valid")
    print(f"  brands:  {', '.join(b.name + ('' if b.own else ' (competitor)') for b in config.brands)}")
    print(f"  sources: {', '.join(enabled) or 'none enabled'}")
    print(f"  model:   {config.nlp.model}")
    print(f"  elasticsearch: {_es_where(config)}")
    print(f"  slack:   {_slack_mode(config)}")
    schedules = "; ".join(s.describe() for s in config.reports.schedules)
    print(f"  reports: {schedules or 'none scheduled'}"
          + (f" -> {config.reports.output_dir}" + (" and Slack" if config.reports.slack else "")
             if schedules else ""))
    print(f"  email:   {_email_mode(config)}")
    print(f"  routes:  {_routes_mode(config)}")
    print(f"  alerts:  {_alert_channel(config)}")
    if config.redis is not None:  # crawl leases, cursors, duplicate state (daemon.coord)
        print(f"  shared:  Redis {config.redis.url}, keys {config.redis.key_prefix}*")
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    _print_assumed_visibility(config)
    if getattr(args, "check_channel", False):
        return _check_channel(config)
    return 0


def _alert_channel(config: Config) -> str:
    """Which channels of the registry alerts go to: the first configured one (the
    default), and the others only where `alerts.routes` names them."""
    from alerts.notifiers import NOTIFIERS

    chosen = [name for name, c in NOTIFIERS.items() if not c.fallback and c.configured(config)]
    if not chosen:
        return "the log only (no channel configured)"
    if not chosen[1:]:
        return chosen[0]
    if config.alerts.routes:
        return (f"{chosen[0]} by default (also configured, used where routes name them: "
                f"{', '.join(chosen[1:])})")  # fmt: skip
    return f"{chosen[0]} (also configured, unused: {', '.join(chosen[1:])})"


def _check_channel(config: Config) -> int:
    """Ask each channel alerts can go to whether its credentials work (without posting
    where the channel allows: see each notifier's `check`): the default channel, and
    with `alerts.routes` every channel a route names. Every failure is reported."""
    from alerts.notifiers import NotifierError, notifiers_from_config

    channels = notifiers_from_config(config)
    default = next(iter(channels))
    routed = {c for r in config.alerts.routes for c in (*r.channels, *r.escalate_to)}
    wanted = [default, *sorted(routed - {default})]
    failed = 0
    for name in wanted:
        try:
            print(f"  channel check: {channels[name].check()}")
        except NotifierError as exc:
            print(f"channel check failed: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _es_where(config: Config) -> str:
    es = config.elasticsearch
    where = f"Elastic Cloud id {es.cloud_id}" if es.cloud_id else ", ".join(mask_url(h) for h in es.hosts)
    auth = "API key" if es.api_key else ("user " + es.username if es.username else "no credentials")
    return f"{where} ({auth})"


# Volumes (negative mentions a day) `validate` states the smallest visible wave for:
# it has no Elasticsearch, so it cannot know a brand's own; the dry run does.
ASSUMED_PER_DAY = (5.0, 40.0, 300.0, 3000.0)


def _print_assumed_visibility(config: Config) -> None:
    from alerts.visibility import smallest_visible_wave

    print("  smallest visible negative wave, at assumed volumes "
          "(`check-alerts --dry-run` measures each brand's own):")  # fmt: skip
    for brand in config.brands:
        settings = config.spike_settings(brand.name)
        print(f"    {brand.name}:")
        for per_day in ASSUMED_PER_DAY:
            print(f"      {smallest_visible_wave(per_day / 24.0, settings).describe()}")


def _slack_mode(config: Config) -> str:
    if config.slack.token is not None:
        buttons = ", response buttons over Socket Mode" if config.slack.app_token is not None else ""
        return f"bot token, channel {config.slack.channel}{buttons}"
    if config.slack.webhook_url is not None:
        return "incoming webhook"
    return "not configured"


def _email_mode(config: Config) -> str:
    email = config.email
    if email.host is None:
        return "not configured"
    return f"{email.host}:{email.effective_port} ({email.tls}) to {len(email.to)} recipient(s)"


def _routes_mode(config: Config) -> str:
    routes = config.alerts.routes
    if not routes:
        return "none: every alert goes to the first configured channel"
    escalating = sum(1 for r in routes if r.escalate_after is not None)
    channels = sorted({c for r in routes for c in (*r.channels, *r.escalate_to)})
    return f"{len(routes)} route(s) to {', '.join(channels)}" + (
        f", {escalating} escalating" if escalating else "")


def cmd_setup(args: argparse.Namespace) -> int:
    config = _config(args)
    both = not args.elasticsearch and not args.kibana
    if args.elasticsearch or both:
        from alerts.state import install as install_alert_state
        from store.client import make_client
        from store.setup import setup_elasticsearch

        client = make_client(config.elasticsearch)
        result = setup_elasticsearch(client, config.elasticsearch)
        install_alert_state(client, config.elasticsearch.index_prefix)
        print(f"elasticsearch: templates installed, alias {result.alias}, "
              f"Chinese analyzer {result.zh_analyzer}")  # fmt: skip
    if args.kibana or both:
        from kibana.importer import import_saved_objects

        kibana = config.kibana
        if not kibana.base_url:
            print("kibana: kibana.url is not set in the config; skipped", file=sys.stderr)
            return 0 if both else 2
        for warning in kibana.tls_warnings("kibana"):
            print(f"warning: {warning}", file=sys.stderr)
        auth: tuple[str, str] | str | None = reveal(kibana.api_key)
        if auth is None and kibana.username:
            auth = (kibana.username, reveal(kibana.password) or "")
        ndjson = Path(__file__).resolve().parent.parent / "kibana" / "brandpulse.ndjson"
        result = import_saved_objects(
            kibana.base_url, ndjson, auth=auth, ca_certs=kibana.ca_certs,
            ssl_assert_fingerprint=kibana.ssl_assert_fingerprint, verify_certs=kibana.verify_certs,
        )  # fmt: skip
        print(f"kibana: {result}")
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawlers.job import CrawlJob
    from crawlers.runner import run_crawl

    config = _config(args)
    configure_logging("text", "WARNING")
    try:
        job = CrawlJob.from_config(config, args.source)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_crawl(job)
    print(f"{args.source}: {len(result.mentions)} mention(s)"
          + (f", error: {result.error}" if result.error else ""))  # fmt: skip
    if result.fault_summary():
        print(f"faults: {result.fault_summary()}", file=sys.stderr)
    if result.read_nothing:
        # Every request failed, or the source was skipped: not a quiet success.
        print(f"error: {result.problem()}", file=sys.stderr)
        result.discard_cursor()
        return 1
    mentions = result.mentions
    if mentions and not args.no_score:
        from nlp.enrich import brand_queries, enrich
        from nlp.scorer import SentimentScorer

        mentions = enrich(mentions, SentimentScorer.from_config(config.nlp),
                          brands=brand_queries(config.brands))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for m in mentions:
                fh.write(json.dumps(m.to_document(), ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    if args.index and mentions:
        from store.client import make_client
        from store.rollup import counts_rollup
        from store.writer import BulkWriter

        client = make_client(config.elasticsearch)
        with BulkWriter(client, config.elasticsearch) as writer:
            counts_rollup(config, client, writer)
            report = writer.write(mentions)
        print(f"index: {report.summary()}")
        if not report.ok:
            return 1
    if not args.out and not args.index:
        for m in mentions[: args.show]:
            label = m.sentiment.label if m.sentiment else "-"
            print(f"  [{label:8}] {m.created_at:%Y-%m-%d %H:%M} {m.author or '?'}: {m.body[:100]!r}")
    if args.commit and not result.error:
        result.commit_cursor()
    else:
        result.discard_cursor()
    return 1 if result.error else 0


def cmd_score(args: argparse.Namespace) -> int:
    from brandpulse.config import NlpConfig
    from nlp.scorer import SentimentScorer

    nlp = NlpConfig(model=args.model) if args.model else (
        load_config(args.config).nlp if Path(args.config).exists() else NlpConfig()
    )  # fmt: skip
    texts = args.text or _stdin_lines()
    scorer = SentimentScorer.from_config(nlp)
    for text, s in zip(texts, scorer.score(texts), strict=True):
        print(f"{s.label:8} neg={s.negative:.3f} neu={s.neutral:.3f} pos={s.positive:.3f}  {text[:80]}")
    return 0


def _stdin_lines() -> list[str]:
    """Non-blank lines of stdin; bytes that are not UTF-8 become U+FFFD, with a warning."""
    raw = sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        print(f"warning: stdin is not valid UTF-8 (first bad byte on line {line}); "
              "invalid bytes were replaced by U+FFFD", file=sys.stderr)  # fmt: skip
        text = raw.decode("utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def cmd_check_alerts(args: argparse.Namespace) -> int:
    from alerts.engine import AlertEngine
    from alerts.notifiers import notifiers_from_config
    from store.client import make_client

    config = _config(args)
    configure_logging("text", "WARNING")
    now = datetime.fromisoformat(args.at).astimezone(UTC) if args.at else datetime.now(UTC)
    if args.explain:
        return _explain_every_brand(args, config, now)
    engine = AlertEngine(
        config, make_client(config.elasticsearch), None, channels=notifiers_from_config(config)
    )
    if args.dry_run:
        from alerts.notifiers.slack_templates import build_message
        from alerts.notifiers.slack_text import render_blocks

        alerts = engine.dry_run(now)
        print("smallest visible negative wave per brand, at its current volume:")
        for brand, vis in engine.visibility(now).items():
            line = vis.describe() if vis is not None else "no counts yet: cannot tell"
            print(f"  {brand}: {line}")
        print()
        for alert in alerts:
            print("\n".join(render_blocks(build_message(alert)["blocks"])) + "\n")
        print(f"{len(alerts)} alert(s) would be sent (dry run: nothing sent, no state changed)")
        return 0
    from alerts.engine import CheckStopped

    try:
        sent = engine.check(now)
    except CheckStopped as exc:  # Elasticsearch stopped answering: one line, no traceback
        print(f"error: {exc}; {len(exc.sent)} alert(s) sent before it stopped", file=sys.stderr)
        return 1
    print(f"{len(sent)} alert(s) sent")
    return 0


def _explain_every_brand(args: argparse.Namespace, config: Config, now: datetime) -> int:
    """`check-alerts --explain`: `alerts explain` of every brand and enabled rule at `now`
    (the check's time): the same replay, nothing sent."""
    for n, brand in enumerate(config.brands):
        if n:
            print()
        args.brand, args.rule = brand.name, None
        _print_explained(args, config, now)
    return 0


def cmd_alerts_ack(args: argparse.Namespace) -> int:
    """Acknowledge an alert: its pending escalations are cancelled instead of sent."""
    from alerts.state import AlertStateStore, UnknownAlert
    from store.client import make_client

    config = _config(args)
    configure_logging("text", "WARNING")
    store = AlertStateStore(make_client(config.elasticsearch), config.elasticsearch.index_prefix)
    store.install()
    try:
        ack = store.acknowledge(args.alert_id, at=datetime.now(UTC), by=args.by)
    except UnknownAlert:
        print(f"alerts ack: no alert {args.alert_id!r} in the outbox (the id is in each "
              "message's footer)", file=sys.stderr)  # fmt: skip
        return 2
    by = f" by {ack.by}" if ack.by else ""
    print(f"alert {ack.alert_id} acknowledged at {ack.at.isoformat()}{by}")
    return 0


def _replay_setup(args: argparse.Namespace, config: Config | None = None) -> tuple[Config, object]:
    """The config and an Elasticsearch mention reader, for `alerts explain`/`backtest`."""
    from store.client import make_client
    from store.reader import ElasticsearchMentionReader
    from store.setup import alias_name

    if config is None:
        config = _config(args)
        configure_logging("text", "WARNING")
    if args.brand not in {b.name for b in config.brands}:
        command = getattr(args, "alerts_command", None) or args.command
        raise SystemExit(f"{command}: no brand {args.brand!r} in {args.config} "
                         f"(brands: {', '.join(b.name for b in config.brands)})")  # fmt: skip
    es = make_client(config.elasticsearch)
    return config, ElasticsearchMentionReader(es, alias_name(config.elasticsearch.index_prefix))


def _settings_with(config: Config, brand: str, pairs: list[str]) -> object:
    from alerts.replay import with_overrides

    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--set: expected name=value, got {pair!r}")
        overrides[name.strip()] = value.strip()
    try:
        return with_overrides(config.spike_settings(brand), overrides)
    except ValueError as exc:
        raise SystemExit(f"--set: {exc}") from None


def cmd_alerts_explain(args: argparse.Namespace) -> int:
    """Why the brand's rules did or did not alert at a time (`check-alerts --explain`
    says it for every brand)."""
    config = _config(args)
    configure_logging("text", "WARNING")
    at = _when(args.at, "--at") if args.at else datetime.now(UTC)
    return _print_explained(args, config, at.astimezone(UTC))


def _print_explained(args: argparse.Namespace, config: Config, at: datetime) -> int:
    """Print `alerts.replay.explain_all` of `args.brand` (of `args.rule` alone, if set)."""
    from alerts.replay import explain_all
    from alerts.rules import RULES, rules_for
    from alerts.state import AlertStateStore

    config, reader = _replay_setup(args, config)
    rules = rules_for(config, args.brand)
    if args.rule is not None:
        if args.rule not in RULES:
            raise SystemExit(f"--rule: no rule {args.rule!r} (rules: {', '.join(RULES)})")
        if not rules[args.rule].enabled:
            raise SystemExit(f"--rule: {args.rule} is not enabled for {args.brand} "
                             f"(alerts.rules.{args.rule}.enabled, competitors)")  # fmt: skip
        rules = {args.rule: rules[args.rule]}
    state = AlertStateStore(reader.es, config.elasticsearch.index_prefix)  # type: ignore[attr-defined]
    state.install()
    found = explain_all(config, reader, args.brand, at, rules, state)  # type: ignore[arg-type]
    print("\n".join(line for item in found for line in item.lines()))
    return 0


def cmd_alerts_backtest(args: argparse.Namespace) -> int:
    """The alerts a period would have produced, with the current or changed settings."""
    from alerts.replay import backtest

    config, reader = _replay_setup(args)
    settings = _settings_with(config, args.brand, args.set or [])
    start, end = _when(args.start, "--from"), _when(args.end, "--to")
    try:
        found = backtest(config, reader, args.brand, start.astimezone(UTC), end.astimezone(UTC),
                         settings, args.rule)  # type: ignore[arg-type]  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"{args.command}: {exc}") from None
    changed = f" with {', '.join(args.set)}" if args.set else ""
    which = ", ".join(args.rule) if args.rule else "every enabled rule"
    print(f"{args.brand}, {which}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}{changed}:")
    for item in found:
        print("  " + item.line())
    started = sum(1 for item in found if item.alert.kind == "started")
    print(f"{len(found)} alert(s) would have been sent ({started} new wave(s)); nothing was sent")
    return 0


def cmd_alerts_snooze(args: argparse.Namespace) -> int:
    """Hold back a brand's alerts (of one rule, or all) for a while."""
    from alerts.state import AlertStateStore
    from brandpulse.units import parse_duration
    from store.client import make_client

    config = _config(args)
    configure_logging("text", "WARNING")
    if args.brand not in {b.name for b in config.brands}:
        raise SystemExit(f"alerts snooze: no brand {args.brand!r} in {args.config}")
    try:
        length = parse_duration(args.duration)
    except ValueError as exc:
        raise SystemExit(f"alerts snooze --for: {exc}") from None
    store = AlertStateStore(make_client(config.elasticsearch), config.elasticsearch.index_prefix)
    store.install()
    now = datetime.now(UTC)
    snooze = store.snooze(args.brand, args.rule, until=now + length, at=now, by=args.by)
    what = f"{args.brand}/{args.rule or 'all rules'}"
    if length.total_seconds() <= 0:
        print(f"{what}: snooze ended")
    else:
        print(f"{what} snoozed until {snooze.until.isoformat()}: its alerts are not sent")
    return 0


def cmd_alerts_precision(args: argparse.Namespace) -> int:
    """Per brand and rule: alerts raised, marked not a real issue, precision."""
    from alerts.state import AlertStateStore
    from store.client import make_client

    config = _config(args)
    configure_logging("text", "WARNING")
    since = _when(args.since, "--since") if args.since else None
    store = AlertStateStore(make_client(config.elasticsearch), config.elasticsearch.index_prefix)
    store.install()
    rows = store.precision(since)
    print(f"alert precision{' since ' + since.isoformat() if since else ''} "
          "(alerts marked 'Not a real issue' / all alerts):")  # fmt: skip
    for row in rows:
        print(f"  {row.brand:<20} {row.rule:<15} {row.false_alarms}/{row.alerts} false, "
              f"precision {row.precision:.0%}")  # fmt: skip
    if not rows:
        print("  no alerts in the outbox for that period")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from daemon.rescore import rescore
    from nlp.enrich import brand_queries
    from nlp.scorer import SentimentScorer
    from store.client import make_client
    from store.writer import BulkWriter

    config = _config(args)
    nlp = config.nlp.model_copy(update={"model": args.model}) if args.model else config.nlp
    client = make_client(config.elasticsearch)
    scorer = SentimentScorer.from_config(nlp)
    from store.rollup import counts_rollup

    with BulkWriter(client, config.elasticsearch) as writer:
        counts_rollup(config, client, writer)
        n = rescore(
            client, config.elasticsearch.index_prefix, scorer, writer,
            only_unscored=args.only_unscored, brands=brand_queries(config.brands),
        )  # fmt: skip
    print(f"re-scored {n} mention(s) with {scorer.model_id}")
    return 0


def cmd_rebuild_counts(args: argparse.Namespace) -> int:
    """Recompute the hourly counts index from the mentions (all hours, or --since/--until)."""
    from store.client import make_client
    from store.rollup import CountsRollup

    config = _config(args)
    since = _when(args.since, "--since") if args.since else None
    until = _when(args.until, "--until") if args.until else None
    rollup = CountsRollup(make_client(config.elasticsearch), config.elasticsearch.index_prefix)
    n = rollup.rebuild(since, until)
    if rollup.pending():
        # hours other writers kept rewriting through every round: one more try here, since
        # this one-off process has no "next batch" to retry them with
        rollup.after_write(())
    print(f"counts: {n} (brand, hour) document(s) recomputed in {rollup.index}")
    if rollup.pending():
        print(f"error: {rollup.pending()} hour(s) still conflicting with other writers or "
              "failing; run rebuild-counts again", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from store.client import make_client
    from store.retention import apply_retention, ilm_available

    config = _config(args)
    if config.elasticsearch.retention is None:
        print("elasticsearch.retention is not set in the config: nothing to apply "
              "(docs/elasticsearch.md, Retention)", file=sys.stderr)  # fmt: skip
        return 2
    now = _when(args.at, "--at") if args.at else datetime.now(UTC)
    client = make_client(config.elasticsearch)
    result = apply_retention(client, config.elasticsearch, now, dry_run=args.dry_run)
    for line in result.lines():
        print(line)
    if ilm_available(client):
        print("note: this cluster has ILM; an ILM policy can do this instead "
              "(docs/elasticsearch.md, Retention)")  # fmt: skip
    return 0


def _when(value: str, name: str) -> datetime:
    """An ISO date or time; a bare date is its UTC midnight, a naive time is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"{name}: not an ISO date or time: {value!r} (e.g. 2026-11-09)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def cmd_report(args: argparse.Namespace) -> int:
    from reports.period import PERIOD_LENGTHS, Period
    from reports.summary import brand_insight, to_json, to_text
    from store.client import make_client
    from store.setup import alias_name

    out_dir = None
    if args.slack and not args.out:
        print("report --slack needs --out DIR (the summary names the files written)",
              file=sys.stderr)
        return 2
    if args.out:
        from reports.publish import output_dir

        out_dir = output_dir(args.out)  # ReportOutputError (a RuntimeError) names the problem
    config = _config(args)
    configure_logging("text", "WARNING")
    length = PERIOD_LENGTHS[args.period]
    start = _when(args.start, "--from") if args.start else None
    end = _when(args.end, "--to") if args.end else None
    if start and end:
        period = Period(start, end)
    elif start:
        period = Period(start, start + length)
    elif end:
        period = Period.ending(args.period, end)
    else:
        period = Period.last_complete(args.period, datetime.now(UTC))
    own = [b.name for b in config.brands if b.own]
    brands = args.brand or own
    unknown = [b for b in brands if b not in {c.name for c in config.brands}]
    if unknown:
        print(f"--brand: {', '.join(unknown)} not in the config (brands: "
              f"{', '.join(c.name for c in config.brands)})", file=sys.stderr)
        return 2
    client = make_client(config.elasticsearch)
    index = alias_name(config.elasticsearch.index_prefix)
    if out_dir is not None:
        return _write_reports(args, config, client, index, brands, period, out_dir)
    insights = [
        brand_insight(client, config, index, b, period,
                      exclude_duplicates=not args.include_duplicates, themes=not args.no_themes)
        for b in brands
    ]
    print(to_json(insights) if args.format == "json" else "\n\n".join(map(to_text, insights)))
    return 0


def _write_reports(args: argparse.Namespace, config: Config, client: object, index: str,
                   brands: list[str], period: object, out_dir: Path) -> int:
    """`report --out DIR`: the HTML and PDF of each brand, paths printed one per line."""
    from reports.publish import publish_report

    post = None
    if args.slack:
        from reports.slack_message import slack_poster

        post = slack_poster(config.slack)
    for brand in brands:
        done = publish_report(client, config, index, brand, period,  # type: ignore[arg-type]
                              out_dir, post=post, announce=print, language=args.language,
                              exclude_duplicates=not args.include_duplicates,
                              themes=not args.no_themes)
        if done.posted is not None:
            print(f"slack: posted to {done.posted.channel} (ts {done.posted.ts}), "
                  f"{len(done.posted.file_ids)} chart(s) uploaded")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return run_demo(workdir=Path(args.workdir), burst_after=args.burst_after, keep=args.keep)


BACKTEST_HELP = ("replay a period's alert checks with the current or changed settings and list "
                 "the alerts they would have sent (nothing is sent)")


def _backtest_arguments(p: argparse.ArgumentParser, config: bool = True) -> None:
    p.add_argument("--from", dest="start", required=True, help="start (ISO date or time, UTC unless given)")
    p.add_argument("--to", dest="end", required=True, help="end, exclusive (ISO date or time)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="a changed alerts.spike setting of the negative spike rule, e.g. "
                   "--set spike.false_alerts_per_month=5 (the 'spike.' is optional; repeatable)")
    p.add_argument("--rule", action="append",
                   help="only this rule (repeatable; default: every enabled one)")
    if config:
        p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brandpulse",
        description="BrandPulse: brand mentions crawled, scored, indexed in Elasticsearch, "
        "negative spikes alerted on Slack.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<subcommand>")

    def add(name: str, func: object, help_text: str, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "run the daemon: crawl, score, index, detect and notify on schedule")
    p.add_argument("--role", default="all", metavar="ROLE",
                   help="all (default: the whole daemon, no Redis needed), coordinator (the "
                   "leader schedules crawl jobs on Redis), crawler (crawls, scores and indexes "
                   "the jobs; with redis.scoring: scorer it hands them to scorers), scorer "
                   "(scores and indexes what crawlers handed over) or alerter (the leader "
                   "checks alerts, sends them, writes reports) (docs/deployment.md)")
    p = add("validate", cmd_validate, "validate the configuration and say what it sets up")
    p.add_argument("--check-channel", action="store_true",
                   help="also ask the alert channel whether its credentials work (posts nothing "
                   "where the channel allows)")
    p = add("setup", cmd_setup, "install Elasticsearch templates and import the Kibana objects")
    p.add_argument("--elasticsearch", action="store_true", help="only Elasticsearch")
    p.add_argument("--kibana", action="store_true", help="only Kibana")
    p = add("rebuild-counts", cmd_rebuild_counts,
            "recompute the hourly counts index (alerts.counts_source: rollup) from the mentions")
    p.add_argument("--since", help="first hour to recompute (ISO 8601, UTC); default: all")
    p.add_argument("--until", help="recompute hours before this (ISO 8601, UTC); default: all")
    p = add("crawl", cmd_crawl, "crawl one source once and show, save or index what it found")
    p.add_argument("source", help="the source's name in the config")
    p.add_argument("--no-score", action="store_true", help="skip sentiment scoring")
    p.add_argument("--out", help="write the mentions as JSON lines to this file")
    p.add_argument("--index", action="store_true", help="write the mentions to Elasticsearch")
    p.add_argument("--commit", action="store_true", help="advance the source's cursor afterwards")
    p.add_argument("--show", type=int, default=20, help="how many mentions to print")
    p = add("score", cmd_score, "score texts (arguments, or one per line on stdin)")
    p.add_argument("text", nargs="*")
    p.add_argument("--model", help="'default', a local checkpoint path or a Hugging Face name")
    p = add("check-alerts", cmd_check_alerts, "run the alert check once")
    p.add_argument("--dry-run", action="store_true", help="print the Slack messages, send nothing")
    p.add_argument("--explain", action="store_true",
                   help="per brand and enabled rule: observed, expected, the line and why it did "
                   "or did not fire (warm-up, below the line, cooldown, snoozed); sends nothing")
    p.add_argument("--at", help="pretend it is this time (ISO 8601), e.g. to replay a past wave")
    alerts = sub.add_parser("alerts", help="act on alerts", description="act on alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="<command>")
    p = alerts_sub.add_parser("ack", help="acknowledge an alert: no escalation for it",
                              description="acknowledge an alert: its escalations are not sent")
    p.add_argument("alert_id", help="the alert id (from the message footer)")
    p.add_argument("--by", help="who acknowledges (recorded with it)")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.set_defaults(func=cmd_alerts_ack)
    p = alerts_sub.add_parser("snooze", help="hold back a brand's alerts for a while",
                              description="alerts of the brand (and rule) are not sent until "
                              "the time is up (--for 0 ends a snooze)")  # fmt: skip
    p.add_argument("brand")
    p.add_argument("--rule", choices=["negative_spike", "high_reach"], help="only this rule (default: all)")
    p.add_argument("--for", dest="duration", required=True, help="how long, e.g. 2h, 30m, 1d")
    p.add_argument("--by", help="who snoozes (recorded with it)")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.set_defaults(func=cmd_alerts_snooze)
    p = alerts_sub.add_parser("precision", help="per brand and rule: alerts marked not a real issue",
                              description="precision per brand and rule: alerts marked "
                              "'Not a real issue' (Slack button) out of all alerts")  # fmt: skip
    p.add_argument("--since", help="only alerts raised since (ISO date or time, UTC unless given)")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.set_defaults(func=cmd_alerts_precision)
    p = alerts_sub.add_parser("explain", help="why the rules did or did not fire at a time",
                              description="replay the brand's checks up to that time and say, "
                              "per enabled rule, why it did or did not alert")  # fmt: skip
    p.add_argument("brand")
    p.add_argument("--at", help="the check's time (ISO 8601, UTC unless given; default: now)")
    p.add_argument("--rule", help="only this rule (default: every enabled one)")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.set_defaults(func=cmd_alerts_explain)
    p = alerts_sub.add_parser("backtest", help="the alerts a past period would have sent",
                              description=BACKTEST_HELP)
    p.add_argument("brand")
    _backtest_arguments(p)
    p.set_defaults(func=cmd_alerts_backtest)
    # The spelling: `backtest --brand B --from ... --to ...`, the same command.
    p = add("backtest", cmd_alerts_backtest, BACKTEST_HELP)
    p.add_argument("--brand", required=True, help="the brand whose checks are replayed")
    _backtest_arguments(p, config=False)
    p = add("rescore", cmd_rescore, "score stored mentions again (e.g. with a new model)")
    p.add_argument("--model", help="the new model: a local path or a Hugging Face name")
    p.add_argument("--only-unscored", action="store_true", help="only mentions with no sentiment")
    p = add("retention", cmd_retention, "delete or close mention indices older than "
            "elasticsearch.retention.keep, and those hours of the hourly counts index "
            "(the daemon does it daily when configured)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted or closed, change nothing")
    p.add_argument("--at", help="pretend it is this time (ISO 8601, UTC unless given)")
    p = add("report", cmd_report, "share of voice, sentiment trend and complaint themes of a period")
    p.add_argument("--period", choices=["day", "week"], default="week",
                   help="the last full day or 7 days before today (UTC), unless --from/--to")
    p.add_argument("--brand", action="append",
                   help="a brand to report on (repeatable; default: every own brand)")
    p.add_argument("--from", dest="start", help="start (ISO date or time, UTC unless given)")
    p.add_argument("--to", dest="end", help="end, exclusive (ISO date or time)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--include-duplicates", action="store_true",
                   help="count reposts and near-copies (duplicate_of) too")
    p.add_argument("--no-themes", action="store_true", help="share of voice and trend only")
    p.add_argument("--out", help="write an HTML and a PDF report per brand into this directory")
    p.add_argument("--slack", action="store_true",
                   help="with --out: also post a summary and the charts to slack.channel")
    p.add_argument("--language", choices=["en", "zh"],
                   help="language of the report's labels with --out (default: reports.language)")
    p = add("demo", cmd_demo, "the whole pipeline on this machine, ending in a Slack alert", config=False)
    p.add_argument("--workdir", default="var/demo", help="where the demo keeps its data")
    p.add_argument("--burst-after", type=float, default=20.0,
                   help="seconds after the first crawl when the negative burst appears")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="leave Elasticsearch running at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ES_ERRORS as exc:
        # refused, timed out, TLS not trusted, 401, 403, missing index: one line that
        # names the host and what to do, not a traceback
        config = getattr(args, "loaded_config", None)
        hosts = config.elasticsearch.hosts if config is not None else []
        print(f"error: {describe_es_error(exc, hosts)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        # Our own errors (model load, Kibana import, spool lock, local node) say what
        # is wrong in their message; a traceback would only bury it.
        if type(exc).__module__.split(".")[0] in {"nlp", "kibana", "store", "esnode", "alerts", "reports"}:
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        return 130
