#!/usr/bin/env python3
"""Facts about config/prometheus/alerts.yml for .ci/ops-checks.sh.

    alerts_meta.py coverage ALERTS.yml TEST.yml   every alert has a firing and a non-firing test case
    alerts_meta.py labels ALERTS.yml              one line per alert: NAME SEVERITY
"""
import sys

import yaml


def alerts(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return {r["alert"]: r.get("labels", {}).get("severity", "")
            for g in doc["groups"] for r in g["rules"] if "alert" in r}


def coverage(alerts_path, test_path):
    with open(test_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    firing, silent = set(), set()
    for t in tests.get("tests", []):
        for case in t.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    bad = 0
    for name in sorted(alerts(alerts_path)):
        missing = [kind for kind, seen in (("firing", firing), ("non-firing", silent)) if name not in seen]
        print(f"{name}: {'missing ' + ' and '.join(missing) + ' case' if missing else 'firing and non-firing cases'}")
        bad += bool(missing)
    return 1 if bad else 0


def main(argv):
    if argv[:1] == ["coverage"] and len(argv) == 3:
        return coverage(argv[1], argv[2])
    if argv[:1] == ["labels"] and len(argv) == 2:
        for name, severity in alerts(argv[1]).items():
            print(name, severity)
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
