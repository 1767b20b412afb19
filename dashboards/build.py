#!/usr/bin/env python3
"""Builds the Grafana dashboards in this folder from one description, so that every panel and
query follows the same conventions (datasource variable, job/tenant selectors, $__rate_interval,
units, unique ids, stable uids).

    python3 dashboards/build.py          # rewrite m365-posture-*.json
    python3 dashboards/build.py --check  # exit 1 if the committed JSON differs from the build

Edit this file, not the JSON; .ci/ops-checks.sh fails when they disagree.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39  # Grafana 10.4 and later load it (and migrate forward)
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance", tenant=~"$tenant"'  # tenant-scoped metrics
JOB = 'job=~"$job", instance=~"$instance"'  # metrics without a tenant label (sinks, process)
# The catalogue (title, reference URL) of the selected daemons, one series per finding.
INFO = 'max by (finding, title, reference) (m365_posture_finding_info{job=~"$job", instance=~"$instance"})'
SEVERITY_COLORS = (("critical", "dark-red"), ("high", "red"), ("medium", "orange"), ("low", "yellow"))


def variables():
    """datasource, job and tenant template variables, as dashboard-linter expects them."""
    def query_var(name, label, query, multi):
        return {
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": multi,
            **({"allValue": ".+"} if multi else {}),
            "current": {"text": "All", "value": "$__all"} if multi else {"text": "", "value": ""},
        }
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {"text": "default", "value": "default"}, "refresh": 1, "regex": ""},
        query_var("job", "Job", "label_values(m365_posture_build_info, job)", False),
        query_var("instance", "Instance", 'label_values(m365_posture_build_info{job=~"$job"}, instance)', True),
        query_var("tenant", "Tenant", f'label_values(m365_posture_scan_success{{{JOB}}}, tenant)', True),
    ]


def target(expr, legend="__auto", ref="A", instant=False, table=False):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend,
         "range": not instant, "instant": instant, "editorMode": "code"}
    if table:
        t["format"] = "table"
    return t


def panel(kind, title, description, unit, targets, pos, **extra):
    defaults = {"unit": unit, **extra.pop("defaults", {})}
    return {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": dict(zip("xywh", pos)),
        "fieldConfig": {"defaults": defaults, "overrides": extra.pop("overrides", [])},
        "options": extra.pop("options", {}), "targets": targets, **extra,
    }


def thresholds(*steps):
    """steps: color, value, color, value, color ... (first step has no value)."""
    out = [{"color": steps[0], "value": None}]
    out += [{"color": c, "value": v} for v, c in zip(steps[1::2], steps[2::2])]
    return {"mode": "absolute", "steps": out}


def stat(title, description, unit, targets, pos, steps=("green",), text_mode="value_and_name", **extra):
    return panel("stat", title, description, unit, targets, pos,
                 defaults={"thresholds": thresholds(*steps), "color": {"mode": "thresholds"},
                           **extra.pop("defaults", {})},
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background", "graphMode": "none", "textMode": text_mode},
                 **extra)


def timeseries(title, description, unit, targets, pos, bars=False, stack=False, **extra):
    custom = {"drawStyle": "bars" if bars else "line", "fillOpacity": 80 if bars else 10,
              "lineWidth": 1, "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return panel("timeseries", title, description, unit, targets, pos,
                 defaults={"custom": custom, "min": 0, "color": {"mode": "palette-classic"}},
                 options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                                     "calcs": ["lastNotNull", "max"]},
                          "tooltip": {"mode": "multi", "sort": "desc"}},
                 **extra)


def table(title, description, expr, columns, pos, value_name, overrides=()):
    """An instant table of one aggregation; rows with value 0 are hidden by a transformation."""
    names = {c: c.replace("_", " ").capitalize() for c in columns}
    names["Value"] = value_name
    return panel(
        "table", title, description, "short", [target(expr, instant=True, table=True)], pos,
        overrides=list(overrides),
        options={"showHeader": True, "sortBy": [{"displayName": value_name, "desc": True}],
                 "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
        transformations=[
            {"id": "filterByValue", "options": {
                "type": "exclude", "match": "any",
                "filters": [{"fieldName": "Value", "config": {"id": "lowerOrEqual", "options": {"value": 0}}}]}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "indexByName": {c: i for i, c in enumerate([*columns, "Value"])},
                "renameByName": names}},
        ])


def row(title, y):
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def dashboard(uid, title, description, panels):
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["m365-posture"], "timezone": "browser", "editable": True, "graphTooltip": 1,
        "refresh": "1m", "time": {"from": "now-7d", "to": "now"}, "schemaVersion": SCHEMA_VERSION,
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "m365-posture", "type": "dashboards", "tags": ["m365-posture"], "asDropdown": False,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": variables()},
        "panels": panels,
    }


def overview():
    f = f"m365_posture_findings{{{SEL}}}"
    sev_colors = [
        {"matcher": {"id": "byName", "options": s},
         "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]}
        for s, c in SEVERITY_COLORS]
    # Bar gauge series are "<category> / <severity>": coloured by the severity, not the count.
    sev_suffix_colors = [
        {"matcher": {"id": "byRegexp", "options": f".* / {s}$"},
         "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]}
        for s, c in SEVERITY_COLORS]
    # Each finding's row links to its remediation page (the info metric's reference label).
    remediation_link = [{"matcher": {"id": "byName", "options": "Title"}, "properties": [
        {"id": "links", "value": [{"title": "Remediation: ${__data.fields.Title}",
                                   "url": "${__data.fields.Reference}", "targetBlank": True}]}]},
        {"matcher": {"id": "byName", "options": "Reference"},
         "properties": [{"id": "custom.hidden", "value": True}]}]
    return dashboard("m365-posture-overview", "m365-posture / Overview",
                     "Microsoft 365 posture findings per tenant: what is open now, how it changed, new and resolved.", [
        row("Now", 0),
        stat("Open findings by severity",
             "Affected objects per severity in the last successful scan of the selected tenants (cached between scans).",
             "short", [target(f"sum by (severity) ({f})", "{{severity}}", instant=True)], (0, 1, 10, 5),
             overrides=sev_colors),
        stat("High and critical findings", "Open findings with severity high or critical.", "short",
             [target(f'sum(m365_posture_findings{{{SEL}, severity=~"high|critical"}})', "high+critical", instant=True)],
             (10, 1, 5, 5), steps=("green", 1, "red")),
        stat("New findings (24h)", "Finding instances that appeared in the last 24 hours (events written).", "short",
             [target(f'round(sum(increase(m365_posture_events_total{{{SEL}, action="new"}}[24h])))', "new",
                     instant=True)],
             (15, 1, 3, 5), steps=("green", 1, "orange"), defaults={"decimals": 0}),
        stat("Resolved findings (24h)", "Finding instances resolved in the last 24 hours.", "short",
             [target(f'round(sum(increase(m365_posture_events_total{{{SEL}, action="resolved"}}[24h])))',
                     "resolved", instant=True)],
             (18, 1, 3, 5), steps=("blue",), defaults={"decimals": 0}),
        stat("Suppressed findings", "Open instances hidden by suppressions in the config (not in the totals).",
             "short", [target(f"sum(m365_posture_findings_suppressed{{{SEL}}})", "suppressed", instant=True)],
             (21, 1, 3, 5), steps=("text",)),
        row("By category and severity", 6),
        panel("bargauge", "Findings by category and severity",
              "Open findings of the selected tenants, summed per category and severity.", "short",
              [target(f"sum by (category, severity) ({f})", "{{category}} / {{severity}}", instant=True)],
              (0, 7, 12, 10),
              defaults={"min": 0, "decimals": 0, "color": {"mode": "fixed", "fixedColor": "blue"},
                        "thresholds": thresholds("green")},
              overrides=sev_suffix_colors,
              options={"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        table("Findings per tenant, category and severity",
              "Open findings per tenant, category and severity (rows with none are hidden).",
              f"sum by (tenant, category, severity) ({f})", ["tenant", "category", "severity"], (12, 7, 12, 10),
              "Findings"),
        row("Change over time", 17),
        timeseries("Findings by severity", "Open findings over time, per severity.", "short",
                   [target(f"sum by (severity) ({f})", "{{severity}}")], (0, 18, 12, 9), stack=True,
                   overrides=sev_colors),
        timeseries("Findings by category", "Open findings over time, per category.", "short",
                   [target(f"sum by (category) ({f})", "{{category}}")], (12, 18, 12, 9), stack=True),
        timeseries("Findings by tenant", "Open findings over time, per tenant.", "short",
                   [target(f"sum by (tenant) ({f})", "{{tenant}}")], (0, 27, 12, 9)),
        timeseries("New and resolved per day", "Finding events written per day: new (appeared) and resolved.",
                   "short", [target(f"round(sum by (action) (increase(m365_posture_events_total{{{SEL}}}"
                                    "[$__interval])))", "{{action}}")],
                   (12, 27, 12, 9), bars=True, interval="1d",
                   overrides=[{"matcher": {"id": "byName", "options": n},
                               "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]}
                              for n, c in (("new", "red"), ("resolved", "green"))]),
        row("Details", 36),
        table("Top findings", "The findings with the most affected objects, with their titles; a title links to "
              "the remediation page (m365_posture_finding_info).",
              f"topk(20, sum by (tenant, finding, category, severity) ({f})) * on (finding) group_left (title, "
              f"reference) {INFO}",
              ["tenant", "title", "finding", "category", "severity", "reference"], (0, 37, 14, 12), "Objects",
              overrides=remediation_link),
        table("Suppressed findings", "Findings hidden by suppressions, with the number of suppressed objects.",
              f"sum by (tenant, finding, category, severity) (m365_posture_findings_suppressed{{{SEL}}})",
              ["tenant", "finding", "category", "severity"], (14, 37, 10, 12), "Suppressed"),
    ])


def agent_health():
    ok_map = [{"type": "value", "options": {"0": {"text": "failed", "color": "red", "index": 0},
                                            "1": {"text": "ok", "color": "green", "index": 1}}}]
    return dashboard("m365-posture-agent-health", "m365-posture / Agent health",
                     "Is the m365-posture daemon scanning, talking to Graph and delivering its events?", [
        row("Scans", 0),
        stat("Last scan", "Whether the last scan attempt of each tenant succeeded (m365_posture_scan_success).",
             "none", [target(f"m365_posture_scan_success{{{SEL}}}", "{{tenant}}", instant=True)], (0, 1, 8, 5),
             steps=("red", 1, "green"), defaults={"mappings": ok_map}),
        stat("Time since last successful scan", "Age of each tenant's last successful scan.", "s",
             [target(f"time() - m365_posture_last_success_timestamp_seconds{{{SEL}}}", "{{tenant}}", instant=True)],
             (8, 1, 8, 5), steps=("green", 43200, "orange", 86400, "red")),
        stat("Checks not evaluated", "Checks that errored or were skipped in the last scan (partial scans).",
             "short", [target(f"sum by (tenant) (1 - m365_posture_check_success{{{SEL}}})", "{{tenant}}",
                              instant=True)],
             (16, 1, 8, 5), steps=("green", 1, "orange")),
        panel("state-timeline", "Scan success over time", "1 = the last scan attempt succeeded, 0 = it failed.",
              "none", [target(f"m365_posture_scan_success{{{SEL}}}", "{{tenant}}")], (0, 6, 12, 7),
              defaults={"mappings": ok_map, "thresholds": thresholds("red", 1, "green"),
                        "color": {"mode": "thresholds"}},
              options={"showValue": "never", "mergeValues": True, "rowHeight": 0.9,
                       "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False}}),
        timeseries("Scan duration", "Duration of the last scan of each tenant.", "s",
                   [target(f"m365_posture_scan_duration_seconds{{{SEL}}}", "{{tenant}}")], (12, 6, 12, 7)),
        timeseries("Scans by status", "Scans finished per interval: ok, partial (some checks not evaluated), failed.",
                   "short", [target(f"sum by (tenant, status) (increase(m365_posture_scans_total{{{SEL}}}"
                                    f"[$__rate_interval]))", "{{tenant}} {{status}}")],
                   (0, 13, 12, 7), bars=True, stack=True),
        stat("Credential expires in", "Time until the client certificate (or secret) expires, where the daemon knows it.", "s",
             [target(f"m365_posture_credential_expiry_timestamp_seconds{{{SEL}}} - time()", "{{tenant}}",
                     instant=True)],
             (12, 13, 12, 7), steps=("red", 14 * 86400, "orange", 30 * 86400, "green")),
        row("Microsoft Graph", 20),
        timeseries("Graph requests by status code", "Requests to Microsoft Graph per second, by HTTP status.",
                   "reqps", [target(f"sum by (code) (rate(m365_posture_graph_requests_total{{{SEL}}}"
                                    f"[$__rate_interval]))", "{{code}}")], (0, 21, 12, 8), stack=True),
        timeseries("Graph throttling", "Throttled Graph responses (429/503 with Retry-After) per second, per tenant.",
                   "reqps", [target(f"sum by (tenant) (rate(m365_posture_graph_throttled_total{{{SEL}}}"
                                    f"[$__rate_interval]))", "{{tenant}}")], (12, 21, 12, 8)),
        row("Event delivery", 29),
        timeseries("Events delivered and failed", "Events sent to each sink per second, and failed attempts.",
                   "cps", [
                       target(f"sum by (sink) (rate(m365_posture_events_delivered_total{{{JOB}}}[$__rate_interval]))",
                              "{{sink}} delivered", "A"),
                       target(f"sum by (sink) (rate(m365_posture_events_failed_total{{{JOB}}}[$__rate_interval]))",
                              "{{sink}} failed", "B")],
                   (0, 30, 10, 8)),
        timeseries("Outbox pending", "Events waiting in the outbox for delivery, per sink.", "short",
                   [target(f"sum by (sink) (m365_posture_outbox_events{{{JOB}}})", "{{sink}}")], (10, 30, 8, 8)),
        stat("Outbox full", "Scans not committed because the outbox was full, in the selected time range.", "short",
             [target(f"sum(increase(m365_posture_outbox_full_total{{{JOB}}}[$__range]))", "scans", instant=True)],
             (18, 30, 6, 8), steps=("green", 1, "red"), defaults={"decimals": 0}),
        row("Process", 38),
        stat("Scrape target up", "Prometheus reached the daemon's /metrics endpoint.", "none",
             [target(f"up{{{JOB}}}", "{{instance}}", instant=True)], (0, 39, 6, 6),
             steps=("red", 1, "green"), defaults={"mappings": [{"type": "value", "options": {
                 "0": {"text": "down", "index": 0}, "1": {"text": "up", "index": 1}}}]}),
        stat("Version", "Running version (m365_posture_build_info).", "none",
             [target(f"m365_posture_build_info{{{JOB}}}", "{{version}}", instant=True)], (6, 39, 6, 6),
             steps=("blue",), text_mode="name"),
        timeseries("Memory", "Resident memory of the daemon.", "bytes",
                   [target(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}")], (12, 39, 6, 6)),
        timeseries("CPU", "CPU used by the daemon (cores).", "short",
                   [target(f"rate(process_cpu_seconds_total{{{JOB}}}[$__rate_interval])", "{{instance}}")],
                   (18, 39, 6, 6)),
        row("Per-user coverage", 45),
        stat("Oldest per-user data", "Age of the oldest per-user data (authentication methods, calendar "
             "permissions, inbox rules) the checks evaluate, per tenant and section. The sweep re-reads "
             "data older than [scan] per_user_max_age (7 days by default); orange past that, red past the "
             "M365PosturePerUserDataStale alert's bound (that age plus a day: 8 days with the default; "
             "the thresholds here assume the default).", "s",
             [target(f"time() - min by (tenant, section) "
                     f"(m365_posture_per_user_oldest_read_timestamp_seconds{{{SEL}}})",
                     "{{tenant}} {{section}}", instant=True)],
             (0, 46, 8, 7), steps=("green", 7 * 86400, "orange", 8 * 86400, "red")),
        timeseries("Sweep progress", "Users of each per-user section by state: current (read within "
                   "per_user_max_age), pending (due, not read yet), failed (the last read failed).", "short",
                   [target(f"sum by (tenant, section, state) (m365_posture_sweep_users{{{SEL}}})",
                           "{{tenant}} {{section}} {{state}}")], (8, 46, 8, 7)),
        timeseries("Graph pools", "Requests, 429s and limit warnings (x-ms-throttle-limit-percentage) per "
                   "second, per throttling pool (directory, exchange, reports).", "reqps", [
                       target(f"sum by (pool) (rate(m365_posture_graph_pool_requests_total{{{SEL}}}"
                              f"[$__rate_interval]))", "{{pool}} requests", "A"),
                       target(f"sum by (pool) (rate(m365_posture_graph_pool_throttled_total{{{SEL}}}"
                              f"[$__rate_interval]))", "{{pool}} throttled", "B"),
                       target(f"sum by (pool) (rate(m365_posture_graph_pool_slowed_total{{{SEL}}}"
                              f"[$__rate_interval]))", "{{pool}} slowed", "C")],
                   (16, 46, 8, 7)),
    ])


def render(d):
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    outputs = {
        "m365-posture-overview.json": render(overview()),
        "m365-posture-agent-health.json": render(agent_health()),
    }
    stale = []
    for name, text in outputs.items():
        path = HERE / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.name}")
    if stale:
        print(f"out of date (run python3 dashboards/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
