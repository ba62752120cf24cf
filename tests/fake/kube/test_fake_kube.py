#!/usr/bin/env python3
"""Tests of rc_fake_kube (standard library only).

  test_fake_kube.py --server PATH --group contract|behaviour|scale

contract   replays the requests behind every captured response in
           data/contracts/ (a real kube-apiserver v1.19) and compares the
           fake's answer field by field; a difference prints its JSON path.
behaviour  authentication, denials, selectors, pages, apply, watches,
           controllers, deletion, faults and the /fake/ control API.
scale      10,000 ConfigMaps in 100 namespaces: create, page through,
           peak memory; prints the figures.
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRACTS = os.path.join(HERE, "data", "contracts")
ADMIN = "fake-admin-token"
BOB = "bob-token"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

failures = []
passes = 0


def ok(name):
    global passes
    passes += 1
    print("ok", name)


def fail(name, *lines):
    failures.append(name)
    print("FAIL", name)
    for line in lines:
        print("  ", line)


def check(name, cond, *lines):
    if cond:
        ok(name)
    else:
        fail(name, *lines)
    return cond


class Fake:
    """One rc_fake_kube process in a temporary directory."""

    def __init__(self, server, *extra):
        self.dir = tempfile.mkdtemp(prefix="rc-fake-kube-")
        self.proc = subprocess.Popen(
            [server, "--dir", self.dir, "--controller-delay-ms", "50",
             "--token", "bob=%s:deny=delete/deployments,deny=patch/secrets,"
             "deny=create/configmaps" % BOB, *extra])
        ready = os.path.join(self.dir, "ready")
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("rc_fake_kube did not start")
            time.sleep(0.02)
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.dir, "ca.pem"))
        self.conn = None

    def connect(self, timeout=30, ctx=None):
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=ctx or self.ctx, timeout=timeout)

    def raw(self, method, path, body=None, ctype="application/json",
            token=ADMIN, headers=None, conn=None):
        """(status, headers, bytes); a keep-alive connection is reused."""
        h = {"User-Agent": "rc-fake-kube-test/1.0"}
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            h["Content-Type"] = ctype
        h.update(headers or {})
        own = conn is None
        for attempt in range(2):
            c = conn
            if own:
                if self.conn is None:
                    self.conn = self.connect()
                c = self.conn
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                return r.status, r.headers, r.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                if not own or attempt:
                    raise
                self.conn.close()
                self.conn = None

    def call(self, method, path, body=None, **kw):
        status, _, data = self.raw(method, path, body, **kw)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")

    def apply(self, path, obj, manager="reconcile", extra="", **kw):
        sep = "&" if "?" in path else "?"
        q = "%sfieldManager=%s%s" % (sep, manager, extra) if manager else ""
        return self.call("PATCH", path + q, obj, ctype=APPLY, **kw)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "hung"
        shutil.rmtree(self.dir, ignore_errors=True)
        check("server exits 0 on SIGTERM", code == 0, "exit status %s" % code)


# ---- comparing with the captured responses ----

IGNORED = {"uid", "resourceVersion", "creationTimestamp", "time",
           "clusterIP", "clusterIPs", "continue", "lastUpdateTime",
           "lastTransitionTime", "lastProbeTime", "startTime",
           "completionTime"}


def normalise(s):
    s = re.sub(r'ReplicaSet "web-[a-z0-9]+"', 'ReplicaSet "web-HASH"', s)
    s = re.sub(r"too old resource version: (\d+) \(\d+\)",
               r"too old resource version: \1 (N)", s)
    return s


def diff(want, got, path="", out=None):
    """Differences between two JSON values as 'path: ...' lines."""
    out = [] if out is None else out
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k in IGNORED:
                continue
            if k not in got:
                out.append("%s.%s: missing (want %s)" % (path, k,
                                                          json.dumps(want[k])[:200]))
            else:
                diff(want[k], got[k], "%s.%s" % (path, k), out)
        for k in got:
            if k not in want and k not in IGNORED:
                out.append("%s.%s: unexpected %s" % (path, k,
                                                     json.dumps(got[k])[:200]))
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append("%s: %d items, want %d" % (path, len(got), len(want)))
        for i, (a, b) in enumerate(zip(want, got)):
            diff(a, b, "%s[%d]" % (path, i), out)
    elif isinstance(want, str) and isinstance(got, str):
        if normalise(want) != normalise(got):
            out.append("%s: %r, want %r" % (path, got, want))
    elif want != got or type(want) != type(got):
        out.append("%s: %s, want %s" % (path, json.dumps(got)[:200],
                                         json.dumps(want)[:200]))
    return out


def contract(name):
    with open(os.path.join(CONTRACTS, name)) as f:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in f if line.strip()]
        return json.load(f)


def compare(name, file, status, got, want_status):
    d = diff(contract(file), got)
    if status != want_status:
        d.insert(0, "HTTP %s, want %s" % (status, want_status))
    check(name, not d, *d[:20])


NS = "shop-staging"
DEPLOY = "/apis/apps/v1/namespaces/%s/deployments" % NS
WEB = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS, "labels": {
        "app.kubernetes.io/name": "web",
        "app.kubernetes.io/managed-by": "reconcile"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"containers": [{
                "name": "web",
                "image": "registry.example.com/shop/web:1.4.2",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "DEPLOYMENT_MODE", "value": "STAGING"}],
                "resources": {"requests": {"cpu": "500m",
                                           "memory": "256Mi"}}}]}}}}


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def settled(f, path, controlled):
    """The object once the controllers are done with it."""
    def stable():
        a = f.call("GET", path)[1]
        time.sleep(0.3)
        b = f.call("GET", path)[1]
        if a != b or (controlled and not b.get("status", {}).get(
                "conditions")):
            return None
        return b
    return wait_for(stable, timeout=20)


def group_contract(server):
    f = Fake(server)
    try:
        st, got = f.call("GET", "/version")
        compare("contract version.json", "version.json", st, got, 200)

        st, got = f.call("GET", "/api")
        want = contract("discovery-api.json")
        want["serverAddressByClientCIDRs"][0]["serverAddress"] = \
            "127.0.0.1:%d" % f.port
        d = diff(want, got)
        check("contract discovery-api.json", st == 200 and not d, *d)

        for path, file in (("/api/v1", "discovery-api-v1.json"),
                           ("/apis/apps/v1", "discovery-apis-apps-v1.json"),
                           ("/apis/coordination.k8s.io/v1",
                            "discovery-apis-coordination-v1.json")):
            st, got = f.call("GET", path)
            want = contract(file)
            entries = {r["name"]: r for r in want["resources"]}
            d = [] if st == 200 else ["HTTP %s" % st]
            top = {k: v for k, v in want.items() if k != "resources"}
            d += diff(top, {k: v for k, v in got.items() if k != "resources"})
            for r in got.get("resources", []):
                if r["name"] not in entries:
                    d.append("%s: not in the captured document" % r["name"])
                else:
                    d += diff(entries[r["name"]], r, "." + r["name"])
            names = [r["name"] for r in got.get("resources", [])]
            d += [] if names == sorted(names) else ["resources not sorted"]
            check("contract %s (the resources served)" % file,
                  not d and names, *d)

        st, got = f.call("GET", "/apis")
        want = {g["name"]: g for g in contract("discovery-apis.json")["groups"]}
        d = [] if st == 200 and got.get("kind") == "APIGroupList" else \
            ["HTTP %s %s" % (st, got)]
        for g in got.get("groups", []):
            w = want.get(g["name"])
            if g["name"] == "example.com":
                continue
            if not w:
                d.append("%s: not a captured group" % g["name"])
                continue
            if g["preferredVersion"] != w["preferredVersion"]:
                d.append("%s: preferredVersion" % g["name"])
            for v in g["versions"]:
                if v not in w["versions"]:
                    d.append("%s: version %s" % (g["name"], v))
        check("contract discovery-apis.json (the groups served)", not d, *d)

        st, got = f.call("POST", "/api/v1/namespaces",
                         {"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": NS}},
                         headers={"User-Agent": "curl/7.68.0"})
        compare("contract namespace-create-response.json",
                "namespace-create-response.json", st, got, 201)

        # the captured cluster had no nodes: the pods never became ready
        f.call("POST", "/fake/rollout",
               {"namespace": NS, "name": "web", "stall": True})
        st, got = f.apply(DEPLOY + "/web", WEB)
        compare("contract deployment-apply-create-response.json",
                "deployment-apply-create-response.json", st, got, 201)

        st, got = f.apply("/api/v1/namespaces/%s/services/web" % NS, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": NS, "labels": {
                "app.kubernetes.io/managed-by": "reconcile"}},
            "spec": {"selector": {"app.kubernetes.io/name": "web"},
                     "ports": [{"port": 80, "targetPort": 8080,
                                "protocol": "TCP"}]}})
        compare("contract service-apply-create-response.json",
                "service-apply-create-response.json", st, got, 201)
        check("a Service gets a cluster IP in 10.96.0.0/12",
              re.match(r"10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$",
                       got.get("spec", {}).get("clusterIP", "")), got)

        st, got = f.apply("/api/v1/namespaces/%s/configmaps/web-config" % NS, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": NS, "labels": {
                "app.kubernetes.io/managed-by": "reconcile"}},
            "data": {"DEPLOYMENT_MODE": "STAGING",
                     "AWS_S3_BUCKET": "shop-assets"}})
        compare("contract configmap-apply-create-response.json",
                "configmap-apply-create-response.json", st, got, 201)

        st, got = f.apply("/api/v1/namespaces/%s/secrets/web-secrets" % NS, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-secrets", "namespace": NS, "labels": {
                "app.kubernetes.io/managed-by": "reconcile"}},
            "type": "Opaque",
            "stringData": {"AWS_S3_ACCESSKEY": "example-not-a-secret"}})
        compare("contract secret-apply-create-response.json",
                "secret-apply-create-response.json", st, got, 201)

        got = wait_for(lambda: (lambda r: r if r.get("status", {}).get(
            "observedGeneration") else None)(f.call("GET", DEPLOY + "/web")[1]))
        compare("contract deployment-get-after-controller.json",
                "deployment-get-after-controller.json", 200, got, 200)

        web3 = json.loads(json.dumps(WEB))
        web3["spec"]["replicas"] = 3
        st, got = f.apply(DEPLOY + "/web", web3, extra="&dryRun=All")
        compare("contract deployment-apply-dryrun-response.json",
                "deployment-apply-dryrun-response.json", st, got, 200)
        st, live = f.call("GET", DEPLOY + "/web")
        check("a dry run stores nothing",
              live["spec"]["replicas"] == 2 and
              live["metadata"]["resourceVersion"] ==
              got["metadata"]["resourceVersion"], live["spec"])

        st, got = f.apply(DEPLOY + "/web", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 3}},
            manager="kubectl")
        compare("contract deployment-apply-conflict-409.json",
                "deployment-apply-conflict-409.json", st, got, 409)

        st, got = f.apply(DEPLOY + "/web", WEB, manager=None)
        compare("contract deployment-apply-no-fieldmanager-422.json",
                "deployment-apply-no-fieldmanager-422.json", st, got, 422)

        st, got = f.call("GET", DEPLOY + "/nope")
        compare("contract deployment-get-404.json", "deployment-get-404.json",
                st, got, 404)

        for i in range(1, 5):
            f.apply("/api/v1/namespaces/%s/configmaps/cfg-%d" % (NS, i), {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg-%d" % i, "labels": {
                    "app.kubernetes.io/managed-by": "reconcile"}},
                "data": {"k": "v%d" % i}})
        sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dreconcile"
        st, p1 = f.call("GET", "/api/v1/namespaces/%s/configmaps?%s&limit=2"
                        % (NS, sel))
        compare("contract configmap-list-page1.json", "configmap-list-page1.json",
                st, p1, 200)
        token = p1.get("metadata", {}).get("continue", "")
        st, p2 = f.call("GET", "/api/v1/namespaces/%s/configmaps?%s&limit=2"
                        "&continue=%s" % (NS, sel, token))
        compare("contract configmap-list-page2.json", "configmap-list-page2.json",
                st, p2, 200)

        def untoken(t):
            return json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
        for page, file in ((p1, "configmap-list-page1.json"),
                           (p2, "configmap-list-page2.json")):
            want = untoken(contract(file)["metadata"]["continue"])
            got = untoken(page["metadata"].get("continue", "e30"))
            check("continue token of %s has the real shape" % file,
                  set(want) == set(got) and want["v"] == got["v"] and
                  want["start"] == got["start"] and
                  str(got["rv"]) == page["metadata"]["resourceVersion"],
                  got, want)

        conn = f.connect(timeout=10)
        conn.request("GET", "/api/v1/namespaces/%s/configmaps?watch=1"
                     "&resourceVersion=1" % NS,
                     headers={"Authorization": "Bearer " + ADMIN})
        r = conn.getresponse()
        line = r.readline()
        conn.close()
        want = contract("configmap-watch-expired-410.jsonl")[0]
        d = diff(want, json.loads(line or b"{}"))
        if r.status != 200:
            d.insert(0, "HTTP %s" % r.status)
        check("contract configmap-watch-expired-410.jsonl", not d, *d)

        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "reconcile-controller", "namespace": NS},
                 "spec": {"holderIdentity": "reconcile-0",
                          "leaseDurationSeconds": 15,
                          "acquireTime": "2026-11-22T01:52:00.000000Z",
                          "renewTime": "2026-11-22T01:52:00.000000Z",
                          "leaseTransitions": 0}}
        leases = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
        curl = {"User-Agent": "curl/7.68.0"}
        st, got = f.call("POST", leases, lease, headers=curl)
        compare("contract lease-create-response.json", "lease-create-response.json",
                st, got, 201)
        st, got = f.call("POST", leases, lease, headers=curl)
        compare("contract lease-create-exists-409.json",
                "lease-create-exists-409.json", st, got, 409)
        stale = json.loads(json.dumps(lease))
        stale["metadata"]["resourceVersion"] = "1"
        st, got = f.call("PUT", leases + "/reconcile-controller", stale,
                         headers=curl)
        compare("contract lease-update-stale-409.json",
                "lease-update-stale-409.json", st, got, 409)
    finally:
        f.stop()


# ---- behaviour ----

def cm(name, ns="ns", labels=None, data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns,
                         "labels": labels or {}},
            "data": data or {}}


def job_of(name, container, image, command):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": container, "image": image,
                                "command": command}]}}}}


def names(lst):
    return [i["metadata"]["name"] for i in lst.get("items", [])]


def group_behaviour(server):
    f = Fake(server)
    try:
        behaviour_auth(f)
        behaviour_selectors_pages(f)
        behaviour_apply(f)
        behaviour_validation(f)
        behaviour_watch(f)
        behaviour_controllers(f)
        behaviour_delete(f)
        behaviour_slow_gc(f)
        behaviour_patches_kinds(f)
        behaviour_faults_control(f)
    finally:
        f.stop()
    behaviour_mix(server)


def behaviour_mix(server):
    """Random faults (../faultmix.py): a seeded mix at a rate, counted per
    kind, in the request log with times; 410 Gone only on watches."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faultmix
    logdir = tempfile.mkdtemp(prefix="rc-fake-kube-log-")
    f = Fake(server, "--log", os.path.join(logdir, "requests.log"))

    class Api:
        port, log = f.port, os.path.join(logdir, "requests.log")

        @staticmethod
        def control(method, path, body=None):
            return f.call(method, path, body)[1]

    def note(cond, what):
        check("mix: " + what.split(" ")[0], cond, what)
    try:
        st, got = f.call("POST", "/fake/faults", {"rules": [{"match": "* /api", "rate": 0.5, "kinds": ["nope"]}]})
        check("mix: an unknown kind is refused", st == 400, got)
        faultmix.selftest(Api, {"match": "GET /api/v1/namespaces/default", "rate": 0.5, "seed": 7, "hang_ms": 400},
                          "GET", "/api/v1/namespaces/default",
                          lambda: {"Authorization": "Bearer " + ADMIN}, None, note,
                          post_rule=lambda r: f.call("POST", "/fake/faults", {"rules": [r]}),
                          connect=lambda t: f.connect(timeout=t))
        f.call("POST", "/fake/faults", {"rules": [{"match": "GET /api/v1/configmaps", "rate": 1, "kinds": ["gone", "shape"]}]})
        st, body = f.call("GET", "/api/v1/configmaps?watch=1&timeoutSeconds=1")
        check("mix: a watch gets 410 Gone as an ERROR event", st == 200 and isinstance(body, dict) and
              body.get("type") == "ERROR" and body["object"].get("code") == 410, body)
        st, body = f.call("GET", "/api/v1/configmaps")
        check("mix: only a watch gets Gone", st == 200 and body == [42], body)
        stats = f.call("GET", "/fake/stats")[1]
        check("mix: counted", stats.get("faults") == {"gone": 1, "shape": 1}, stats)
        log = open(Api.log).read()
        check("mix: the log has times and kinds", re.search(r"^GET /api/v1/configmaps 200 t=\d+ fault=gone$", log, re.M)
              and "/fake/" not in log and ADMIN not in log, log[-300:])
    finally:
        f.stop()
        shutil.rmtree(logdir, ignore_errors=True)


