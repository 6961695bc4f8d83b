#!/usr/bin/python3
"""Holds backlog-lab's JSON Schemas (docs/*.schema.json) against the scenario reader and the
program's real outputs, with Debian's python3-jsonschema (draft 7).

  validate.py examples BINARY   the reader (`backlog-lab check`) and docs/scenario.schema.json agree
                                on every example of tests/schemas/examples/ and accept every
                                shipped scenario; then a self-check shows that a disagreement fails
  validate.py outputs BINARY    run --json, observe --json (a namespace and --demo), doctor --json
                                (a never-accepting listener, with and without --peek) and a tiny
                                sweep's --json, each against its schema (root: it builds labs)

Exit 0: all agree; 1: a disagreement or an invalid output; 77 (ctest: skipped): python3-jsonschema
is missing, or `outputs` is not run as root.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOCS = os.path.join(REPO, "docs")
EXAMPLES = os.path.join(HERE, "examples")
SKIP = 77

try:
    import jsonschema
except ImportError:
    print("validate.py: python3-jsonschema is missing (apt-get install python3-jsonschema)")
    sys.exit(SKIP)


def validator(name):
    with open(os.path.join(DOCS, name)) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(v, path):
    """The schema's complaints about a file; a file that is not JSON is one complaint."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except ValueError as e:
        return [f"not JSON: {e}"]
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in v.iter_errors(doc)]


def reader_verdict(binary, path):
    """(accepted, message) from `backlog-lab check PATH`: exit 0 accepts, 2 refuses."""
    r = subprocess.run([binary, "check", path], capture_output=True, text=True, timeout=60)
    if r.returncode not in (0, 2):
        raise RuntimeError(f"backlog-lab check {path}: exit {r.returncode}: {r.stderr}")
    return r.returncode == 0, r.stderr.strip()


def expected_path(path):
    """An example's description starts with the JSON path the reader must name ("/clients/0: ...")."""
    try:
        with open(path, encoding="utf-8") as f:
            desc = json.loads(f.read()).get("description", "")
    except (ValueError, AttributeError):
        return None
    return desc.split(": ", 1)[0] if desc.startswith("/") else None


def check_examples(binary, v, examples_dir, scenarios_dir):
    """Every disagreement between the reader and the schema, as lines; [] when they agree."""
    problems = []
    counts = {}
    for kind in ("valid", "invalid", "reader-only"):
        d = os.path.join(examples_dir, kind)
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
        counts[kind] = len(names)
        for name in names:
            path = os.path.join(d, name)
            schema_ok = not schema_errors(v, path)
            reader_ok, message = reader_verdict(binary, path)
            want_schema, want_reader = {"valid": (True, True), "invalid": (False, False),
                                        "reader-only": (True, False)}[kind]
            if schema_ok != want_schema:
                detail = "; ".join(schema_errors(v, path)[:3])
                problems.append(f"{kind}/{name}: the schema {'accepts' if schema_ok else 'refuses'}"
                                f" it{': ' + detail if detail else ''}")
            if reader_ok != want_reader:
                problems.append(f"{kind}/{name}: the reader {'accepts' if reader_ok else 'refuses'}"
                                f" it{': ' + message if message else ''}")
            at = expected_path(path)
            # The reader must refuse for the rule the example is about, not some other mistake.
            if not reader_ok and not want_reader and at and f"{path}: {at}:" not in message:
                problems.append(f"{kind}/{name}: the reader names another path than {at}: {message}")
    for name in sorted(os.listdir(scenarios_dir)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(scenarios_dir, name)
        for e in schema_errors(v, path):
            problems.append(f"scenarios/{name}: the schema refuses it: {e}")
        ok, message = reader_verdict(binary, path)
        if not ok:
            problems.append(f"scenarios/{name}: the reader refuses it: {message}")
    return problems, counts


def self_check(binary, v):
    """The comparison must be able to fail: an example filed in the wrong set is reported."""
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("valid", "invalid", "reader-only"):
            os.mkdir(os.path.join(tmp, kind))
        scenarios = os.path.join(tmp, "scenarios")
        os.mkdir(scenarios)
        wrong = {  # each file is in the wrong set
            "valid/refused-by-both.json": '{"name": "x"}',
            "invalid/accepted-by-both.json": '{"name": "x", "duration_ms": 1}',
            "reader-only/refused-by-the-schema.json": '{"name": "x", "duration_ms": 0}',
            "invalid/wrong-path.json":
                '{"name": "x", "duration_ms": 0, "description": "/seed: the path is not this"}',
        }
        for rel, text in wrong.items():
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        problems, _ = check_examples(binary, v, tmp, scenarios)
        missed = [rel for rel in wrong if not any(p.startswith(rel + ":") for p in problems)]
        return missed


def output_schemas_agree():
    """run.schema.json's census is a copy of observe.schema.json's (each file stands alone for
    editors and tools): the copies must not drift apart."""
    problems = []
    for name in ("observe", "run", "sweep", "doctor"):
        validator(name + ".schema.json")  # each is a valid draft 7 schema
    with open(os.path.join(DOCS, "observe.schema.json")) as f:
        observe = json.load(f)["definitions"]
    with open(os.path.join(DOCS, "run.schema.json")) as f:
        run_defs = json.load(f)["definitions"]
    for d in ("census", "listener", "socket", "state_counts", "counters"):
        if observe[d] != run_defs.get(d):
            problems.append(f"run.schema.json: definitions/{d} differs from observe.schema.json's")
    with open(os.path.join(DOCS, "doctor.schema.json")) as f:
        doctor_defs = json.load(f)["definitions"]
    for d in ("listener", "state_counts"):
        if observe[d] != doctor_defs.get(d):
            problems.append(f"doctor.schema.json: definitions/{d} differs from observe.schema.json's")
    return problems


def examples(binary):
    v = validator("scenario.schema.json")
    problems, counts = check_examples(binary, v, EXAMPLES, os.path.join(REPO, "scenarios"))
    problems += output_schemas_agree()
    for p in problems:
        print("DISAGREE", p)
    print(f"examples: {counts['valid']} valid, {counts['invalid']} invalid, "
          f"{counts['reader-only']} reader-only; {len(problems)} disagreements")
    missed = self_check(binary, v)
    for m in missed:
        print(f"SELF-CHECK: the misfiled example {m} was not reported")
    return 1 if problems or missed else 0


def validate_output(name, schema_file, path):
    v = validator(schema_file)
    errors = schema_errors(v, path)
    for e in errors[:20]:
        print(f"INVALID {name}: {e}")
    print(f"{name}: {'valid' if not errors else f'{len(errors)} errors'} against {schema_file}")
    return not errors


def run(args, ok_codes=(0, 1), timeout=300):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if r.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr[-2000:]}")
    return r


