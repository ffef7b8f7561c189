#!/usr/bin/env python3
"""Example agent: behaves like a coding agent for each orchestrator stage, with no model and no network.

The orchestrator starts it with the prompt on stdin and ORCH_WORK_ITEM, ORCH_STAGE, ORCH_ROLE,
ORCH_REPO, ORCH_BRANCH, ORCH_TASK_DIR, ORCH_RUN_ID in its environment, in the task's worktree.
Per stage it writes what the stage's gate looks for:

  analysis      docs/tasks/<WI>/spec.md
  architecture  docs/tasks/<WI>/design.md
  development   src/<wi>.txt and tests/<wi>_test.txt (code + test)
  review        docs/tasks/<WI>/review.md, first line APPROVE (or REQUEST_CHANGES)

and prints a Claude-Code-style JSON result (usage, cost) on stdout.

Options (in the agent's argv, from the orchestrator's configuration):
  --sleep S                 sleep S seconds first (a slow or hung agent)
  --heartbeat S             while sleeping, print a progress line every S seconds (a slow agent
                            that is not stuck)
  --stall                   print one line, then nothing, ever (a stuck agent: stall_timeout
                            stops it)
  --stall-once              stall in each stage's first run only (the marker is kept in $HOME,
                            the task's home, which outlives the failed run's worktree changes)
  --fail-gate STAGE         in STAGE, write nothing (the gate fails every time)
  --fail-gate-once STAGE    in STAGE, write nothing the first time only
  --request-changes-once    the first review asks for changes, later ones approve
  --spec-symlink TARGET     in analysis, write spec.md as a symbolic link to TARGET (a hostile agent;
                            the gate must refuse it)
  --spawn-child             leave a background `sleep` running in the process group
  --plain                   print plain text instead of JSON (cost unknown)
  --stream                  print stream-json as Claude Code's `--output-format stream-json
                            --verbose` does: an init event with the session id, an event per
                            step, then the result line
  --resume ID               resume session ID (recorded in $HOME by an earlier run); an unknown
                            session fails as Claude Code does: "No conversation found with
                            session ID: ID" on stderr, exit 1, no result
  --lose-sessions           never record a session (so any later --resume fails)
  --cost X                  report X as total_cost_usd (default 0.0123)
  --max-budget-usd X        accepted as Claude Code's flag is (the orchestrator's budget template);
                            said on stderr
  --transient               fail like a rate-limited API call (exit 1, is_error result)
  --exit CODE               exit with CODE after doing the work
  (Feedback in the prompt, on a stage tried again, is written to docs/tasks/<WI>/feedback-<stage>.md
  and the result says "feedback addressed".)
  --dump DIR                write the prompt (prompt.txt, and prompt-<stage>-<run id>.txt), argv,
                            environment and process facts (pid, process group, open descriptors)
                            to DIR, and a line to stderr (for tests)
"""
import json
import os
import subprocess
import sys
import time
import uuid


