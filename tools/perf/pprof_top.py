#!/usr/bin/env python3
"""Prints where a Go program such as nats-server spent its CPU, from a CPU
profile in the pprof format (what http://HOST:PORT/debug/pprof/profile
serves), without Go's own tools: the functions with the most samples of
their own (flat) and with the most samples in them or in what they call
(cumulative), as shares of all samples.

  tools/perf/pprof_top.py FILE|URL [--top N] [--save FILE]

  # the shop demo at 500 sagas/s, and its broker's CPU for 5 s of it
  tools/demo --rate 500 --orders 5000 --broker-profile-port 6061 &
  sleep 3; tools/perf/pprof_top.py 'http://127.0.0.1:6061/debug/pprof/profile?seconds=5'
"""
import argparse
import collections
import gzip
import sys
import urllib.error
import urllib.request


def varint(buf, i):
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("a number runs past the end of the data")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(buf):
    """The (number, wire type, value) of each field of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            size, i = varint(buf, i)
            if i + size > len(buf):
                raise ValueError("a field runs past the end of the data")
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d is not protobuf's" % wire)
        yield number, wire, value


def numbers(wire, value):
    """A repeated integer field, packed (wire type 2) or not."""
    if wire == 0:
        return [value]
    out, i = [], 0
    while i < len(value):
        n, i = varint(value, i)
        out.append(n)
    return out


def number(wire, value):
    """A field that must be a single integer."""
    if wire != 0:
        raise ValueError("wire type %d where a number belongs" % wire)
    return value


def message(wire, value):
    """A field that must be bytes: a message or a string."""
    if wire != 2:
        raise ValueError("wire type %d where a message or a string belongs" % wire)
    return value


def read_profile(data):
    """Samples as (location ids, values), locations as id -> function ids
    (innermost first), functions as id -> name index, and the strings. A
    field of the wrong wire type is a ValueError, as is any other defect."""
    samples, locations, functions, strings = [], {}, {}, []
    for number_, wire, value in fields(data):
        if number_ == 2:  # Sample
            ids, values = [], []
            for n, w, v in fields(message(wire, value)):
                if n == 1:
                    ids += numbers(w, v)
                elif n == 2:
                    values += numbers(w, v)
            samples.append((ids, values))
        elif number_ == 4:  # Location
            lid, funcs = 0, []
            for n, w, v in fields(message(wire, value)):
                if n == 1:
                    lid = number(w, v)
                elif n == 4:  # Line
                    funcs += [number(mw, fid) for m, mw, fid in fields(message(w, v)) if m == 1]
            locations[lid] = funcs
        elif number_ == 5:  # Function
            fid = name = 0
            for n, w, v in fields(message(wire, value)):
                if n == 1:
                    fid = number(w, v)
                elif n == 2:
                    name = number(w, v)
            functions[fid] = name
        elif number_ == 6:  # string_table
            strings.append(message(wire, value).decode("utf-8", "replace"))
    return samples, locations, functions, strings


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="a CPU profile in the pprof format (gzipped or not), or the "
                    "http:// URL that serves one")
    ap.add_argument("--top", type=int, default=30, help="functions in each table [30]")
    ap.add_argument("--save", metavar="FILE", help="also write the profile read to FILE")
    args = ap.parse_args()
    if args.top < 1:
        ap.error("--top must be at least 1")
    if args.file.startswith(("http://", "https://")):
        try:
            # A CPU profile takes its seconds to answer.
            with urllib.request.urlopen(args.file, timeout=600) as r:
                data = r.read()
        except (urllib.error.URLError, OSError) as e:
            sys.exit("pprof_top: cannot read %s: %s; is the program running with its "
                     "profiler on that port (shop-demo --broker-profile-port)?"
                     % (args.file, getattr(e, "reason", e)))
    else:
        try:
            data = open(args.file, "rb").read()
        except OSError as e:
            sys.exit("pprof_top: cannot read %s: %s" % (args.file, e.strerror))
    if args.save:
        try:
            open(args.save, "wb").write(data)
        except OSError as e:
            sys.exit("pprof_top: cannot write %s: %s" % (args.save, e.strerror))
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        samples, locations, functions, strings = read_profile(data)
    except (ValueError, OSError, EOFError) as e:
        sys.exit("pprof_top: %s is not a pprof profile (%s); fetch one from "
                 "/debug/pprof/profile?seconds=S" % (args.file, e))
    if not samples:
        sys.exit("pprof_top: %s has no samples: the program used no CPU while it was "
                 "profiled, or the profile is not a CPU profile" % args.file)
    # A CPU profile's values are (samples, nanoseconds): use the time.
    column = 1 if len(samples[0][1]) > 1 else 0
    flat, cumulative, total = collections.Counter(), collections.Counter(), 0
    for ids, values in samples:
        value = values[column] if column < len(values) else 0
        total += value
        names = [strings[functions[fid]] for lid in ids for fid in locations.get(lid, [])
                 if fid in functions and functions[fid] < len(strings)]
        if names:
            flat[names[0]] += value
        for name in set(names):
            cumulative[name] += value
    if total == 0:
        sys.exit("pprof_top: %s has samples of no CPU time" % args.file)
    if column == 1:
        print("%.2f s of CPU sampled" % (total / 1e9))
    else:
        print("%d samples" % total)
    for title, counter in (("flat (in the function itself)", flat),
                           ("cumulative (in it and what it calls)", cumulative)):
        print("\n%s" % title)
        # Ties by name, so that the same profile always prints the same.
        for name, value in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:args.top]:
            print("%6.2f%%  %s" % (100.0 * value / total, name))


if __name__ == "__main__":
    main()