# A tiny sweep: two cells of a one-second scenario straight to one pod.
TINY = {"name": "schemas-tiny", "duration_ms": 800, "drain_ms": 300,
        "backends": [{"name": "p"}],
        "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 20}],
        "expectations": [{"metric": "clients.c.answered", "op": ">", "value": 0}]}


# A listener that never accepts, in a network namespace of its own (unshare): backlog 2, eight
# clients that send a request and close, so its queue is full of CLOSE-WAIT children and it drops.
HELD = """
import socket, time
srv = socket.socket()
srv.bind(("127.0.0.1", 8080))
srv.listen(2)
clients = []
for _ in range(8):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", 8080))
    except BlockingIOError:
        pass
    clients.append(c)
time.sleep(0.3)
for c in clients:
    try:
        c.send(b"GET /held HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n")
        c.close()
    except OSError:
        pass
print("ready", flush=True)
time.sleep(120)
"""


def doctor_outputs(binary, tmp):
    """doctor --json of a never-accepting listener, and with --peek (the `taken` key)."""
    held = subprocess.Popen(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
                             sys.executable, HELD], stdout=subprocess.PIPE, text=True)
    ok = True
    try:
        if held.stdout.readline().strip() != "ready":
            print("doctor: the held listener did not start")
            return False
        for name, extra in (("doctor --json", []),
                            ("doctor --json --peek --take 2", ["--peek", "--take", "2"])):
            r = run([binary, "doctor", "--pid", str(held.pid), "--json", "--interval", "0.3"] + extra)
            f = os.path.join(tmp, name.replace(" ", "_") + ".json")
            with open(f, "w") as out:
                out.write(r.stdout)
            ok &= validate_output(name, "doctor.schema.json", f)
            j = json.loads(r.stdout)
            verdicts = [l["verdict"] for ns in j["namespaces"] for l in ns["listeners"]]
            if r.returncode != 1 or verdicts != ["never-accepts"]:
                print(f"{name}: expected exit 1 and one never-accepts listener, got exit "
                      f"{r.returncode} and {verdicts}")
                ok = False
    finally:
        held.kill()
        held.wait()
    return ok


def outputs(binary):
    if os.geteuid() != 0:
        print("validate.py outputs: needs root (it builds labs)")
        return SKIP
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        # A short shipped scenario with a proxy, services and a timeline: most keys appear; the
        # haproxy one adds `programs` (an exec proxy), where haproxy and socat are installed.
        shipped = ["tuning-accept-queue"]
        if shutil.which("haproxy") and shutil.which("socat"):
            shipped.append("haproxy-frozen-backend")
        for name in shipped:
            f = os.path.join(tmp, name + ".json")
            run([binary, "run", name, "-q", "--json", f])
            ok &= validate_output("run --json " + name, "run.schema.json", f)
        for name, args in (("observe --json", ["observe", "--json", "--counters"]),
                           ("observe --json --listeners", ["observe", "--json", "--listeners"]),
                           ("observe --demo --json", ["observe", "--demo", "--json"])):
            f = os.path.join(tmp, name.replace(" ", "_") + ".json")
            with open(f, "w") as out:
                out.write(run([binary] + args).stdout)
            ok &= validate_output(name, "observe.schema.json", f)
        scenario = os.path.join(tmp, "tiny.json")
        with open(scenario, "w") as out:
            json.dump(TINY, out)
        f = os.path.join(tmp, "sweep.json")
        run([binary, "sweep", scenario, "--set", "/clients/0/rate_per_s=10,20", "--repeat", "2",
             "-q", "--json", f])
        ok &= validate_output("sweep --json", "sweep.schema.json", f)
        # The shards' reports and their merge are sweep reports too.
        shards = []
        for i in (1, 2):
            shards.append(os.path.join(tmp, f"shard{i}.json"))
            run([binary, "sweep", scenario, "--set", "/clients/0/rate_per_s=10,20", "--repeat", "2",
                 "--seed", "1", "--shard", f"{i}/2", "-q", "--json", shards[-1]])
            ok &= validate_output(f"sweep --shard {i}/2 --json", "sweep.schema.json", shards[-1])
        merged = os.path.join(tmp, "merged.json")
        run([binary, "merge", "-q", "--json", merged] + shards)
        ok &= validate_output("merge --json", "sweep.schema.json", merged)
        ok &= doctor_outputs(binary, tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("examples", "outputs"):
        print(__doc__)
        sys.exit(2)
    sys.exit({"examples": examples, "outputs": outputs}[sys.argv[1]](os.path.abspath(sys.argv[2])))
