#!/usr/bin/env python3
"""Checks for the Grafana dashboards (used by .ci/ops-checks.sh and .ci/dashboards-live.sh).

    dashboards.py schema SCHEMA.json DASH.json...   validate against the JSON schema from @grafana/schema
    dashboards.py lint DASH.json...                 project conventions (dashboard-linter's rules, by hand)
    dashboards.py rules DASH.json...                every query as a recording rule, for `promtool check rules`
    dashboards.py live PROM_URL DASH.json... [--allow-empty TITLE]... [--rate-interval 1m] [--range 1h]
                                                    run every query against Prometheus; fail on no data
Python standard library only, except `schema` (needs jsonschema).
"""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DS = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "m365-posture-overview.json": "m365-posture-overview",
    "m365-posture-agent-health.json": "m365-posture-agent-health",
}
# Metrics the daemon exports (CONTRACT.md section 5 and the ops task); `tenant` says whether the
# metric carries a tenant label, so its selectors must filter on $tenant.
METRICS = {
    "m365_posture_findings": True, "m365_posture_findings_suppressed": True,
    "m365_posture_scan_success": True, "m365_posture_last_success_timestamp_seconds": True,
    "m365_posture_scan_duration_seconds": True, "m365_posture_scans_total": True,
    "m365_posture_check_success": True, "m365_posture_graph_requests_total": True,
    "m365_posture_graph_throttled_total": True, "m365_posture_events_total": True,
    "m365_posture_events_delivered_total": False, "m365_posture_events_failed_total": False,
    "m365_posture_outbox_events": False, "m365_posture_outbox_full_total": False,
    "m365_posture_credential_expiry_timestamp_seconds": True, "m365_posture_build_info": False,
    "m365_posture_finding_info": False,
    "m365_posture_sweep_users": True, "m365_posture_per_user_oldest_read_timestamp_seconds": True,
    "m365_posture_graph_pool_requests_total": True, "m365_posture_graph_pool_throttled_total": True,
    "m365_posture_graph_pool_slowed_total": True,
    "process_resident_memory_bytes": False, "process_cpu_seconds_total": False, "up": False,
}
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def targets(dash):
    """(panel, target) for every query target of every panel, rows included."""
    for p in walk(dash.get("panels", [])):
        for t in p.get("targets", []):
            yield p, t