def behaviour_auth(f):
    st, got = f.call("POST", "/api/v1/namespaces",
                     {"metadata": {"name": "ns", "namespace": "x"}})
    check("a cluster object has no namespace", st == 201 and
          "namespace" not in got["metadata"], st, got)
    for token in (None, "wrong"):
        st, got = f.call("GET", "/api/v1/namespaces", token=token)
        check("401 with token %s" % token, st == 401 and got == {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized",
            "reason": "Unauthorized", "code": 401}, st, got)

    ctx = ssl.create_default_context(cafile=os.path.join(f.dir, "ca.pem"))
    ctx.load_cert_chain(os.path.join(f.dir, "client.crt"),
                        os.path.join(f.dir, "client.key"))
    c = f.connect(ctx=ctx)
    st, _, body = f.raw("GET", "/api/v1/namespaces/ns", token=None, conn=c)
    c.close()
    check("the client certificate authenticates", st == 200, st, body[:200])

    f.apply("/apis/apps/v1/namespaces/ns/deployments/web",
            dict(WEB, metadata={"name": "web"}))
    st, got = f.call("DELETE", "/apis/apps/v1/namespaces/ns/deployments/web",
                     token=BOB)
    check("403 for a denied delete, with the real message", st == 403 and got == {
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "web" is forbidden: User "bob" cannot '
                   'delete resource "deployments" in API group "apps" in the '
                   'namespace "ns"',
        "reason": "Forbidden",
        "details": {"name": "web", "group": "apps", "kind": "deployments"},
        "code": 403}, st, got)
    st, got = f.call("POST", "/api/v1/namespaces/ns/configmaps",
                     cm("x"), token=BOB)
    check("403 without a name", st == 403 and got["message"] ==
          'configmaps is forbidden: User "bob" cannot create resource '
          '"configmaps" in API group "" in the namespace "ns"' and
          got["details"] == {"kind": "configmaps"}, st, got)
    st, got = f.call("PATCH", "/api/v1/namespaces/ns/secrets/s", {},
                     ctype=MERGE, token=BOB)
    check("403 for a denied patch", st == 403 and 'cannot patch resource '
          '"secrets"' in got["message"], st, got)
    st, _ = f.call("GET", "/apis/apps/v1/namespaces/ns/deployments/web",
                   token=BOB)
    check("what is not denied is allowed", st == 200, st)
    st, _ = f.call("GET", "/fake/stats", token=BOB)
    check("the control API needs the admin token", st == 403, st)


