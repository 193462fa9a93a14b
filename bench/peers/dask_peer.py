#!/usr/bin/env python3
"""The standard workloads and the control-plane probes on Dask distributed, the peer Mini-Spark is
measured against: LocalCluster(n_workers=2, threads_per_worker=1), dask.bag for W1/W2,
dask.dataframe for W3/W4, written as a Dask user would.

  dask_peer.py W1 DATA OUT       word<TAB>count lines of DATA/text/*.txt into OUT/*.txt
  dask_peer.py W2 DATA OUT       the number of lines of DATA/text/*.txt matching /\\bth[a-z]*ing\\b/i into OUT/count
  dask_peer.py W3 DATA OUT       country<TAB>total of DATA/join into OUT/totals.tsv
  dask_peer.py W4 DATA OUT       DATA/sort/*.dat sorted by key into OUT/part-*.dat
  dask_peer.py W5 DATA OUT [N]   PageRank, N iterations (default 10), of DATA/graph/*.txt into OUT/part-00000.txt
  dask_peer.py tasks N           client.map over N trivial calls
  dask_peer.py roundtrip N       N single-task round trips (submit, result)

Prints one JSON line last: {"cluster_start_s", "work_s", ...}. Needs python3-distributed (Debian).
"""
import csv
import glob
import json
import os
import re
import statistics
import sys
import time


def inc(x):
    return x + 1


WORD_SPLIT = re.compile(r'[^a-z0-9]+')
GREP = re.compile(r'\bth[a-z]*ing\b', re.IGNORECASE | re.ASCII)


def tokens(line):
    return [w for w in WORD_SPLIT.split(line.lower()) if w]


def main():
    what = sys.argv[1]
    from dask.distributed import Client, LocalCluster
    tmp = os.environ.get('DASK_LOCAL_DIR')
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           **({'local_directory': tmp} if tmp else {}))
    client = Client(cluster)
    started = time.perf_counter()
    out = {'cluster_start_s': started - t0}
    try:
        if what in ('W1', 'W2', 'W3', 'W4'):
            data, dest = sys.argv[2], sys.argv[3]
            os.makedirs(dest, exist_ok=True)
            out.update(WORKLOADS[what](data, dest))
        elif what == 'W5':
            data, dest = sys.argv[2], sys.argv[3]
            os.makedirs(dest, exist_ok=True)
            out.update(w5(client, data, dest, int(sys.argv[4]) if len(sys.argv) > 4 else 10))
        elif what == 'tasks':
            n = int(sys.argv[2])
            client.gather(client.map(inc, range(100), pure=False))  # warm
            t = time.perf_counter()
            res = client.gather(client.map(inc, range(n), pure=False))
            out['tasks'] = n
            out['tasks_s'] = time.perf_counter() - t
            out['ok'] = sum(res) == n * (n + 1) // 2
        elif what == 'roundtrip':
            n = int(sys.argv[2])
            for i in range(5):
                client.submit(inc, i, pure=False).result()
            lat = []
            for i in range(n):
                t = time.perf_counter()
                client.submit(inc, i, pure=False).result()
                lat.append((time.perf_counter() - t) * 1000)
            out['roundtrip_ms_median'] = statistics.median(lat)
            out['roundtrip_ms_p90'] = sorted(lat)[int(0.9 * (len(lat) - 1))]
        else:
            raise SystemExit(f'unknown workload {what}')
        out['work_s'] = time.perf_counter() - started
    finally:
        client.close()
        cluster.close()
    print(json.dumps(out))


def w1(data, dest):
    import dask.bag as db
    counts = db.read_text(sorted(glob.glob(f'{data}/text/*.txt'))).map(tokens).flatten().frequencies()
    counts.map(lambda kv: f'{kv[0]}\t{kv[1]}').to_textfiles(f'{dest}/*.txt')
    return {}


def w2(data, dest):
    import dask.bag as db
    n = db.read_text(sorted(glob.glob(f'{data}/text/*.txt'))).filter(lambda line: GREP.search(line) is not None).count().compute()
    with open(f'{dest}/count', 'w') as f:
        f.write(f'{n}\n')
    return {'value': int(n)}


def w3(data, dest):
    import dask.dataframe as dd
    customers = dd.read_csv(f'{data}/join/customers.csv', dtype={'customer_id': 'int64', 'name': str, 'country': str})
    orders = dd.read_csv(f'{data}/join/orders.csv', dtype={'order_id': 'int64', 'customer_id': 'int64', 'amount': 'float64'})
    orders['cents'] = (orders.amount * 100).round().astype('int64')
    joined = orders.merge(customers[['customer_id', 'country']], on='customer_id', how='inner')
    totals = joined.groupby('country').cents.sum().compute()
    with open(f'{dest}/totals.tsv', 'w') as f:
        for country, cents in totals.items():
            f.write(f'{country}\t{cents // 100}.{cents % 100:02d}\n')
    return {}


def w4(data, dest):
    import dask.dataframe as dd
    records = dd.read_csv(sorted(glob.glob(f'{data}/sort/*.dat')), sep=' ', header=None, names=['key', 'payload'],
                          dtype=str, quoting=csv.QUOTE_NONE, na_filter=False, keep_default_na=False)
    records.set_index('key').to_csv(f'{dest}/part-*.dat', sep=' ', header=False, quoting=csv.QUOTE_NONE,
                                    name_function=lambda i: f'{i:05d}')
    return {}


def parse_edge(line):
    src, dst = line.split()
    return int(src), int(dst)


def out_links(kv):
    # (src, [(src, dst), ...]) -> (src, [distinct dsts]): distinct edges, grouped by src
    return kv[0], list(dict.fromkeys(dst for _, dst in kv[1]))


def contributions(kv, ranks):
    src, dsts = kv
    rank = 1.0 if ranks is None else ranks.get(src)
    if rank is None:
        return []
    share = rank / len(dsts)
    return [(dst, share) for dst in dsts]


def w5(client, data, dest, iterations):
    # PageRank as a dask.bag user writes it: links (distinct edges grouped by src) persisted on the
    # workers; each iteration maps them with the current ranks (a dict, sent to the workers once
    # per iteration) to contributions, sums them by destination with foldby, and brings the new
    # ranks back as a dict. Every src starts at rank 1.0.
    import dask
    import dask.bag as db
    from operator import add
    lines = db.read_text(sorted(glob.glob(f'{data}/graph/*.txt'))).map(str.strip).filter(bool)
    links = lines.map(parse_edge).groupby(lambda e: e[0], shuffle='tasks').map(out_links).persist()
    ranks = None
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        r = None if ranks is None else dask.delayed(ranks, traverse=False)
        sums = links.map(contributions, r).flatten().foldby(lambda kv: kv[0], lambda acc, kv: acc + kv[1], 0.0, add, 0.0)
        ranks = {node: 0.15 + 0.85 * s for node, s in sums.compute()}
        times.append(time.perf_counter() - t)
    with open(f'{dest}/part-00000.txt', 'w') as f:
        for node, rank in ranks.items():
            # 9 significant digits, as ref-pagerank.mjs writes them (verify.sh W5 rounds to 4 decimals)
            f.write(f'{node}\t{rank:.9g}\n')
    return {'iterations_s': times, 'nodes': len(ranks)}


WORKLOADS = {'W1': w1, 'W2': w2, 'W3': w3, 'W4': w4}

if __name__ == '__main__':
    main()
