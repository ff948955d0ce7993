"""Pooled figures of the A/B runs here (ab-*: with captures; nocap-*: without): per mode, first − steady over every pair of every round
(median, min–max), steady RTT, the replies that came to the controller, and the median time of
the request's way to the destination VM. Usage: python3 summarize.py"""
import glob, re, statistics, collections
d = collections.defaultdict(list); st = collections.defaultdict(list); ctl = collections.Counter()
to_vm = collections.defaultdict(list); n = collections.Counter()
for raw in sorted(glob.glob("ab-*-[0-9]/raw.txt") + glob.glob("nocap-*-[0-9]/raw.txt")):
    kind, mode = re.match(r"(ab|nocap)-(.*)-\d+/raw.txt", raw).groups()
    mode = mode if kind == "ab" else f"{mode}, no capture"
    for line in open(raw):
        m = re.match(r"strowger pair \d+ first_ms ([0-9.]+) steady_ms ([0-9.]+)", line)
        if m:
            d[mode].append(float(m.group(1)) - float(m.group(2))); st[mode].append(float(m.group(2)))
    if kind == "nocap":
        continue
    tl = open(raw.replace("raw.txt", "timeline.txt")).read()
    ctl[mode] += tl.count("reply: packet-in at controller's socket")
    for block in tl.split("strowger pair")[1:]:
        n[mode] += 1
        m = re.search(r"^\s+(\d+) µs  hv3-vm request$", block, re.M)
        if m:
            to_vm[mode].append(int(m.group(1)))
print("| mode | pairs | first − steady, ms: median (min–max) | steady RTT, ms: median | request at the destination VM, µs after it left: median | replies to the controller |")
print("|---|---:|---|---:|---:|---:|")
for mode in d:
    v = d[mode]
    way = f"{statistics.median(to_vm[mode]):.0f}" if to_vm[mode] else "–"
    back = f"{ctl[mode]} of {n[mode]}" if n[mode] else "–"
    print(f"| {mode} | {len(v)} | {statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f}) | {statistics.median(st[mode]):.3f} | {way} | {back} |")
