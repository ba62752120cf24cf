"""A Prometheus text format 0.0.4 check for when promtool is missing:
every sample line parses, every metric has HELP and TYPE before its
samples, counters end in _total, histogram buckets are cumulative and end
with +Inf equal to _count. Prints how many samples it read."""
import re
import sys

sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
types, helps, n = {}, set(), 0
buckets = []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
        assert name not in types, "TYPE twice: " + name
        types[name] = kind
        continue
    m = sample.match(line)
    assert m, "not a sample: " + line
    name = m.group(1)
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    family = name if name in types else base
    assert family in types and family in helps, "no TYPE/HELP before " + line
    if types[family] == "counter":
        assert family.endswith("_total"), "counter without _total: " + family
    if name.endswith("_bucket"):
        buckets.append(float(m.group(7)))
    if name.endswith("_count") and types[family] == "histogram":
        assert buckets == sorted(buckets) and buckets[-1] == float(m.group(7)), buckets
    n += 1
print(f"{n} samples")
