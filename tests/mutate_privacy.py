"""Mutation run over the privacy path (`make mutate`), with Cosmic Ray.

Mutates only the code that holds a privacy promise: the wire contract (`broker/wire.py`), the
consent gate and purge on the device (`edge/publisher.py`, `edge/agent.py`), purge and
retention on the dashboard (`dashboard/state.py`). Each module is run against the tests that
hold its promises, in a scratch copy of the committed tree (the work tree is never touched),
one mutant at a time. Survivors are printed with their diff; docs/testing.md says why each
known one is harmless. Exit status 1 when a survivor is not in `EXPLAINED`.

    python tests/mutate_privacy.py [--only MODULE] [--keep DIR] [--count] [--limit N]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider"


def _tests(*names: str) -> str:
    return " ".join(names)


# module -> (functions to mutate (None: code outside any function), (start, stop) markers per
# function (mutate from the first line holding `start` up to the one holding `stop`; None: from
# the `def`, to the end), the tests that hold them,
# the quickest killers first: pytest -x stops at the first failure)
TARGETS: dict[str, tuple[set[str | None], dict[str, tuple[str | None, str | None]], str]] = {
    "broker/wire.py": (
        {None, "check_agent_id", "check_visit_id", "check_prefix", "visit", "for_message",
         "parse", "coerce", "_validate", "message", "_serialise", "encode", "build", "decode",
         "decode_availability"},
        {},
        _tests(
            "tests/test_privacy.py::test_the_allow_list_is_exactly_the_reviewed_one",
            "tests/test_privacy.py::test_no_field_spec_can_be_loosened_at_run_time",
            "tests/test_privacy.py::test_numbers_and_strings_cross_only_within_their_bounds",
            "tests/test_privacy.py::test_text_fields_carry_no_control_characters",
            "tests/test_wire.py",
            "tests/test_protocol_doc.py",
            "tests/test_feedback.py",
        ),
    ),
    "edge/publisher.py": (
        {"_consented", "publish", "purge", "forget_ledger"},
        {},
        _tests(
            "tests/test_agent.py::test_the_publisher_refuses_a_signal_whose_scope_the_visit_did_not_consent_to",
            "tests/test_agent.py::test_a_message_with_landmarks_never_reaches_the_broker",
            "tests/test_privacy.py::test_after_a_purge_nothing_late_or_queued_about_the_visit_crosses_the_wire",
            "tests/test_privacy.py::test_signals_the_purge_and_its_clears_cross_at_qos_1_and_heartbeats_at_qos_0",
            "tests/test_agent.py::test_without_consent_only_availability_and_heartbeats_cross",
            "tests/test_agent.py::test_withdrawal_ends_the_visit_and_stops_publishing",
            "tests/test_agent.py::test_past_the_retention_period_the_device_forgets_what_it_published",
            "tests/test_hostile_input.py::test_a_purge_clears_a_retained_message_planted_under_the_visit",
            "tests/test_faults.py::test_a_purge_while_away_is_kept_and_discards_the_visits_unsent_signals",
            "tests/test_feedback.py",
        ),
    ),
    "edge/agent.py": (
        {"give_consent", "withdraw_consent", "forget", "_purge_locked", "_expire_locked",
         "_on_frame", "_switch_item_locked", "_end_visit_locked", "_start_visit_locked",
         "_active_stages", "_publish_locked"},
        {},
        _tests(
            # frame by frame, without a broker: a second or less each
            "tests/test_agent.py::test_a_visit_ends_when_the_face_is_gone_longer_than_the_leave_time_and_not_before",
            "tests/test_agent.py::test_a_visit_ends_when_it_has_lasted_longer_than_max_visit_s_and_not_before",
            "tests/test_agent.py::test_an_items_time_is_the_stream_time_it_was_on_screen",
            "tests/test_agent.py::test_a_finished_visit_is_kept_for_exactly_the_retention_period",
            "tests/test_agent.py::test_agreeing_again_during_a_visit_leaves_no_consent_pending_after_it",
            "tests/test_agent.py::test_forget_me_purges_the_last_visit_once",
            "tests/test_agent.py::test_nothing_measured_in_one_visit_carries_into_the_next",
            "tests/test_agent.py::test_consent_to_an_unknown_or_empty_set_of_scopes_is_refused_whole",
            "tests/test_agent.py::test_the_agent_computes_and_asks_to_send_only_what_the_one_scope_allows",
            "tests/test_agent.py::test_without_consent_only_availability_and_heartbeats_cross",
            "tests/test_agent.py::test_consent_starts_a_visit_and_face_messages_are_rate_limited",
            "tests/test_agent.py::test_consent_to_expression_only_publishes_no_attention",
            "tests/test_agent.py::test_withdrawal_ends_the_visit_and_stops_publishing",
            "tests/test_agent.py::test_forget_me_ends_a_viewers_consent_but_not_a_recorded_sources",
            "tests/test_agent.py::test_a_narrowed_consent_ends_the_visit_and_the_next_one_sends_only_what_is_left",
            "tests/test_agent.py::test_past_the_retention_period_the_device_forgets_what_it_published",
            "tests/test_agent.py::test_visit_survives_a_short_miss_and_ends_after_the_leave_time",
            "tests/test_agent.py::test_each_page_shown_gets_its_reaction_and_attention_summary",
            "tests/test_privacy.py::test_forget_me_purges_the_visit_from_every_endpoint_and_the_broker",
            "tests/test_hardening.py::test_consent_given_with_nobody_there_lapses_when_no_face_comes",
            "tests/test_hardening.py::test_consent_given_with_nobody_there_starts_a_visit_for_a_face_in_time",
            "tests/test_hardening.py::test_consent_belongs_to_the_face_present_when_it_was_given",
        ),
    ),
    "dashboard/state.py": (
        {"_apply_purge", "_delete_visit", "_apply_visit_message", "purge", "reset", "_sweep"},
        {"_apply_visit_message": (None, "known_agent = agent_id in self._agents"),
         "_sweep": ("now = self.clock()", None)},
        _tests(
            "tests/test_dashboard_wire.py::test_a_late_or_replayed_message_for_a_purged_visit_does_not_bring_it_back",
            "tests/test_dashboard.py::test_an_agent_cannot_purge_another_agents_visit_and_any_purge_is_remembered",
            "tests/test_dashboard.py::test_the_memory_of_purged_visits_is_bounded_and_forgets_the_oldest_first",
            "tests/test_dashboard.py::test_after_a_purge_nothing_the_visit_said_is_left_anywhere_in_the_state",
            "tests/test_dashboard_wire.py::test_admin_actions_need_json_from_the_page_and_a_token_off_loopback",
            "tests/test_dashboard.py::test_a_signal_outside_the_visits_consent_is_rejected",
            "tests/test_dashboard.py::test_visit_claimed_by_another_agent_is_rejected",
            "tests/test_dashboard.py::test_retention_deletes_ended_and_abandoned_visits_and_keeps_a_live_one",
            "tests/test_dashboard.py::test_retention_waits_for_the_last_message_of_an_ended_visit",
            "tests/test_dashboard.py::test_oldest_visits_are_forgotten_beyond_the_limit_ended_ones_first",
            "tests/test_privacy.py::test_retention_deletes_a_finished_visit",
            "tests/test_feedback.py",
        ),
    ),
}  # fmt: skip

OPERATORS = re.compile(
    r"core/(NumberReplacer|AddNot|ReplaceUnaryOperator_Delete_(Not|USub)|ReplaceTrueWithFalse"
    r"|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd|ZeroIterationForLoop"
    r"|ExceptionReplacer|RemoveDecorator|ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul)"
    r"|ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Lt_GtE|GtE_Lt"
    r"|Gt_LtE|LtE_Gt|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In))$"
)
"""The operators used: each flips a decision or moves a boundary the way a slip in the code
would. Left out: swaps to exotic operators (`-` to `<<`, `==` to `is`) that only crash, and
`|` swaps, which here only occur in type annotations (never evaluated: equivalent mutants)."""

EXPLAINED: dict[tuple[str, str, str], str] = {
    # (module, operator, the original line, stripped) -> why the survivor is harmless.
    # None: every survivor on the privacy path is now killed by a test or was removed with the
    # code that made it equivalent (docs/testing.md).
}  # fmt: skip
"""Survivors judged harmless, each with its reason (docs/testing.md lists them too)."""


def function_lines(
    path: Path, names: set[str | None], spans: dict[str, tuple[str | None, str | None]]
) -> set[int]:
    """Line numbers inside the named functions (between their markers), or outside any."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    inside: set[int] = set()
    chosen: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            inside.update(span)
            if node.name in names:
                start, stop = spans.get(node.name, (None, None))
                started = start is None
                for n in span:
                    started = started or start in lines[n - 1]
                    if stop is not None and stop in lines[n - 1]:
                        break
                    if started:
                        chosen.add(n)
    if None in names:
        chosen.update(n for n in range(1, len(lines) + 1) if n not in inside)
    return chosen


