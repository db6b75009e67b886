"""``mantile validate``: run every installed plugin's torch-backed validation cases."""

from __future__ import annotations

from .render import print_json, print_table

DESCRIPTION = """Run every installed plugin's validation cases: the analytic FLOPs, bytes and attended
pairs against a torch execution of the same layer (FlopCounterMode, tensor nbytes, mask sums),
and the references against transformers where it is installed. Needs the plugins' [torch]
extras; a case whose dependency is missing is skipped. Exit status 1 when a case fails."""


def register(sub) -> None:
    p = sub.add_parser("validate", help="run the plugins' torch reference checks", description=DESCRIPTION)
    p.add_argument("--json", action="store_true", help="print the JSON document (see docs/json.md)")
    p.add_argument("-k", dest="match", default=None, help="only cases whose name contains this")
    p.set_defaults(run=run)


def run_cases(match: str | None = None) -> list[dict]:
    from ..plugins import get_plugin_manager
    from ..records import ValidationOutcome

    registries = get_plugin_manager().registries
    results = []
    for name, case in registries.validation_cases.items():
        if match and match not in name:
            continue
        try:
            outcome = case.run()
        except ModuleNotFoundError as exc:
            outcome = ValidationOutcome(False, f"skipped: {exc.name} is not installed", skipped=True)
        except Exception as exc:  # a failing check is a result, not a crash
            outcome = ValidationOutcome(False, f"{type(exc).__name__}: {exc}")
        results.append({"name": name, "distribution": registries.owners[("validation_cases", name)],
                        "status": "skipped" if outcome.skipped else ("passed" if outcome.passed else "failed"),
                        "detail": outcome.detail})
    return results


def run(args) -> int:
    results = run_cases(args.match)
    failed = sum(r["status"] == "failed" for r in results)
    if args.json:
        print_json({"cases": results, "failed": failed})
    else:
        print_table(f"validation: {len(results)} cases, {failed} failed", ["case", "from", "status", "detail"],
                    [(r["name"], r["distribution"], r["status"], r["detail"]) for r in results], right=[False] * 4)
    return 1 if failed else 0
