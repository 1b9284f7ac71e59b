#!/usr/bin/env python3
"""Runs every command of the README's ```sh blocks (except `scripts/…`) as a reader would paste
them, in order, in one shell, against a live engine; checks each curl's HTTP status.

    readme_check.py README.md BASE_URL KEY

The README's `localhost:8080` becomes BASE_URL and its `KEY=ldg_…` line sets KEY. A command is
expected to answer 2xx unless the `# →` comment under it names another status (`# → 201 …`,
`# → HTTP/1.1 422 …`). A GraphQL answer must carry no `errors`. Exits 1 naming each command
that does not hold.
"""

import json
import os
import re
import subprocess
import sys
import tempfile


def blocks(text):
    """The ```sh blocks of a Markdown text, as lists of lines."""
    out, current = [], None
    for line in text.splitlines():
        if current is None and line.strip() == "```sh":
            current = []
        elif current is not None and line.strip() == "```":
            out.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return out


def commands(lines):
    """(command text, expected status or None) for each command of a block."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        text = line
        # A command goes on while a line ends in a backslash or a single quote is open.
        while (text.rstrip().endswith("\\") or text.count("'") % 2 == 1) and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        i += 1
        expected = None
        while i < len(lines) and lines[i].lstrip().startswith("#"):
            m = re.match(r"\s*# → (?:HTTP/1\.1 )?(\d{3})\b", lines[i])
            if m and expected is None:
                expected = int(m.group(1))
            i += 1
        out.append((text, expected))
    return out


def main():
    readme, base_url, key = sys.argv[1:4]
    host = re.sub(r"^https?://", "", base_url)
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    script = ["set -u", f"check() {{ echo \"__STATUS__ $(command curl -sS -o \"$BODY\" -w '%{{http_code}}' \"$@\")\"; cat \"$BODY\"; echo; }}"]
    expectations = []
    for block in blocks(text):
        for command, expected in commands(block):
            if command.startswith("scripts/"):
                continue
            command = command.replace("localhost:8080", host)
            command = re.sub(r"^KEY=\S+.*$", f"KEY={key}", command, flags=re.M)
            if command.startswith("curl "):
                script.append(f"echo __COMMAND__ {len(expectations)}")
                script.append("check " + command[len("curl "):])
                expectations.append((command, expected))
            else:
                script.append(command)
    if not expectations:
        print("no curl commands found in", readme)
        return 1
    with tempfile.NamedTemporaryFile() as body:
        # The README's `ledger …` commands find the build under test first (LEDGER_BIN_DIR).
        path = ":".join(filter(None, [os.environ.get("LEDGER_BIN_DIR"), "/usr/bin:/bin:/usr/local/bin"]))
        try:
            run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                                 env={"BODY": body.name, "PATH": path}, timeout=600)
        except subprocess.TimeoutExpired as e:
            print("the README's commands did not finish in 600 s; their output so far:\n", e.stdout, e.stderr)
            return 1
    if run.returncode != 0 or run.stderr.strip():
        print("the README's commands did not run:\n", run.stderr)
        return 1
    answers = {}
    for part in run.stdout.split("__COMMAND__ ")[1:]:
        index, _, rest = part.partition("\n")
        status_line, _, answer = rest.partition("\n")
        answers[int(index)] = (int(status_line.replace("__STATUS__", "").strip() or 0), answer.strip())
    failures = 0
    for index, (command, expected) in enumerate(expectations):
        status, answer = answers.get(index, (0, ""))
        ok = status == expected if expected else 200 <= status < 300
        if ok and "/graphql" in command:
            try:
                ok = "errors" not in json.loads(answer)
            except ValueError:
                ok = False
        first = command.splitlines()[0]
        print(f"{'ok  ' if ok else 'FAIL'} {status} {first[:100]}")
        if not ok:
            failures += 1
            print(f"     expected {expected or '2xx'}; answered: {answer[:500]}")
    print(f"{len(expectations) - failures} of {len(expectations)} README commands answered as documented")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
