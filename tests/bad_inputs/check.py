#!/usr/bin/python3
"""The bad-input corpus (issue 8): every file here is malformed on purpose. For each case in
cases.json, the shadowsim command must exit with 1 or 2 (never 0, never a signal or a crash:
no "internal error"), and its standard error must contain every expected piece: the file's
name and where in it the problem is (a line, a record, a JSON path).

    /usr/bin/python3 tests/bad_inputs/check.py BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    binary = os.path.abspath(sys.argv[1])
    cases = json.load(open(os.path.join(HERE, "cases.json")))
    failures = []
    with tempfile.TemporaryDirectory() as out:
        for case in cases:
            cmd = [binary] + case["args"] + [case["file"]] + case.get("after", [])
            cmd = [c.replace("{out}", os.path.join(out, case["file"])) for c in cmd]
            try:
                r = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                failures.append("{}: hung (more than 120 s)".format(case["file"]))
                continue
            err = r.stdout + r.stderr
            problems = []
            if r.returncode not in (1, 2):
                problems.append("exit status {} (expected 1 or 2)".format(r.returncode))
            if "internal error" in err:
                problems.append("an internal error instead of a message about the input")
            for piece in case["expect"]:
                if piece not in err:
                    problems.append("no '{}' in the message".format(piece))
            if problems:
                failures.append("{}: {}\n    {}".format(case["file"], "; ".join(problems),
                                                      err.strip()[:300]))
    for f in failures:
        print("FAIL", f)
    print("bad inputs: {} cases, {} failed".format(len(cases), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