def substitute(expr, values):
    """Replaces $var, ${var} and ${var:format} with values[var]; unknown names are an error."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for variable ${name} in {expr!r}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def variable_query(var):
    q = var.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


# ---------------------------------------------------------------------------------------------

def cmd_schema(args):
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match
    schema = load(args.schema)
    # Grafana writes apiVersion into datasource refs; the TS type lacks it (see the reference note).
    schema["definitions"]["DataSourceRef"]["properties"]["apiVersion"] = {"type": "string"}
    validator = Draft7Validator(schema)
    bad = 0
    for path in args.dashboards:
        dash = {k: v for k, v in load(path).items() if not k.startswith("__")}
        errors = list(validator.iter_errors(dash))
        for e in errors:
            leaf = best_match(e.context) if e.context else e
            print(f"{path}: /{'/'.join(map(str, leaf.absolute_path))}: {leaf.message[:300]}")
        print(f"{path}: {'FAIL' if errors else 'OK'} (schema)")
        bad += bool(errors)
    return 1 if bad else 0


def lint_variables(dash, problems):
    tvars = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = tvars.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus" or ds.get("label") != "Data source":
        problems.append("templating: needs variable `datasource` (type datasource, query prometheus, "
                        "label 'Data source')")
    for name in ("job", "instance", "tenant"):
        v = tvars.get(name, {})
        if v.get("type") != "query" or v.get("datasource") != DS or not LABEL_VALUES.match(variable_query(v)):
            problems.append(f"templating: needs query variable `{name}` using label_values() on ${{datasource}}")
    if not tvars.get("tenant", {}).get("includeAll") or tvars.get("tenant", {}).get("allValue") != ".+":
        problems.append("templating: `tenant` must offer All with allValue '.+'")


def lint_expr(title, expr, problems):
    for fn, rng in re.findall(r"\b(rate|irate|increase)\s*\(.*?\[([^\]]+)\]", expr):
        if fn in ("rate", "irate") and rng != "$__rate_interval":
            problems.append(f"{title}: {fn}() must use [$__rate_interval], not [{rng}]")
    for name, sel in re.findall(r"\b([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?", expr):
        if not (name.startswith("m365_posture_") or name.startswith("process_") or name == "up"):
            continue
        if name not in METRICS:
            problems.append(f"{title}: unknown metric {name}")
            continue
        if 'job=~"$job"' not in sel:
            problems.append(f'{title}: {name} must be filtered with job=~"$job"')
        if METRICS[name] and 'tenant=~"$tenant"' not in sel:
            problems.append(f'{title}: {name} must be filtered with tenant=~"$tenant"')


def lint_panels(dash, problems):
    ids = set()
    for p in walk(dash.get("panels", [])):
        title = p.get("title") or f"panel id {p.get('id')}"
        if p.get("id") in ids:
            problems.append(f"{title}: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if not p.get("title") or not p.get("description"):
            problems.append(f"{title}: needs a title and a description")
        if p.get("datasource") != DS:
            problems.append(f"{title}: panel datasource must be {DS}")
        if "unit" not in p.get("fieldConfig", {}).get("defaults", {}):
            problems.append(f"{title}: needs fieldConfig.defaults.unit")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs):
            problems.append(f"{title}: needs targets with unique refIds")
        for t in p.get("targets", []):
            if t.get("datasource") != DS or not t.get("expr"):
                problems.append(f"{title}: target {t.get('refId')} needs datasource {DS} and an expr")
            lint_expr(title, t.get("expr", ""), problems)


def cmd_lint(args):
    bad = 0
    for path in args.dashboards:
        dash, problems = load(path), []
        name = path.rsplit("/", 1)[-1]
        if UIDS.get(name) != dash.get("uid"):
            problems.append(f"uid must stay {UIDS.get(name)!r} (links and bookmarks use it), got {dash.get('uid')!r}")
        for key in ("id", "version", "__inputs"):
            if key in dash:
                problems.append(f"remove `{key}` (instance-specific or import-only)")
        lint_variables(dash, problems)
        lint_panels(dash, problems)
        for msg in problems:
            print(f"{path}: {msg}")
        print(f"{path}: {'FAIL' if problems else 'OK'} (lint)")
        bad += bool(problems)
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------

PARSE_VALUES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "job": "placeholder",
                "instance": "placeholder", "tenant": "placeholder", "datasource": "placeholder"}


def cmd_rules(args):
    rules = []
    for path in args.dashboards:
        dash = load(path)
        for v in dash.get("templating", {}).get("list", []):
            m = LABEL_VALUES.match(variable_query(v))
            if m:
                rules.append({"record": f"dashboard_variable:{dash['uid'].replace('-', '_')}:{v['name']}",
                              "expr": substitute(m.group(1), PARSE_VALUES)})
        for p, t in targets(dash):
            values = dict(PARSE_VALUES, __interval=p.get("interval", "1m"))
            rules.append({"record": f"dashboard_query:{dash['uid'].replace('-', '_')}:{p['id']}:{t['refId']}",
                          "expr": substitute(t["expr"], values)})
    json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sys.stdout, indent=1)
    print()
    return 0


# ---------------------------------------------------------------------------------------------

def api(prom, endpoint, params):
    url = f"{prom.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
        raise RuntimeError(f"HTTP {e.code}: {body.get('error', '')}") from e
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def resolve_variables(prom, dash, values):
    """Runs each label_values() variable like Grafana does; All -> allValue, else the first value."""
    ok = True
    for v in dash.get("templating", {}).get("list", []):
        m = LABEL_VALUES.match(variable_query(v))
        if not m:
            continue
        selector = substitute(m.group(1), values)
        series = api(prom, "series", {"match[]": selector, "start": time.time() - 3600})
        found = sorted({s[m.group(2)] for s in series if m.group(2) in s})
        print(f"  variable ${v['name']}: {found or 'NO VALUES'} <- label_values({selector}, {m.group(2)})")
        if not found:
            ok = False
            values[v["name"]] = "no-values"
        else:
            values[v["name"]] = v["allValue"] if v.get("includeAll") and v.get("allValue") else found[0]
    return ok


def run_target(prom, panel, target, values, window):
    expr = substitute(target["expr"], dict(values, __interval=panel.get("interval", values["__interval"])))
    now = time.time()
    if target.get("instant"):
        data = api(prom, "query", {"query": expr, "time": now})
    else:
        data = api(prom, "query_range", {"query": expr, "start": now - window, "end": now, "step": 15})
    result = data.get("result", [])
    if data.get("resultType") == "scalar":
        result = [result]
    return expr, len(result)


def cmd_live(args):
    failed = []
    for path in args.dashboards:
        dash = load(path)
        print(f"{path}:")
        values = {"__rate_interval": args.rate_interval, "__interval": args.rate_interval,
                  "__range": args.range, "datasource": "unused"}
        try:
            if not resolve_variables(args.prom, dash, values):
                failed.append(f"{path}: a template variable has no values")
        except (RuntimeError, OSError) as e:
            failed.append(f"{path}: variables: {e}")
            continue
        for p, t in targets(dash):
            label = f"{dash['uid']} / {p['title']} [{t['refId']}]"
            try:
                expr, n = run_target(args.prom, p, t, values, args.window)
            except (RuntimeError, OSError, KeyError) as e:
                print(f"  ERROR {label}: {e}")
                failed.append(f"{label}: {e}")
                continue
            allowed = p["title"] in args.allow_empty
            state = "ok" if n else ("empty (allowed)" if allowed else "NO DATA")
            print(f"  {state:<15} {label}: {n} series <- {expr}")
            if not n and not allowed:
                failed.append(f"{label}: no data")
    print()
    for f in failed:
        print(f"FAIL: {f}")
    print(f"{'FAILED' if failed else 'OK'}: live dashboard queries against {args.prom}")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("schema")
    s.add_argument("schema")
    s.add_argument("dashboards", nargs="+")
    sub.add_parser("lint").add_argument("dashboards", nargs="+")
    sub.add_parser("rules").add_argument("dashboards", nargs="+")
    live = sub.add_parser("live")
    live.add_argument("prom")
    live.add_argument("dashboards", nargs="+")
    live.add_argument("--allow-empty", action="append", default=[], metavar="PANEL_TITLE")
    live.add_argument("--rate-interval", default="1m", help="value of $__rate_interval and default $__interval")
    live.add_argument("--range", default="1h", help="value of $__range")
    live.add_argument("--window", type=float, default=600, help="seconds of history for range queries")
    args = ap.parse_args()
    return {"schema": cmd_schema, "lint": cmd_lint, "rules": cmd_rules, "live": cmd_live}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