def behaviour_selectors_pages(f):
    f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "sel"}})
    specs = {"a": {"tier": "web", "env": "prod"},
             "b": {"tier": "db", "env": "prod"},
             "c": {"tier": "web"},
             "d": {}}
    for n, labels in specs.items():
        f.call("POST", "/api/v1/namespaces/sel/configmaps",
               cm(n, "sel", labels))
    cases = [("tier=web", ["a", "c"]), ("tier==web", ["a", "c"]),
             ("tier!=web", ["b", "d"]), ("env", ["a", "b"]),
             ("!env", ["c", "d"]), ("tier in (web,db)", ["a", "b", "c"]),
             ("tier notin (web)", ["b", "d"]), ("tier=web,env=prod", ["a"]),
             ("tier=web,!env", ["c"])]
    for sel, want in cases:
        q = urlquote(sel)
        st, got = f.call("GET", "/api/v1/namespaces/sel/configmaps"
                         "?labelSelector=" + q)
        check("label selector %s" % sel, st == 200 and names(got) == want,
              names(got) if st == 200 else got)
    st, got = f.call("GET", "/api/v1/namespaces/sel/configmaps?labelSelector="
                     "tier+in+%28web%2Cdb%29")
    check("'+' is a space in a query, as Go reads it",
          names(got) == ["a", "b", "c"], got)
    st, got = f.call("GET", "/api/v1/namespaces/sel/configmaps?labelSelector="
                     + urlquote("tier in web"))
    check("a bad selector is a 400", st == 400 and got["reason"] ==
          "BadRequest", st, got)
    st, got = f.call("GET", "/api/v1/namespaces/sel/configmaps?fieldSelector="
                     + urlquote("metadata.name=b"))
    check("field selector metadata.name", names(got) == ["b"], got)

    for i in range(5):
        f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "p%d" % i}})
        for j in range(50):
            f.call("POST", "/api/v1/namespaces/p%d/configmaps" % i,
                   cm("c%03d" % j, "p%d" % i, {"page": "yes"}))
    seen, pages, token, remaining = [], 0, "", []
    while True:
        st, got = f.call("GET", "/api/v1/configmaps?limit=100&continue=" +
                         token)
        if st != 200:
            fail("paging", got)
            break
        pages += 1
        seen += [(i["metadata"]["namespace"], i["metadata"]["name"])
                 for i in got["items"]]
        remaining.append(got["metadata"].get("remainingItemCount"))
        token = got["metadata"].get("continue", "")
        if not token:
            break
    total = len(seen)
    check("paging over every namespace: all items once, in key order",
          len(set(seen)) == total and total >= 254 and
          seen == sorted(seen, key=lambda x: x[0] + "/" + x[1]) and
          pages == (total + 99) // 100, total, pages)
    check("remainingItemCount counts what is left",
          remaining[0] == total - 100 and remaining[-1] is None, remaining)
    st, got = f.call("GET", "/api/v1/namespaces/p3/configmaps?limit=20"
                     "&labelSelector=page%3Dyes")
    check("a labelled page has no remainingItemCount",
          len(got["items"]) == 20 and "remainingItemCount" not in
          got["metadata"] and got["metadata"].get("continue"), got["metadata"])
    st, got = f.call("GET", "/api/v1/configmaps?limit=10&resourceVersion=0")
    check("resourceVersion=0 ignores limit (the watch cache)",
          len(got["items"]) == total and "continue" not in got["metadata"],
          len(got["items"]))
    st, got = f.call("GET", "/api/v1/configmaps?limit=10&continue=bad")
    check("a bad continue token is a 400", st == 400, st, got)


def urlquote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def behaviour_apply(f):
    path = "/api/v1/namespaces/ns/configmaps/app"
    st, one = f.apply(path, cm("app", labels={"a": "1", "b": "2"},
                               data={"x": "1", "y": "2"}))
    check("apply creates (201)", st == 201, st, one)
    st, again = f.apply(path, cm("app", labels={"a": "1", "b": "2"},
                                 data={"x": "1", "y": "2"}))
    check("re-applying the same keeps resourceVersion and managedFields",
          st == 200 and again["metadata"]["resourceVersion"] ==
          one["metadata"]["resourceVersion"] and
          again["metadata"]["managedFields"] ==
          one["metadata"]["managedFields"], st, again["metadata"])

    st, got = f.call("PATCH", path + "?fieldManager=editor",
                     {"data": {"z": "3"}}, ctype=MERGE)
    mf = {m["manager"]: m for m in got["metadata"]["managedFields"]}
    check("a merge patch records an Update entry for its manager",
          mf.get("editor", {}).get("operation") == "Update" and
          mf["editor"]["fieldsV1"] == {"f:data": {"f:z": {}}}, mf)

    st, got = f.apply(path, cm("app", labels={"a": "1"}, data={"x": "1"}))
    check("apply removes what the manager no longer applies, keeps others'",
          got["data"] == {"x": "1", "z": "3"} and
          got["metadata"]["labels"] == {"a": "1"}, got)

    st, got = f.call("PUT", path + "?fieldManager=putter",
                     dict(cm("app", data={"x": "1", "z": "3", "w": "4"}),
                          metadata={"name": "app", "labels": {"a": "1"}}))
    mf = {m["manager"]: m for m in got["metadata"]["managedFields"]}
    check("PUT records an Update entry", st == 200 and
          mf.get("putter", {}).get("fieldsV1") == {"f:data": {"f:w": {}}},
          st, mf)

    dp = "/apis/apps/v1/namespaces/ns/deployments/gen"
    d = json.loads(json.dumps(WEB))
    d["metadata"] = {"name": "gen"}
    st, g1 = f.apply(dp, d)
    d["metadata"]["labels"] = {"only": "metadata"}
    st, g2 = f.apply(dp, d)
    d["spec"]["replicas"] = 5
    st, g3 = f.apply(dp, d)
    check("generation: 1, unchanged by a label, bumped by the spec",
          (g1["metadata"]["generation"], g2["metadata"]["generation"],
           g3["metadata"]["generation"]) == (1, 1, 2),
          g1["metadata"].get("generation"), g2["metadata"].get("generation"),
          g3["metadata"].get("generation"))
    del d["spec"]["template"]["spec"]["containers"][0]["env"]
    st, g4 = f.apply(dp, d)
    check("apply removes a keyed list item no longer applied",
          "env" not in g4["spec"]["template"]["spec"]["containers"][0] and
          g4["spec"]["template"]["spec"]["containers"][0][
              "terminationMessagePath"] == "/dev/termination-log", g4["spec"])

    st, got = f.call("PATCH", dp + "?fieldManager=kubectl-client-side-apply",
                     {"spec": {"replicas": 7}}, ctype=MERGE)
    st, got = f.apply(dp, d)
    check("apply over an Update manager's field: 409 naming it", st == 409 and
          got["message"] == 'Apply failed with 1 conflict: conflict with '
          '"kubectl-client-side-apply" using apps/v1: .spec.replicas' and
          got["details"]["causes"] == [{
              "reason": "FieldManagerConflict",
              "message": 'conflict with "kubectl-client-side-apply" using '
                         'apps/v1', "field": ".spec.replicas"}], st, got)
    st, got = f.apply(dp, d, extra="&force=true")
    mf = {m["manager"]: m for m in got["metadata"]["managedFields"]}
    check("force=true takes the field over", st == 200 and
          got["spec"]["replicas"] == 5 and "kubectl-client-side-apply"
          not in mf, st, mf.keys())

    st, got = f.apply(dp, d, manager="other")
    mf = {m["manager"]: m for m in got["metadata"]["managedFields"]}
    check("applying the same values shares ownership without conflict",
          st == 200 and "other" in mf, st, got)


def behaviour_validation(f):
    base = "/apis/apps/v1/namespaces/ns/deployments"

    def dep(name, mutate):
        d = json.loads(json.dumps(WEB))
        d["metadata"] = {"name": name}
        mutate(d)
        return d

    cases = [
        ("missing name", "POST", "/api/v1/namespaces/ns/configmaps",
         {"data": {}},
         'ConfigMap "" is invalid: metadata.name: Required value: name or '
         'generateName is required',
         [("FieldValueRequired", "metadata.name")]),
        ("a name that is not DNS-1123", "POST",
         "/api/v1/namespaces/ns/configmaps", {"metadata": {"name": "Web_1"}},
         'ConfigMap "Web_1" is invalid: metadata.name: Invalid value: '
         '"Web_1": a DNS-1123 subdomain must consist of lower case '
         "alphanumeric characters, '-' or '.', and must start and end with "
         "an alphanumeric character (e.g. 'example.com', regex used for "
         "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"
         "([-a-z0-9]*[a-z0-9])?)*')",
         [("FieldValueInvalid", "metadata.name")]),
        ("a Deployment without selector", "POST", base,
         dep("nosel", lambda d: d["spec"].pop("selector")),
         'Deployment.apps "nosel" is invalid: [spec.selector: Required '
         'value, spec.template.metadata.labels: Invalid value: '
         'map[string]string{"app.kubernetes.io/name":"web"}: `selector` does '
         'not match template `labels`]',
         [("FieldValueRequired", "spec.selector"),
          ("FieldValueInvalid", "spec.template.metadata.labels")]),
        ("a selector that does not match", "POST", base,
         dep("mismatch", lambda d: d["spec"]["selector"].update(
             matchLabels={"app": "other"})),
         'Deployment.apps "mismatch" is invalid: spec.template.metadata.'
         'labels: Invalid value: map[string]string{"app.kubernetes.io/name":'
         '"web"}: `selector` does not match template `labels`',
         [("FieldValueInvalid", "spec.template.metadata.labels")]),
        ("a container without image", "POST", base,
         dep("noimage", lambda d: d["spec"]["template"]["spec"][
             "containers"][0].pop("image")),
         'Deployment.apps "noimage" is invalid: spec.template.spec.'
         'containers[0].image: Required value',
         [("FieldValueRequired", "spec.template.spec.containers[0].image")]),
        ("negative replicas", "POST", base,
         dep("neg", lambda d: d["spec"].update(replicas=-1)),
         'Deployment.apps "neg" is invalid: spec.replicas: Invalid value: '
         '-1: must be greater than or equal to 0',
         [("FieldValueInvalid", "spec.replicas")]),
        ("a Service port out of range", "POST",
         "/api/v1/namespaces/ns/services",
         {"metadata": {"name": "svc"},
          "spec": {"ports": [{"port": 70000, "targetPort": 8080}]}},
         'Service "svc" is invalid: spec.ports[0].port: Invalid value: '
         '70000: must be between 1 and 65535, inclusive',
         [("FieldValueInvalid", "spec.ports[0].port")]),
    ]
    for name, method, path, body, msg, causes in cases:
        st, got = f.call(method, path, body)
        got_causes = [(c.get("reason"), c.get("field")) for c in
                      got.get("details", {}).get("causes", [])] \
            if isinstance(got, dict) else []
        check("422 " + name, st == 422 and got.get("message") == msg and
              got.get("reason") == "Invalid" and got_causes == causes,
              st, got.get("message") if isinstance(got, dict) else got,
              got_causes)
    st, got = f.call("POST", "/api/v1/namespaces/ns/configmaps",
                     cm("dup"))
    st, got = f.call("POST", "/api/v1/namespaces/ns/configmaps", cm("dup"))
    check("409 AlreadyExists", st == 409 and got["message"] ==
          'configmaps "dup" already exists' and got["details"] ==
          {"name": "dup", "kind": "configmaps"}, st, got)
    st, got = f.call("POST", "/api/v1/namespaces/nope/configmaps",
                     cm("x", "nope"))
    check("a missing namespace is a 404", st == 404 and got["message"] ==
          'namespaces "nope" not found', st, got)
    stale = cm("dup")
    stale["metadata"]["resourceVersion"] = "2"
    st, got = f.call("PUT", "/api/v1/namespaces/ns/configmaps/dup", stale)
    check("PUT with a stale resourceVersion is a 409", st == 409 and
          got["reason"] == "Conflict", st, got)


def read_events(r, n, timeout=5):
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        line = r.readline()
        if not line:
            break
        out.append(json.loads(line))
    return out


def behaviour_watch(f):
    f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "w"}})
    st, lst = f.call("GET", "/api/v1/namespaces/w/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    conn = f.connect(timeout=10)
    conn.request("GET", "/api/v1/namespaces/w/configmaps?watch=true&"
                 "resourceVersion=%s" % rv,
                 headers={"Authorization": "Bearer " + ADMIN})
    r = conn.getresponse()
    sel = f.connect(timeout=10)
    sel.request("GET", "/api/v1/namespaces/w/configmaps?watch=1&"
                "resourceVersion=%s&labelSelector=keep%%3Dyes" % rv,
                headers={"Authorization": "Bearer " + ADMIN})
    rs = sel.getresponse()
    f.call("POST", "/api/v1/namespaces/w/configmaps",
           cm("one", "w", {"keep": "yes"}))
    f.call("PATCH", "/api/v1/namespaces/w/configmaps/one",
           {"metadata": {"labels": {"keep": "no"}}}, ctype=MERGE)
    f.call("DELETE", "/api/v1/namespaces/w/configmaps/one")
    evs = read_events(r, 3)
    check("watch streams ADDED, MODIFIED, DELETED in order",
          r.status == 200 and [e["type"] for e in evs] ==
          ["ADDED", "MODIFIED", "DELETED"] and
          all(e["object"]["metadata"]["name"] == "one" for e in evs) and
          int(evs[2]["object"]["metadata"]["resourceVersion"]) >
          int(evs[1]["object"]["metadata"]["resourceVersion"]),
          [e["type"] for e in evs])
    evs = read_events(rs, 2)
    check("a selector watch sees an object leave as DELETED",
          [e["type"] for e in evs] == ["ADDED", "DELETED"],
          [e["type"] for e in evs])
    conn.close()
    sel.close()

    f.call("POST", "/fake/compact")
    conn = f.connect(timeout=10)
    conn.request("GET", "/api/v1/namespaces/w/configmaps?watch=1&"
                 "resourceVersion=%s" % rv,
                 headers={"Authorization": "Bearer " + ADMIN})
    r = conn.getresponse()
    evs = read_events(r, 1)
    conn.close()
    check("after /fake/compact an old resourceVersion gets the 410 event",
          r.status == 200 and evs and evs[0]["type"] == "ERROR" and
          evs[0]["object"]["code"] == 410 and
          evs[0]["object"]["reason"] == "Expired", evs)

    conn = f.connect(timeout=10)
    conn.request("GET", "/api/v1/namespaces/sel/configmaps?watch=1&"
                 "timeoutSeconds=1",
                 headers={"Authorization": "Bearer " + ADMIN})
    r = conn.getresponse()
    t0 = time.time()
    body = r.read()
    conn.close()
    check("a watch without resourceVersion starts with ADDED for each "
          "object and ends at timeoutSeconds",
          len(body.splitlines()) == 4 and 0.8 < time.time() - t0 < 5,
          len(body.splitlines()), time.time() - t0)

    st, lst = f.call("GET", "/api/v1/namespaces/w/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    conn = f.connect(timeout=10)
    conn.request("GET", "/api/v1/namespaces/w/configmaps?watch=1&"
                 "resourceVersion=%s&allowWatchBookmarks=true&"
                 "timeoutSeconds=2" % rv,
                 headers={"Authorization": "Bearer " + ADMIN})
    r = conn.getresponse()
    f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "w2"}})
    body = r.read()
    conn.close()
    evs = [json.loads(l) for l in body.splitlines()]
    st, ns = f.call("GET", "/api/v1/namespaces/w2")
    check("allowWatchBookmarks: a BOOKMARK every second and one before "
          "timeoutSeconds ends the watch, at the resourceVersion reached",
          len(evs) >= 2 and all(e["type"] == "BOOKMARK" and
                                e["object"]["kind"] == "ConfigMap" and
                                e["object"]["apiVersion"] == "v1"
                                for e in evs) and
          evs[-1]["object"]["metadata"]["resourceVersion"] ==
          ns["metadata"]["resourceVersion"],
          evs, ns["metadata"]["resourceVersion"])