def main(argv):
    # Before anything else opens a file: the descriptors the orchestrator left open in this process.
    # (Listing the directory opens one more, which shows up in the list.)
    inherited = sorted(int(fd) for fd in os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []
    options = {"max_budget_usd": None, "stream": False, "resume": None, "lose_sessions": False, "cost": 0.0123, "sleep": 0.0,
               "heartbeat": 0.0, "stall": False, "stall_once": False, "fail": set(), "fail_once": set(),
               "request_changes_once": False, "spec_symlink": None, "spawn_child": False, "plain": False,
               "transient": False, "exit": 0, "dump": None}
    # Each option: the key it sets, and how its value is read (None: a switch, set to True; a
    # set: the value is added to it).
    parsers = {"--stream": None, "--lose-sessions": None, "--stall": None, "--stall-once": None,
               "--request-changes-once": None, "--spawn-child": None, "--plain": None, "--transient": None,
               "--resume": str, "--cost": float, "--max-budget-usd": float, "--sleep": float, "--heartbeat": float,
               "--spec-symlink": str, "--exit": int, "--dump": str, "--fail-gate": set, "--fail-gate-once": set}
    keys = {"--fail-gate": "fail", "--fail-gate-once": "fail_once"}
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg not in parsers:
            print(f"example agent: unknown option {arg}", file=sys.stderr)
            return 2
        key = keys.get(arg, arg[2:].replace("-", "_"))
        parse = parsers[arg]
        if parse is None:
            options[key] = True
        elif parse is set:
            options[key].add(args.pop(0))
        else:
            options[key] = parse(args.pop(0))

    prompt = sys.stdin.read()
    if options["max_budget_usd"] is not None:
        print(f"example agent: budget ${options['max_budget_usd']:.2f}", file=sys.stderr)
    stage = os.environ.get("ORCH_STAGE", "analysis")
    work_item = os.environ.get("ORCH_WORK_ITEM", "WI-0")
    task_dir = os.path.join("docs", "tasks", work_item)
    os.makedirs(task_dir, exist_ok=True)

    # Sessions live in the task's home ($HOME), which every run of the task shares.
    sessions_file = os.path.join(os.environ.get("HOME", "."), ".example-agent-sessions")
    known = open(sessions_file).read().split() if os.path.exists(sessions_file) else []
    if options["resume"]:
        if options["resume"] not in known:
            print(f"No conversation found with session ID: {options['resume']}", file=sys.stderr)
            return 1
        session = options["resume"]
        print(f"example agent: resumed session {session}", file=sys.stderr)
    else:
        session = str(uuid.uuid4())
        if not options["lose_sessions"]:
            with open(sessions_file, "a") as f:
                f.write(session + "\n")
    if options["stream"]:
        emit({"type": "system", "subtype": "init", "session_id": session, "model": "example-agent-1",
              "cwd": os.getcwd(), "resumed": bool(options["resume"])})

    if options["dump"]:
        os.makedirs(options["dump"], exist_ok=True)
        with open(os.path.join(options["dump"], "prompt.txt"), "w") as f:
            f.write(prompt)
        # And one per run, so a test can read an earlier stage's prompt.
        with open(os.path.join(options["dump"], f"prompt-{stage}-{os.environ.get('ORCH_RUN_ID', '0')}.txt"), "w") as f:
            f.write(prompt)
        with open(os.path.join(options["dump"], "argv.json"), "w") as f:
            json.dump(argv, f)
        with open(os.path.join(options["dump"], "env.json"), "w") as f:
            json.dump(dict(os.environ), f)
        with open(os.path.join(options["dump"], "process.json"), "w") as f:
            json.dump({"pid": os.getpid(), "pgid": os.getpgrp(), "sid": os.getsid(0), "fds": inherited}, f)
        print(f"example agent: dumped its input to {options['dump']}", file=sys.stderr)

    if options["spawn_child"]:
        subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if options["stall"] or options["stall_once"]:
        marker = os.path.join(os.environ.get("HOME", "."), f".example-agent-stalled-{work_item}-{stage}")
        if options["stall"] or not os.path.exists(marker):
            open(marker, "w").close()
            print(f"example agent: {stage} for {work_item} started, and now goes silent", flush=True)
            time.sleep(3600)
            return 1
    if options["sleep"] > 0:
        deadline = time.monotonic() + options["sleep"]
        while time.monotonic() < deadline:
            step = deadline - time.monotonic()
            if options["heartbeat"] > 0:
                step = min(step, options["heartbeat"])
            time.sleep(max(step, 0))
            if options["heartbeat"] > 0 and options["stream"]:
                # ts: when it was printed, for measuring how late followers see it.
                emit({"type": "assistant", "session_id": session, "ts": time.time(),
                      "message": {"role": "assistant", "content": [{"type": "text", "text": f"still working on {stage}"}]}})
            elif options["heartbeat"] > 0:
                print(f"example agent: still working on {stage}", flush=True)

    if options["transient"]:
        print(json.dumps({"type": "result", "subtype": "error_during_execution", "is_error": True, "num_turns": 1,
                          "result": "API Error: 429 rate_limit_error: Number of request tokens has exceeded your rate limit",
                          "total_cost_usd": 0.0, "usage": {"input_tokens": 0, "output_tokens": 0}}))
        return 1

    def once(name):
        marker = os.path.join(task_dir, f".{name}-{stage}")
        if os.path.exists(marker):
            return False
        open(marker, "w").close()
        return True

    # The feedback a stage tried again gets (the prompt's "## Feedback" section) is kept beside
    # the stage's document and named in the result: what an agent does with it, in miniature.
    feedback = prompt.split("\n## Feedback\n", 1)[1].strip() if "\n## Feedback\n" in prompt else ""
    if feedback:
        write(os.path.join(task_dir, f"feedback-{stage}.md"), feedback + "\n")

    skip = stage in options["fail"] or (stage in options["fail_once"] and once("failed"))
    summary = f"{stage} for {work_item}: nothing written (told to fail the gate)"
    if not skip:
        title = prompt.strip().splitlines()[0] if prompt.strip() else work_item
        if stage == "analysis" and options["spec_symlink"]:
            spec = os.path.join(task_dir, "spec.md")
            if os.path.lexists(spec):
                os.remove(spec)
            os.symlink(options["spec_symlink"], spec)
        elif stage == "analysis":
            # Each document names its run, so a stage run again (feedback, /agent) changes it.
            run = os.environ.get("ORCH_RUN_ID", "?")
            write(os.path.join(task_dir, "spec.md"),
                  f"# Spec for {work_item}\n\n{title}\n\nAcceptance: the behaviour described works.\n\n(run {run})\n")
        elif stage == "architecture":
            run = os.environ.get("ORCH_RUN_ID", "?")
            write(os.path.join(task_dir, "design.md"), f"# Design for {work_item}\n\nOne small change, tested.\n\n(run {run})\n")
        elif stage == "development":
            slug = work_item.lower().replace("-", "_")
            # Each run changes the code (a later round must commit something of its own to pass).
            run = os.environ.get("ORCH_RUN_ID", "?")
            write(os.path.join("src", f"{slug}.txt"), f"implementation of {work_item} (run {run})\n")
            write(os.path.join("tests", f"{slug}_test.txt"), f"test of {work_item}\n")
        elif stage == "review":
            verdict = "REQUEST_CHANGES" if options["request_changes_once"] and once("reviewed") else "APPROVE"
            # The run id makes each review a change of its own (the gate wants this run's review).
            write(os.path.join(task_dir, "review.md"),
                  f"{verdict}\n\nReviewed {work_item} (run {os.environ.get('ORCH_RUN_ID', '?')}).\n")
        summary = f"{stage} for {work_item} done" + (" (feedback addressed)" if feedback else "")

    if options["stream"]:
        emit({"type": "assistant", "session_id": session,
              "message": {"role": "assistant", "content": [{"type": "text", "text": summary}]}})
    if options["plain"]:
        print(summary)
    else:
        print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "num_turns": 3, "result": summary,
                          "session_id": session, "total_cost_usd": options["cost"],
                          "usage": {"input_tokens": 1200, "output_tokens": 340, "cache_read_input_tokens": 800,
                                    "cache_creation_input_tokens": 100},
                          "modelUsage": {"example-agent-1": {}}}))
    return options["exit"]


def emit(event):
    print(json.dumps(event), flush=True)


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