def scratch_copy(into: Path) -> None:
    """The committed tree (HEAD): what is mutated is what was committed, not work in progress."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def run_module(
    work: Path, module: str, count_only: bool = False, limit: int | None = None
) -> tuple[int, int, int, list[tuple[str, str]]]:
    """Mutate one module; return (killed, survived, not made, [(operator, diff)] of the
    survivors). Not made: Cosmic Ray could not write the mutant (it fails on an exception
    tuple such as `except (A, B):`), so no test ran against it."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    names, spans, tests = TARGETS[module]
    keep = function_lines(work / module, names, spans)
    stem = module.replace("/", "_").removesuffix(".py")
    config, session = work / f"{stem}.toml", work / f"{stem}.sqlite"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        "timeout = 180.0\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(PYTEST + ' ' + tests)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    cosmic = [str(Path(sys.executable).parent / "cosmic-ray")]
    subprocess.run([*cosmic, "init", str(config), str(session)], cwd=work, check=True)
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = db.pending_work_items
        outside = [
            i.job_id
            for i in pending
            if i.mutations[0].start_pos[0] not in keep
            or not OPERATORS.match(i.mutations[0].operator_name)
        ]
        if limit is not None:  # a quick check of the run itself: the first `limit` mutants
            left_out = set(outside)
            chosen = [i.job_id for i in pending if i.job_id not in left_out]
            outside += sorted(chosen)[limit:]
        skipped = WorkResult(output="off the privacy path", worker_outcome=WorkerOutcome.SKIPPED)
        db.set_multiple_results(outside, skipped)
        print(f"{module}: {len(pending) - len(outside)} mutants", flush=True)
    if count_only:
        return 0, 0, 0, []
    # The tests must pass on the unmutated code, or every mutant would count as killed.
    baseline = subprocess.run(
        shlex.split(PYTEST + " " + tests), cwd=work, capture_output=True, text=True
    )
    if baseline.returncode != 0:
        raise SystemExit(f"{module}: the tests fail without a mutant:\n{baseline.stdout[-3000:]}")
    subprocess.run([*cosmic, "exec", str(config), str(session)], cwd=work, check=True)
    killed = survived = unmade = 0
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            if result.worker_outcome == WorkerOutcome.EXCEPTION:
                unmade += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                survived += 1
                survivors.append((item.mutations[0].operator_name, result.diff or ""))
            else:
                killed += 1
    return killed, survived, unmade, survivors