def behaviour_controllers(f):
    dp = "/apis/apps/v1/namespaces/ns/deployments"
    d = json.loads(json.dumps(WEB))
    d["metadata"] = {"name": "ctl"}
    st, got = f.apply(dp + "/ctl", d)

    def ready():
        s = f.call("GET", dp + "/ctl")[1]
        return s if s.get("status", {}).get("availableReplicas") == 2 else None
    got = wait_for(ready)
    conds = {c["type"]: c for c in (got or {}).get("status", {}).get(
        "conditions", [])}
    check("the deployment controller reports a finished rollout",
          got and got["status"]["observedGeneration"] == 1 and
          got["status"]["readyReplicas"] == 2 and
          got["status"]["updatedReplicas"] == 2 and
          conds["Available"]["status"] == "True" and
          conds["Available"]["reason"] == "MinimumReplicasAvailable" and
          conds["Progressing"]["reason"] == "NewReplicaSetAvailable" and
          re.match(r'ReplicaSet "ctl-[a-z0-9]+" has successfully progressed\.',
                   conds["Progressing"]["message"]) and
          got["metadata"]["generation"] == 1, got and got.get("status"))
    mf = [m["manager"] for m in got["metadata"]["managedFields"]]
    check("status is written by kube-controller-manager (Update)",
          mf == ["reconcile", "kube-controller-manager"], mf)

    # idempotence where the server adds things: status, cluster IPs,
    # stringData turned into data, Job selectors
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "idem"},
           "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "idem"},
           "stringData": {"k": "v"}}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "idem"},
           "spec": {"template": {"spec": {
               "restartPolicy": "Never",
               "containers": [{"name": "m", "image": "tool:1",
                               "command": ["true"]}]}}}}
    for path, obj in ((dp + "/ctl", d),
                      ("/api/v1/namespaces/ns/services/idem", svc),
                      ("/api/v1/namespaces/ns/secrets/idem", sec),
                      ("/apis/batch/v1/namespaces/ns/jobs/idem", job)):
        f.apply(path, obj)
        before = settled(f, path, obj["kind"] in ("Deployment", "Job"))
        time.sleep(1.1)  # a managedFields time would differ now
        st, after = f.apply(path, obj)
        check("re-applying %s changes nothing" % obj["kind"], st == 200 and
              after == before, before["metadata"]["resourceVersion"],
              after.get("metadata", after).get("resourceVersion"),
              diff(before, after))

    f.call("POST", "/fake/rollout", {"namespace": "ns", "name": "ctl",
                                     "fail": True})
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    f.apply(dp + "/ctl", d)

    def failed():
        s = f.call("GET", dp + "/ctl")[1]
        c = {c["type"]: c for c in s.get("status", {}).get("conditions", [])}
        return s if c.get("Progressing", {}).get("status") == "False" and \
            s["status"].get("observedGeneration") == 2 else None
    got = wait_for(failed)
    conds = {c["type"]: c for c in (got or {}).get("status", {}).get(
        "conditions", [])}
    check("a failing rollout: ProgressDeadlineExceeded",
          got and conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
          and re.match(r'ReplicaSet "ctl-[a-z0-9]+" has timed out progressing\.',
                       conds["Progressing"]["message"]) and
          got["status"]["unavailableReplicas"] == 2 and
          got["status"]["observedGeneration"] == 2 and
          got["metadata"]["annotations"][
              "deployment.kubernetes.io/revision"] == "2",
          got and got.get("status"))

    jobs = "/apis/batch/v1/namespaces/ns/jobs"
    job = job_of("migrate", "m", "tool:1", ["migrate", "--all"])
    st, got = f.call("POST", jobs, job)
    check("Job defaults", st == 201 and got["spec"]["backoffLimit"] == 6 and
          got["spec"]["completions"] == 1 and
          got["spec"]["parallelism"] == 1 and
          got["spec"]["selector"]["matchLabels"]["controller-uid"] ==
          got["metadata"]["uid"] and
          got["spec"]["template"]["metadata"]["labels"]["job-name"] ==
          "migrate" and got["metadata"]["labels"]["job-name"] == "migrate",
          st, got)
    job["metadata"]["name"] = "boom"
    job["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "sh", "-c", "exit 1 # fail"]
    f.call("POST", jobs, job)

    def done(name):
        s = f.call("GET", jobs + "/" + name)[1]
        return s if s.get("status", {}).get("conditions") else None
    ok_job, bad_job = wait_for(lambda: done("migrate")), wait_for(
        lambda: done("boom"))
    check("a Job completes", ok_job and ok_job["status"]["succeeded"] == 1 and
          ok_job["status"]["conditions"][0]["type"] == "Complete" and
          "completionTime" in ok_job["status"], ok_job)
    check("a Job whose command says fail fails",
          bad_job and bad_job["status"]["conditions"][0]["type"] == "Failed"
          and bad_job["status"]["conditions"][0]["reason"] ==
          "BackoffLimitExceeded", bad_job)
    job["metadata"]["name"] = "nap"
    job["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "sh", "-c", "sleep 2"]
    f.call("POST", jobs, job)
    active = wait_for(lambda: (f.call("GET", jobs + "/nap")[1].get("status")
                               or {}).get("active") and
                      f.call("GET", jobs + "/nap")[1])
    check("a Job that sleeps is active first", active and
          not active["status"].get("conditions") and
          "startTime" in active["status"], active)
    napped = wait_for(lambda: done("nap"), 30)
    check("then completes", napped and
          napped["status"]["conditions"][0]["type"] == "Complete", napped)
    st, pods = f.call("GET", "/api/v1/namespaces/ns/pods?labelSelector="
                      "job-name%3Dmigrate")
    check("the Job's pod carries job-name", st == 200 and len(pods["items"])
          == 1 and re.match(r"migrate-[a-z0-9]{5}$",
                            pods["items"][0]["metadata"]["name"]), pods)
    if pods.get("items"):
        pod = pods["items"][0]["metadata"]["name"]
        st, _, log = f.raw("GET", "/api/v1/namespaces/ns/pods/%s/log"
                           "?tailLines=10" % pod)
        check("the pod log: argv and exit status", st == 200 and
              log == b"migrate --all\nexit status 0\n", st, log)
        st, _, log = f.raw("GET", "/api/v1/namespaces/ns/pods/%s/log"
                           "?tailLines=1" % pod)
        check("tailLines", log == b"exit status 0\n", log)
    st, pods = f.call("GET", "/api/v1/namespaces/ns/pods?labelSelector="
                      "job-name%3Dboom")
    pod = pods["items"][0]["metadata"]["name"] if pods.get("items") else "x"
    st, _, log = f.raw("GET", "/api/v1/namespaces/ns/pods/%s/log" % pod)
    check("a failed pod's log ends in exit status 1",
          log.endswith(b"exit status 1\n"), log)


def behaviour_delete(f):
    dp = "/apis/apps/v1/namespaces/ns/deployments"
    for name in ("fg", "bg"):
        d = json.loads(json.dumps(WEB))
        d["metadata"] = {"name": name}
        f.apply(dp + "/" + name, d)
    st, got = f.call("DELETE", dp + "/bg?propagationPolicy=Background")
    check("a background delete answers Status Success", st == 200 and
          got.get("status") == "Success" and got["details"]["name"] == "bg" and
          got["details"]["kind"] == "deployments", got)
    st, got = f.call("DELETE", dp + "/fg",
                     {"kind": "DeleteOptions", "apiVersion": "v1",
                      "propagationPolicy": "Foreground"})
    check("a foreground delete answers the object, being deleted",
          st == 200 and got.get("kind") == "Deployment" and
          "deletionTimestamp" in got["metadata"] and
          "foregroundDeletion" in got["metadata"]["finalizers"], got)
    gone = wait_for(lambda: f.call("GET", dp + "/fg")[0] == 404)
    check("... and then it is gone", gone)

    f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    f.call("POST", "/api/v1/namespaces/doomed/configmaps", cm("c", "doomed"))
    st, got = f.call("DELETE", "/api/v1/namespaces/doomed")
    check("deleting a namespace: Terminating", st == 200 and
          got["status"]["phase"] == "Terminating", got)
    st, got = f.call("POST", "/api/v1/namespaces/doomed/configmaps",
                     cm("d", "doomed"))
    check("no new content in a terminating namespace", st == 403 and
          "because it is being terminated" in got.get("message", ""), st, got)
    gone = wait_for(lambda: f.call("GET", "/api/v1/namespaces/doomed")[0] ==
                    404)
    st, got = f.call("GET", "/api/v1/namespaces/doomed/configmaps")
    check("the namespace and its objects go", gone and got["items"] == [],
          got)
    st, got = f.call("DELETE", dp + "/nope")
    check("deleting what is not there is a 404", st == 404, st)

    held = cm("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    f.call("POST", "/api/v1/namespaces/ns/configmaps", held)
    st, got = f.call("DELETE", "/api/v1/namespaces/ns/configmaps/held")
    check("a finalizer holds a deleted object", st == 200 and
          "deletionTimestamp" in got.get("metadata", {}), st, got)
    st, got = f.call("POST", "/api/v1/namespaces/ns/configmaps", cm("held"))
    check("creating it again: 409 object is being deleted", st == 409 and
          got["message"] == 'object is being deleted: configmaps "held" '
          'already exists', st, got)
    st, got = f.call("PATCH", "/api/v1/namespaces/ns/configmaps/held",
                     {"metadata": {"finalizers": None}}, ctype=MERGE)
    st2, _ = f.call("GET", "/api/v1/namespaces/ns/configmaps/held")
    check("removing the last finalizer deletes it", st == 200 and st2 == 404,
          st, st2, got)


def behaviour_slow_gc(f):
    """The garbage collector and the namespace controller slowed down
    (/fake/gc), and finalizers that hold deletions."""
    st, got = f.call("POST", "/fake/gc", {"delay_ms": "soon"})
    check("a bad gc delay is a 400", st == 400, st, got)
    st, got = f.call("POST", "/fake/gc", {"delay_ms": 600})
    check("/fake/gc sets the delay", st == 200 and got == {"delay_ms": 600} and
          f.call("GET", "/fake/gc")[1] == {"delay_ms": 600}, st, got)
    fg = {"kind": "DeleteOptions", "apiVersion": "v1",
          "propagationPolicy": "Foreground"}

    dp = "/apis/apps/v1/namespaces/ns/deployments/slow"
    d = json.loads(json.dumps(WEB))
    d["metadata"] = {"name": "slow"}
    f.apply(dp, d)
    t0 = time.time()
    st, got = f.call("DELETE", dp, fg)
    check("a slowed foreground delete answers the object, terminating",
          st == 200 and "deletionTimestamp" in got["metadata"] and
          got["metadata"]["finalizers"] == ["foregroundDeletion"], st, got)
    time.sleep(0.3)
    st, got = f.call("GET", dp)
    check("... GET still returns it, with deletionTimestamp and finalizer",
          st == 200 and "deletionTimestamp" in got["metadata"] and
          got["metadata"]["finalizers"] == ["foregroundDeletion"], st, got)
    gone = wait_for(lambda: f.call("GET", dp)[0] == 404, timeout=5)
    took = time.time() - t0
    check("... and it goes once the delay has passed", gone and took >= 0.55,
          gone, took)

    # a Job's pod that a finalizer holds keeps the Job
    jobs = "/apis/batch/v1/namespaces/ns/jobs"
    f.call("POST", jobs, job_of("held", "c", "busybox:1.36", ["true"]))
    pods = wait_for(lambda: f.call(
        "GET", "/api/v1/namespaces/ns/pods?labelSelector=job-name%3Dheld"
    )[1].get("items"))
    pod = "/api/v1/namespaces/ns/pods/" + (
        pods[0]["metadata"]["name"] if pods else "none")
    f.call("PATCH", pod, {"metadata": {"finalizers": ["example.com/protect"]}},
           ctype=MERGE)
    f.call("DELETE", jobs + "/held", fg)
    time.sleep(1.2)
    st, gotp = f.call("GET", pod)
    st2, gotj = f.call("GET", jobs + "/held")
    check("a dependent held by a finalizer is terminating, and keeps its "
          "owner", st == 200 and "deletionTimestamp" in gotp["metadata"] and
          st2 == 200 and
          gotj["metadata"]["finalizers"] == ["foregroundDeletion"],
          st, gotp, st2, gotj)
    f.call("PATCH", pod, {"metadata": {"finalizers": None}}, ctype=MERGE)
    t0 = time.time()
    gone = wait_for(lambda: f.call("GET", jobs + "/held")[0] == 404,
                    timeout=5)
    took = time.time() - t0
    check("once the dependent is gone, the owner goes after the delay",
          f.call("GET", pod)[0] == 404 and gone and took >= 0.5, gone, took)

    # a namespace: its content first, then the namespace, after the delay
    f.call("POST", "/api/v1/namespaces", {"metadata": {"name": "slow"}})
    f.call("POST", "/api/v1/namespaces/slow/configmaps", cm("a", "slow"))
    stuck = cm("stuck", "slow")
    stuck["metadata"]["finalizers"] = ["example.com/protect"]
    f.call("POST", "/api/v1/namespaces/slow/configmaps", stuck)
    st, got = f.call("DELETE", "/api/v1/namespaces/slow", fg)
    check("a namespace deleted in the foreground: Terminating, the "
          "foregroundDeletion finalizer, spec.finalizers kubernetes",
          st == 200 and got["status"]["phase"] == "Terminating" and
          got["metadata"]["finalizers"] == ["foregroundDeletion"] and
          got["spec"]["finalizers"] == ["kubernetes"], st, got)
    st, got = f.call("POST", "/api/v1/namespaces/slow/configmaps",
                     cm("late", "slow"))
    check("new content in it: the real 403", st == 403 and got["message"] ==
          'configmaps "late" is forbidden: unable to create new content in '
          'namespace slow because it is being terminated', st, got)

    def conditions():
        ns = f.call("GET", "/api/v1/namespaces/slow")[1]
        c = {x["type"]: x for x in ns.get("status", {}).get("conditions", [])}
        return c if c.get("NamespaceContentRemaining", {}).get(
            "status") == "True" else None
    c = wait_for(conditions, timeout=5) or {}
    check("what is left is in the namespace's conditions, as the namespace "
          "controller words it",
          [c.get(t, {}).get("status") for t in (
              "NamespaceDeletionDiscoveryFailure",
              "NamespaceDeletionGroupVersionParsingFailure",
              "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
              "NamespaceFinalizersRemaining")] ==
          ["False", "False", "False", "True", "True"] and
          c["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain" and
          c["NamespaceContentRemaining"]["message"] ==
          "Some resources are remaining: configmaps. has 1 resource instances"
          and c["NamespaceFinalizersRemaining"]["message"] ==
          "Some content in the namespace has finalizers remaining: "
          "example.com/protect in 1 resource instances", c)
    st, got = f.call("GET", "/api/v1/namespaces/slow/configmaps")
    check("content without finalizers is gone; the held one terminates",
          names(got) == ["stuck"] and
          "deletionTimestamp" in got["items"][0]["metadata"], got)
    time.sleep(1.0)
    check("the namespace waits for it",
          f.call("GET", "/api/v1/namespaces/slow")[0] == 200)
    f.call("PATCH", "/api/v1/namespaces/slow/configmaps/stuck",
           {"metadata": {"finalizers": None}}, ctype=MERGE)
    t0 = time.time()
    time.sleep(0.3)
    st, got = f.call("GET", "/api/v1/namespaces/slow")
    check("with its content gone, the namespace still terminates for the "
          "delay", st == 200 and got["status"]["phase"] == "Terminating",
          st, got)
    gone = wait_for(lambda: f.call("GET", "/api/v1/namespaces/slow")[0] ==
                    404, timeout=5)
    took = time.time() - t0
    check("... then goes", gone and took >= 0.55, gone, took)
    f.call("POST", "/fake/gc", {"delay_ms": 0})


def behaviour_patches_kinds(f):
    dp = "/apis/apps/v1/namespaces/ns/deployments/smp"
    d = json.loads(json.dumps(WEB))
    d["metadata"] = {"name": "smp"}
    d["spec"]["template"]["spec"]["containers"].append(
        {"name": "side", "image": "side:1"})
    f.call("POST", "/apis/apps/v1/namespaces/ns/deployments", d)
    st, got = f.call("PATCH", dp, {"spec": {"template": {"spec": {
        "containers": [{"name": "side", "image": "side:2"}]}}}},
        ctype="application/strategic-merge-patch+json")
    cs = got["spec"]["template"]["spec"]["containers"]
    check("strategic merge patch merges containers by name",
          [(c["name"], c["image"]) for c in cs] ==
          [("web", "registry.example.com/shop/web:1.4.2"), ("side", "side:2")],
          cs)
    st, got = f.call("PATCH", dp, [{"op": "replace", "path": "/spec/replicas",
                                    "value": 4}],
                     ctype="application/json-patch+json")
    check("json patch", st == 200 and got["spec"]["replicas"] == 4, st, got)
    check("imagePullPolicy: Always without a tag, IfNotPresent with one",
          [c["imagePullPolicy"] for c in cs] == ["IfNotPresent", "IfNotPresent"]
          and f.call("POST", "/apis/apps/v1/namespaces/ns/deployments",
                     dict(d, metadata={"name": "latest"}, spec=dict(
                         d["spec"], template={"metadata": d["spec"][
                             "template"]["metadata"], "spec": {"containers": [
                                 {"name": "l", "image": "nginx"}]}})))[1][
              "spec"]["template"]["spec"]["containers"][0][
              "imagePullPolicy"] == "Always")

    w = {"apiVersion": "example.com/v1", "kind": "Widget",
         "metadata": {"name": "w1"}, "spec": {"size": 3, "tags": ["a"]}}
    st, got = f.apply("/apis/example.com/v1/namespaces/ns/widgets/w1", w)
    check("a Widget (custom resource) applies", st == 201 and
          got["spec"] == {"size": 3, "tags": ["a"]} and
          got["metadata"]["generation"] == 1, st, got)
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web"},
           "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {
                   "name": "web", "port": {"number": 80}}}}]}}]}}
    st, got = f.call("POST", "/apis/networking.k8s.io/v1/namespaces/ns/"
                     "ingresses", ing)
    check("an Ingress is created", st == 201, st, got)
    cr = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
          "metadata": {"name": "reader"}, "rules": [{"apiGroups": [""],
          "resources": ["pods"], "verbs": ["get", "list"]}]}
    st, got = f.apply("/apis/rbac.authorization.k8s.io/v1/clusterroles/reader",
                      cr)
    check("a ClusterRole applies, without a namespace", st == 201 and
          got["rules"] == cr["rules"] and "namespace" not in got["metadata"],
          st, got)
    st, got = f.apply("/api/v1/namespaces/ns/serviceaccounts/app",
                      {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "app"}})
    check("a ServiceAccount applies", st == 201, st, got)
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data"}, "spec": {
               "accessModes": ["ReadWriteOnce"],
               "resources": {"requests": {"storage": "1Gi"}}}}
    st, got = f.apply("/api/v1/namespaces/ns/persistentvolumeclaims/data", pvc)
    check("a PersistentVolumeClaim applies, Filesystem and Pending",
          st == 201 and got["spec"]["volumeMode"] == "Filesystem" and
          got["status"] == {"phase": "Pending"}, st, got)
    for path in ("/apis/batch/v1", "/apis/networking.k8s.io/v1",
                 "/apis/example.com/v1", "/apis/apps",
                 "/apis/rbac.authorization.k8s.io/v1"):
        st, got = f.call("GET", path)
        check("discovery " + path, st == 200 and isinstance(got, dict) and
              got.get("kind") in ("APIResourceList", "APIGroup"), st, got)
    st, _, body = f.raw("GET", "/nothing/here")
    check("an unknown path is the plain 404", st == 404 and
          body == b"404 page not found\n", st, body)
    st, got = f.call("GET", "/api/v1/namespaces/ns/gizmos")
    check("an unknown resource is a NotFound Status", st == 404 and
          got["message"] == "the server could not find the requested resource",
          st, got)
    st, got = f.call("PATCH", "/api/v1/namespaces/ns/configmaps/app", "{}",
                     ctype="text/plain")
    check("an unknown patch type is a 415", st == 415, st, got)
    st, got = f.apply("/api/v1/namespaces/ns/configmaps/yml",
                      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                      "  name: yml\ndata:\n  n: \"1\"\n  b: \"yes\"\n")
    st2, got2 = f.call("POST", "/api/v1/namespaces/ns/configmaps",
                       "metadata:\n  name: yml2\ndata:\n  k: \"x\"\n",
                       ctype="application/yaml")
    check("a create takes application/yaml", st2 == 201 and
          got2["data"] == {"k": "x"}, st2, got2)
    check("apply takes YAML", st == 201 and got["data"] == {"n": "1",
                                                            "b": "yes"},
          st, got)


