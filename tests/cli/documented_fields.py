#!/usr/bin/env python3
"""Checks that every field a command writes in JSON is documented.

usage: documented_fields.py DOC.md [DOC.md ...] --skip PATH [--skip PATH ...]
           -- OUTPUT.json [OUTPUT.jsonl ...]

A field is documented when its name appears inside a `code span` of one of
the documents (fenced code blocks do not count: they hold example output,
which names fields without saying what they are). A name with dots
(`routing.generator`, a sweep column `breakdown.idle_s`) is documented when
each of its parts is. --skip names a path whose members are not fields of
the output but data it carries: a report's `scenario` (the input echoed,
documented as scenario fields), a search's `rejected` (reason names), a
preset's `sources`. Paths are dotted from the top, `[]` for array elements
(`shapes[].torch`). Every undocumented field is printed with its path; the
exit status is 1 if there is any.
"""
import json
import re
import sys


def documented_names(paths):
    names = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", text):
            names.update(re.findall(r"[A-Za-z0-9_]+", span))
    return names


def fields(value, path, skip, out):
    if isinstance(value, dict):
        for key, member in value.items():
            member_path = f"{path}.{key}" if path else key
            out.append((key, member_path))
            if member_path not in skip:
                fields(member, member_path, skip, out)
    elif isinstance(value, list):
        for element in value:
            fields(element, path + "[]", skip, out)


def documents(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".jsonl"):
            for line in text.splitlines():
                yield path, json.loads(line)
        else:
            yield path, json.loads(text)


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    docs, skip, args = [], set(), argv[:split]
    while args:
        arg = args.pop(0)
        if arg == "--skip":
            skip.add(args.pop(0))
        else:
            docs.append(arg)
    names = documented_names(docs)
    missing = set()
    checked = 0
    for path, value in documents(argv[split + 1:]):
        found = []
        fields(value, "", skip, found)
        checked += len(found)
        for key, field_path in found:
            parts = re.findall(r"[A-Za-z0-9_]+", key)
            if not parts or not all(p in names for p in parts):
                missing.add((path, field_path))
    for path, field_path in sorted(missing):
        print(f"undocumented: {field_path} (in {path})")
    if checked == 0:
        print("no fields checked: the outputs are empty")
        return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