def original_line(diff: str) -> str:
    """The first line the mutant changed or removed, as it was."""
    for line in diff.splitlines():
        if line.startswith("-") and not line.startswith("---") and line[1:].strip():
            return line[1:].strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(TARGETS), action="append")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--count", action="store_true", help="only count the mutants")
    parser.add_argument("--limit", type=int, help="run at most this many mutants per module")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="onlooker-mutate-"))
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(work)
    os.environ.setdefault("GLOG_minloglevel", "2")
    # No bytecode cache in the scratch copy: a mutant of the same size written within the
    # same second as the last one would otherwise run from the stale cache.
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.monotonic()
    unexplained = 0
    try:
        for module in args.only or list(TARGETS):
            t0 = time.monotonic()
            killed, survived, unmade, survivors = run_module(work, module, args.count, args.limit)
            if args.count:
                continue
            print(f"{module}: {killed} killed, {survived} survived, {unmade} not made "
                  f"in {time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
            for operator, diff in survivors:
                key = (module, operator.rsplit("/", 1)[-1], original_line(diff))
                why = EXPLAINED.get(key)
                unexplained += why is None
                print(f"--- survivor ({operator}): {why or 'NOT EXPLAINED'}\n{diff}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"mutation run: {time.monotonic() - started:.0f} s, {unexplained} unexplained survivors")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