def behaviour_faults_control(f):
    f.call("POST", "/fake/stats/reset")
    f.call("GET", "/api/v1/namespaces/ns/configmaps")
    f.call("GET", "/api/v1/namespaces/ns")
    f.call("PATCH", "/api/v1/namespaces/ns/configmaps/app",
           {"data": {"p": "1"}}, ctype=MERGE)
    st, stats = f.call("GET", "/fake/stats")
    check("stats count requests by verb", stats["requests"] == 3 and
          stats["by_verb"] == {"LIST": 1, "GET": 1, "PATCH": 1}, stats)
    f.call("POST", "/fake/stats/reset")
    st, stats = f.call("GET", "/fake/stats")
    check("stats reset", stats["requests"] == 0, stats)

    target = "/api/v1/namespaces/ns/configmaps/app"
    f.call("POST", "/fake/faults", {"rules": [
        {"match": "GET " + target, "status": 429, "retry_after": 2,
         "count": 2}]})
    st1, h1, b1 = f.raw("GET", target)
    st2, _, _ = f.raw("GET", target)
    st3, _, _ = f.raw("GET", target)
    check("429 with Retry-After and the TooManyRequests Status, count 2",
          (st1, st2, st3) == (429, 429, 200) and h1["Retry-After"] == "2" and
          json.loads(b1) == {"kind": "Status", "apiVersion": "v1",
                             "metadata": {}, "status": "Failure",
                             "message": "Too many requests, please try again "
                                        "later.",
                             "reason": "TooManyRequests",
                             "details": {"retryAfterSeconds": 2}, "code": 429},
          (st1, st2, st3), b1)
    f.call("POST", "/fake/faults", {"rules": [
        {"match": "* /api/v1/namespaces/ns/configmaps", "status": 500,
         "count": 1}]})
    st, got = f.call("GET", target)
    check("500 with the InternalError Status", st == 500 and
          got["reason"] == "InternalError" and
          got["message"].startswith("Internal error occurred: ") and
          got["details"]["causes"][0]["message"], st, got)
    f.call("POST", "/fake/faults", {"rules": [
        {"match": "GET " + target, "reset": True, "count": 1}]})
    c = f.connect()
    try:
        f.raw("GET", target, conn=c)
        reset = False
    except (http.client.HTTPException, ConnectionError, OSError):
        reset = True
    c.close()
    check("reset closes the connection without a response", reset)
    st, _, _ = f.raw("GET", target)
    check("... once", st == 200, st)

    f.call("POST", "/fake/faults", {"rules": [
        {"match": "GET " + target, "slow_body_ms": 600, "count": 1}]})
    t0 = time.time()
    st, _, body = f.raw("GET", target)
    took = time.time() - t0
    check("slow_body_ms dribbles the body", st == 200 and 0.5 < took < 5 and
          json.loads(body)["metadata"]["name"] == "app", st, took)
    f.call("POST", "/fake/faults", {"rules": [
        {"match": "GET " + target, "hang_ms": 3000, "count": 1}]})
    c = f.connect(timeout=0.5)
    try:
        f.raw("GET", target, conn=c)
        timed_out = False
    except (TimeoutError, OSError):
        timed_out = True
    c.close()
    check("hang_ms makes a client time out", timed_out)
    f.call("POST", "/fake/faults", {"latency_ms": 200, "rules": []})
    t0 = time.time()
    f.raw("GET", target)
    took = time.time() - t0
    st, cfg = f.call("DELETE", "/fake/faults")
    check("latency_ms delays every request; DELETE clears",
          0.19 < took < 3 and cfg == {"latency_ms": 0, "rules": []}, took, cfg)
    st, got = f.call("POST", "/fake/faults", {"rules": [{"match": "nospace"}]})
    check("a bad fault rule is a 400", st == 400, st, got)

    st, objs = f.call("GET", "/fake/objects")
    kinds = {o["kind"] for o in objs.get("items", [])}
    check("/fake/objects dumps every object",
          {"Namespace", "ConfigMap", "Deployment", "Job", "Pod"} <= kinds,
          kinds)


