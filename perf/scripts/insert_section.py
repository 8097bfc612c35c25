"""Inserts a results section (a file) into perf/RESULTS.md, which is newest first: the new
section goes before the first dated one. Used by perf/compare.sh and perf/room_compare.sh."""
import sys

section = open(sys.argv[1]).read()
text = open("perf/RESULTS.md").read()
at = text.find("\n## ")
text = text + "\n" + section if at < 0 else text[: at + 1] + section + text[at + 1 :]
open("perf/RESULTS.md", "w").write(text)
