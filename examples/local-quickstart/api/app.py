#!/usr/bin/env python3
"""The quickstart API.

GET /health       -> "ok" (the local driver's health check)
GET /api/items    -> {"items": [...]} from PostgreSQL (DATABASE_URL), or a
                     JSON error with status 503 saying what is missing

Needs Flask (Debian: python3-flask); psycopg2 (python3-psycopg2) only for
the database. Listens on $PORT (default 5000) on 127.0.0.1 ($HOST to change).
"""

import os

from flask import Flask, jsonify

try:
    import psycopg2
except ImportError:  # the API still starts and says what is missing
    psycopg2 = None

app = Flask(__name__)

SEED = ["Write reconcile.yaml", "Run reconcile plan", "Run reconcile apply"]


def error(message, detail, status=503):
    return jsonify({"error": message, "detail": detail}), status


def database_url():
    return os.environ.get("DATABASE_URL") or os.environ.get("DATABASE")


@app.after_request
def allow_frontend(response):
    # the frontend is served from another port: let it read the API
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@app.get("/health")
def health():
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/api/items")
def items():
    url = database_url()
    if not url:
        return error("database not configured",
                     "DATABASE_URL is not set; is the db add-on running?")
    if psycopg2 is None:
        return error("database driver missing",
                     "install psycopg2 (Debian: apt-get install python3-psycopg2)")
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return error("database unreachable", first_line)
    try:
        with conn, conn.cursor() as cur:
            # first request on a fresh database: create and fill the table
            cur.execute("CREATE TABLE IF NOT EXISTS items ("
                        " id serial PRIMARY KEY, name text NOT NULL)")
            cur.execute("SELECT count(*) FROM items")
            if cur.fetchone()[0] == 0:
                cur.executemany("INSERT INTO items (name) VALUES (%s)",
                                [(name,) for name in SEED])
            cur.execute("SELECT id, name FROM items ORDER BY id")
            rows = cur.fetchall()
    except psycopg2.Error as e:
        return error("database query failed", str(e).strip(), 500)
    finally:
        conn.close()
    return jsonify({"items": [{"id": i, "name": n} for i, n in rows]})


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "5000")))