# ---- scale ----

def group_scale(server):
    f = Fake(server)
    try:
        nns, per = 100, 100
        for i in range(nns):
            f.call("POST", "/api/v1/namespaces",
                   {"metadata": {"name": "scale-%03d" % i}})
        errors = []

        def worker(part, parts):
            c = f.connect()
            try:
                for i in range(part, nns, parts):
                    for j in range(per):
                        st, _, body = f.raw(
                            "POST", "/api/v1/namespaces/scale-%03d/configmaps"
                            % i, cm("cm-%03d" % j, "scale-%03d" % i,
                                    {"app": "scale", "shard": str(j % 10)},
                                    {"key": "value-%d" % j}), conn=c)
                        if st != 201:
                            errors.append((st, body[:200]))
            finally:
                c.close()
        t0 = time.time()
        threads = [threading.Thread(target=worker, args=(p, 4))
                   for p in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        create_s = time.time() - t0
        check("10,000 ConfigMaps created", not errors, errors[:3])

        t0 = time.time()
        total, pages, token = 0, 0, ""
        while True:
            st, got = f.call("GET", "/api/v1/configmaps?limit=500&continue="
                             + token)
            if st != 200:
                fail("paged LIST", got)
                break
            total += len(got["items"])
            pages += 1
            token = got["metadata"].get("continue", "")
            if not token:
                break
        list_s = time.time() - t0
        check("a paged LIST (limit=500) returns all 10,000",
              total == nns * per and pages == 20, total, pages)

        t0 = time.time()
        st, got = f.call("GET", "/api/v1/configmaps?labelSelector=shard%3D3"
                         "&limit=500")
        sel_s = time.time() - t0
        t0 = time.time()
        for i in range(0, nns, 10):
            f.call("GET", "/api/v1/namespaces/scale-%03d/configmaps" % i)
        ns_s = (time.time() - t0) / 10
        rss_cm = f.rss_kb()
        # 1,000 Deployments applied, then until the controller saw them all
        errors.clear()

        def deployer(part, parts):
            c = f.connect()
            try:
                for i in range(part, 1000, parts):
                    d = json.loads(json.dumps(WEB))
                    d["metadata"] = {"name": "d%04d" % i}
                    st, _, body = f.raw(
                        "PATCH", "/apis/apps/v1/namespaces/scale-%03d/"
                        "deployments/d%04d?fieldManager=bench" % (i % nns, i),
                        json.dumps(d), ctype=APPLY, conn=c)
                    if st != 201:
                        errors.append((st, body[:200]))
            finally:
                c.close()
        t0 = time.time()
        threads = [threading.Thread(target=deployer, args=(p, 4))
                   for p in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        apply_s = time.time() - t0

        def all_ready():
            st, got = f.call("GET", "/apis/apps/v1/deployments")
            return all(i.get("status", {}).get("availableReplicas") == 2
                       for i in got["items"]) and len(got["items"]) == 1000
        settled = wait_for(all_ready, timeout=120)
        settle_s = time.time() - t0
        check("1,000 Deployments applied and rolled out", not errors and
              settled, errors[:3])
        rss = f.rss_kb()
        print("figures: create 10000 ConfigMaps (4 connections): %.2f s "
              "(%.0f/s)" % (create_s, nns * per / create_s))
        print("figures: paged LIST of 10000, limit=500, %d pages: %.3f s "
              "(%.1f ms/page)" % (pages, list_s, list_s * 1000 / pages))
        print("figures: labelled LIST (first 500 of 1000 matches): %.1f ms"
              % (sel_s * 1000))
        print("figures: one namespace's LIST (100 items): %.1f ms"
              % (ns_s * 1000))
        print("figures: apply 1000 Deployments (4 connections): %.2f s; all "
              "rolled out after %.2f s" % (apply_s, settle_s))
        print("figures: peak RSS of the server: %.1f MiB with the 10,000 "
              "ConfigMaps, %.1f MiB with the Deployments too"
              % (rss_cm / 1024, rss / 1024))
        check("the paged LIST is quick (< 30 s under any build)",
              list_s < 30, list_s)
    finally:
        f.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--group", required=True,
                   choices=["contract", "behaviour", "scale"])
    a = p.parse_args()
    {"contract": group_contract, "behaviour": group_behaviour,
     "scale": group_scale}[a.group](os.path.abspath(a.server))
    print("%d passed, %d failed" % (passes, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
