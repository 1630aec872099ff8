#!/usr/bin/python3
"""Start (and stop) a throw-away, real OpenStack Keystone on 127.0.0.1 for tests.

Run it with Debian's /usr/bin/python3: it is the only interpreter that can import
keystone (a pyenv/venv python3 first on PATH cannot). Standard library only.
Install first with scripts/keystone/install.sh.

  start.py start [--timeout 90] [--info-file F] [--stop-on-stdin-eof | --detach]
  start.py stop  (--info-file F | --pid PID --dir DIR)

`start` creates a temp dir (keystone.conf, sqlite database, Fernet token and
credential key repositories, logs), serves keystone's public WSGI app under
uWSGI (own session = own process group; HTTP router on 127.0.0.1:<free port>),
runs keystone-manage db_sync and bootstrap meanwhile, waits for GET /v3, seeds
a domain, two projects and two users (password-only, password+TOTP MFA) over the
REST API, writes <dir>/info.json (and --info-file) and prints the same JSON as
ONE line on stdout. Progress and errors go to stderr; its first line is
"keystone-start: dir=<dir>". On failure it prints the log tails, kills what it
started, removes the dir (keep it with KEYSTONE_KEEP_DIR=1) and exits 1, a few
seconds after --timeout at the latest.

After printing the JSON it stays in the foreground as uWSGI's parent (so uWSGI
is reaped, never left a zombie) until SIGTERM / SIGINT / SIGHUP, or EOF on stdin
with --stop-on-stdin-eof (the test runner holds the pipe: if it dies, Keystone
goes too), or uWSGI dying; then it kills the uWSGI process group it started (by
pid), removes the temp dir and exits. With --detach it exits right after
printing instead, leaving uWSGI running: stop it with `stop`.

`stop` kills the uWSGI process group by pid, after checking that this pid is
still the uWSGI master serving that dir, and removes the dir.
"""

import argparse
import base64
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

KEYSTONE_MANAGE = '/usr/bin/keystone-manage'
UWSGI_CANDIDATES = ['/usr/bin/uwsgi-core', '/usr/bin/uwsgi']
MARKER = '.token-gateway-keystone'  # marks a dir this script created; only such dirs are removed
HOST = '127.0.0.1'
REGION = 'RegionOne'
TOKEN_TTL = 3600

DOMAIN_NAME = 'gw-test-domain'
PROJECT_NAME = 'gw-test-project'
PROJECT2_NAME = 'gw-test-project-2'
ROLE_NAME = 'member'  # created by `keystone-manage bootstrap` (with reader and admin)
PASSWORD_USER = 'gw-user'
MFA_USER = 'gw-mfa-user'


def log(msg):
    sys.stderr.write('keystone-start: %s\n' % msg)
    sys.stderr.flush()


def tail(path, lines=60):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode('utf-8', 'replace')
        return '\n'.join(data.splitlines()[-lines:])
    except OSError as e:
        return '(%s)' % e


def log_tails(d):
    out = []
    for name in ('keystone.log', 'uwsgi.log', 'manage-db_sync.log', 'manage-bootstrap.log'):
        p = os.path.join(d, name)
        if os.path.exists(p):
            out.append('----- tail of %s -----\n%s' % (p, tail(p)))
    return '\n'.join(out)


class StartError(Exception):
    pass


class Stop(BaseException):
    """Raised from signal handlers: unwinds to the cleanup code."""


# --------------------------------------------------------------------------- processes

def pid_alive(pid):
    """True if pid exists and is not a zombie (kill(pid, 0) also succeeds on zombies)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def is_our_uwsgi(pid, d):
    """pid is still the uWSGI master we started for dir d (guards against pid reuse)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmd = f.read().decode('utf-8', 'replace')
    except OSError:
        return False
    return 'uwsgi' in cmd and d in cmd


def kill_group(pid, d, grace=10.0, proc=None):
    """SIGTERM the process group led by the uWSGI master pid (master, worker, HTTP
    router: --die-on-term makes SIGTERM a shutdown), then SIGKILL after grace."""
    if not pid or not is_our_uwsgi(pid, d):
        if proc is not None:
            proc.poll()
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()  # reap it if it is our child
            if not pid_alive(pid):
                break
            time.sleep(0.05)
        if not pid_alive(pid):
            break
    try:  # stragglers left in the group
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def remove_dir(d):
    if d and os.path.isdir(d) and os.path.exists(os.path.join(d, MARKER)):
        shutil.rmtree(d, ignore_errors=True)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'VIRTUAL_ENV')
           and not k.startswith('OS_')}
    env['PATH'] = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    if extra:
        env.update(extra)
    return env


_MANAGE_PROCS = set()  # running keystone-manage children, killed if start fails or is stopped
_MANAGE_LOCK = threading.Lock()


def run_manage(d, conf, name, args, timeout):
    logf = os.path.join(d, 'manage-%s.log' % name)
    with open(logf, 'ab') as out:
        proc = subprocess.Popen([KEYSTONE_MANAGE, '--config-file', conf] + args,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=d, env=clean_env())
    with _MANAGE_LOCK:
        _MANAGE_PROCS.add(proc)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StartError('keystone-manage %s timed out after %.0fs' % (name, timeout))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with _MANAGE_LOCK:
            _MANAGE_PROCS.discard(proc)
    if rc != 0:
        raise StartError('keystone-manage %s failed (exit %s):\n%s' % (name, rc, tail(logf, 40)))


def kill_manage_procs():
    with _MANAGE_LOCK:
        procs = list(_MANAGE_PROCS)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def find_uwsgi():
    for p in UWSGI_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    raise StartError('uwsgi not found (%s); run scripts/keystone/install.sh' % ', '.join(UWSGI_CANDIDATES))


# --------------------------------------------------------------------------- HTTP

def http(method, url, body=None, token=None, timeout=15.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Accept', 'application/json')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    if token:
        req.add_header('X-Auth-Token', token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode('utf-8', 'replace')
        return e.code, e.headers, parsed


def api(method, url, body=None, token=None, expect=(200, 201, 204)):
    status, headers, data = http(method, url, body, token)
    if status not in expect:
        raise StartError('%s %s -> %s %s' % (method, url, status, json.dumps(data)[:500]))
    return headers, data


# --------------------------------------------------------------------------- files

KEYSTONE_CONF = """\
# Written by scripts/keystone/start.py for integration tests; throw-away.
[DEFAULT]
log_file = {d}/keystone.log
use_stderr = false
debug = false
insecure_debug = false

[database]
connection = sqlite:///{d}/keystone.db

[token]
provider = fernet
expiration = {ttl}

[fernet_tokens]
key_repository = {d}/fernet-keys/

[fernet_receipts]
# MFA receipts are Fernet too; the default is /etc/keystone/fernet-keys/.
key_repository = {d}/fernet-keys/

[credential]
key_repository = {d}/credential-keys/

[identity]
# bcrypt cost 4 (default 12): fast password checks.
password_hash_rounds = 4

[auth]
# totp is not enabled by default.
methods = password,token,totp,application_credential

[cache]
# Without a cache keystone runs hundreds of SQL queries per token request
# (~0.3 s to issue and ~1 s to validate a token on a small machine); with one,
# ~10-30 ms. The memory backend lives in the process, so uWSGI runs ONE worker
# (one process = one cache, every invalidation is seen, as with a shared
# memcached). memory_pickle, not memory: keystone 22 mutates cached values
# (the 2nd TOTP login of a user fails with KeyError 'encrypted_blob' in
# list_credentials_for_user); pickling hands out copies, like memcached.
enabled = true
backend = dogpile.cache.memory_pickle
"""

WSGI_APP = """\
# Written by scripts/keystone/start.py: keystone's public WSGI app.
import json
import logging
import sys

from keystone.server.wsgi import initialize_public_application

_keystone = initialize_public_application()
_LOG = logging.getLogger('keystone.wsgi-guard')
_BODY = json.dumps({'error': {
    'code': 500, 'title': 'Internal Server Error',
    'message': 'An unexpected error prevented the server from fulfilling your request.'}}).encode()


def application(environ, start_response):
    # Keystone sets PROPAGATE_EXCEPTIONS: an unexpected exception leaves the app
    # for the server to turn into a 500 (Apache does). uWSGI's HTTP router with
    # --http-keepalive instead leaves the client hanging with no response at all,
    # so answer keystone's own generic 500 here (the traceback goes to keystone.log).
    try:
        return _keystone(environ, start_response)
    except Exception:
        _LOG.exception('unhandled error in %s %s', environ.get('REQUEST_METHOD'),
                       environ.get('PATH_INFO'))
        start_response('500 Internal Server Error', [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(_BODY)))], sys.exc_info())
        return [_BODY]
"""


def write_fernet_keys(repo):
    """What `keystone-manage fernet_setup` / `credential_setup` leave behind, without
    ~2-3 s of keystone imports each: key 0 (staged) and key 1 (primary), each a
    Fernet key (urlsafe base64 of 32 random bytes), mode 0600, in a 0700 dir."""
    os.mkdir(repo, 0o700)
    for name in ('0', '1'):
        fd = os.open(os.path.join(repo, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(base64.urlsafe_b64encode(os.urandom(32)).decode())


# --------------------------------------------------------------------------- start

def start_uwsgi(d, port):
    conf = os.path.join(d, 'keystone.conf')
    cmd = [
        find_uwsgi(),
        '--plugins', 'http,python3',
        # uWSGI's HTTP router (keep-alive capable) in front of the worker on a unix
        # socket. Not --http-socket (resets reused keep-alive connections) and not
        # --http11-socket (an idle keep-alive connection pins the worker).
        '--http', '%s:%d' % (HOST, port),
        '--http-keepalive',
        '--socket', os.path.join(d, 'uwsgi.sock'),
        '--wsgi-file', os.path.join(d, 'keystone-wsgi.py'),
        '--chdir', d,
        '--master',
        '--processes', '1',  # one worker: see [cache] in keystone.conf
        '--threads', '1',
        '--lazy-apps',
        '--need-app',        # exit if the app cannot load instead of serving errors
        '--die-on-term',     # SIGTERM = shut down (uWSGI 2.0 otherwise reloads)
        '--no-orphans',      # the worker dies if the master dies
        '--buffer-size', '65535',  # big request headers (tokens, receipts)
        '--env', 'OS_KEYSTONE_CONFIG_FILES=%s' % conf,
        '--disable-logging',  # no per-request lines; keystone.log has the errors
    ]
    with open(os.path.join(d, 'uwsgi.log'), 'ab') as logf:
        proc = subprocess.Popen(cmd, cwd=d, env=clean_env({'OS_KEYSTONE_CONFIG_FILES': conf}),
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    with open(os.path.join(d, 'uwsgi.pgid'), 'w') as f:
        f.write('%d\n' % proc.pid)
    return proc


def wait_for_keystone(proc, url, d, deadline, db_err):
    """Wait for GET /v3 -> 200. Returns None when up, or 'bind' if the port was taken."""
    while True:
        if proc.poll() is not None:
            if 'Address already in use' in tail(os.path.join(d, 'uwsgi.log'), 200):
                return 'bind'
            raise StartError('uwsgi exited with code %s before Keystone answered' % proc.returncode)
        if db_err:
            raise db_err[0]
        try:
            # Requests queue while the worker loads the app: a generous timeout (a
            # client that gives up makes keystone log "OSError: write error").
            status, _, body = http('GET', url + '/v3',
                                   timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            if status == 200 and isinstance(body, dict) and 'version' in body:
                return None
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise StartError('Keystone did not answer GET %s/v3 with 200 in time' % url)
        time.sleep(0.2)


def seed(url, admin_password):
    v3 = url + '/v3'
    headers, _ = api('POST', v3 + '/auth/tokens', {'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': 'admin', 'domain': {'id': 'default'}, 'password': admin_password}}},
        'scope': {'project': {'name': 'admin', 'domain': {'id': 'default'}}}}})
    admin = headers.get('X-Subject-Token')
    if not admin:
        raise StartError('no X-Subject-Token for the bootstrap admin')

    _, r = api('POST', v3 + '/domains', {'domain': {
        'name': DOMAIN_NAME, 'description': 'token-gateway integration tests', 'enabled': True}}, admin)
    domain = r['domain']
    projects = {}
    for name in (PROJECT_NAME, PROJECT2_NAME):
        _, r = api('POST', v3 + '/projects', {'project': {
            'name': name, 'domain_id': domain['id'], 'enabled': True}}, admin)
        projects[name] = r['project']
    _, r = api('GET', v3 + '/roles?name=' + ROLE_NAME, token=admin)
    if r['roles']:
        role = r['roles'][0]
    else:
        _, r = api('POST', v3 + '/roles', {'role': {'name': ROLE_NAME}}, admin)
        role = r['role']

    password_user_pw = 'Pw-' + secrets.token_urlsafe(18)
    mfa_user_pw = 'Pw-' + secrets.token_urlsafe(18)
    totp_secret = base64.b32encode(secrets.token_bytes(20)).decode()  # 32 chars, no padding

    users = {}
    for name, pw in ((PASSWORD_USER, password_user_pw), (MFA_USER, mfa_user_pw)):
        _, r = api('POST', v3 + '/users', {'user': {
            'name': name, 'domain_id': domain['id'], 'password': pw, 'enabled': True,
            'default_project_id': projects[PROJECT_NAME]['id']}}, admin)
        users[name] = r['user']
        for p in projects.values():
            api('PUT', '%s/projects/%s/users/%s/roles/%s' % (v3, p['id'], r['user']['id'], role['id']),
                token=admin)
        api('PUT', '%s/domains/%s/users/%s/roles/%s' % (v3, domain['id'], r['user']['id'], role['id']),
            token=admin)

    mfa_id = users[MFA_USER]['id']
    api('POST', v3 + '/credentials', {'credential': {
        'type': 'totp', 'user_id': mfa_id, 'blob': totp_secret}}, admin)
    api('PATCH', '%s/users/%s' % (v3, mfa_id), {'user': {'options': {
        'multi_factor_auth_enabled': True,
        'multi_factor_auth_rules': [['password', 'totp']]}}}, admin)

    # Smoke: the password user gets a project-scoped token.
    status, _, body = http('POST', v3 + '/auth/tokens', {'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'id': users[PASSWORD_USER]['id'], 'password': password_user_pw}}},
        'scope': {'project': {'id': projects[PROJECT_NAME]['id']}}}})
    if status != 201:
        raise StartError('smoke login of %s failed: %s %s' % (PASSWORD_USER, status, body))

    return {
        'domain': {'id': domain['id'], 'name': domain['name']},
        'project': {'id': projects[PROJECT_NAME]['id'], 'name': PROJECT_NAME},
        'project2': {'id': projects[PROJECT2_NAME]['id'], 'name': PROJECT2_NAME},
        'role': {'id': role['id'], 'name': role['name']},
        'users': {
            'password': {'id': users[PASSWORD_USER]['id'], 'name': PASSWORD_USER,
                         'password': password_user_pw},
            'mfa': {'id': mfa_id, 'name': MFA_USER, 'password': mfa_user_pw,
                    'totpSecret': totp_secret},
        },
    }


def keystone_version():
    try:
        from importlib.metadata import version
        return version('keystone')
    except Exception:  # noqa: BLE001 - informational only
        return 'unknown'


def bring_up(d, args, deadline, state):
    """Everything up to a seeded, answering Keystone. Returns the info dict."""
    conf = os.path.join(d, 'keystone.conf')
    with open(conf, 'w') as f:
        f.write(KEYSTONE_CONF.format(d=d, ttl=TOKEN_TTL))
    with open(os.path.join(d, 'keystone-wsgi.py'), 'w') as f:
        f.write(WSGI_APP)
    write_fernet_keys(os.path.join(d, 'fernet-keys'))
    write_fernet_keys(os.path.join(d, 'credential-keys'))
    admin_password = 'Adm-' + secrets.token_urlsafe(18)

    def remaining():
        return max(5.0, deadline - time.monotonic())

    def bootstrap(url):
        t = time.monotonic()
        run_manage(d, conf, 'bootstrap', [
            'bootstrap', '--bootstrap-password', admin_password,
            '--bootstrap-username', 'admin', '--bootstrap-project-name', 'admin',
            '--bootstrap-role-name', 'admin', '--bootstrap-service-name', 'keystone',
            '--bootstrap-region-id', REGION,
            '--bootstrap-admin-url', url + '/v3/',
            '--bootstrap-internal-url', url + '/v3/',
            '--bootstrap-public-url', url + '/v3/',
        ], timeout=remaining())
        log('bootstrap: %.1fs' % (time.monotonic() - t))

    port = free_port()
    url = 'http://%s:%d' % (HOST, port)

    # The database side (db_sync + bootstrap, ~6 s of keystone-manage) runs in a
    # thread while uWSGI loads the app (~3-5 s). The app does not touch the
    # database until the first real request, which is only sent after both.
    db_err = []

    def database():
        try:
            t = time.monotonic()
            run_manage(d, conf, 'db_sync', ['db_sync'], timeout=remaining())
            # WAL (persistent in the file): keystone-manage and the server (or more
            # workers) do not block each other; without it concurrent access answers
            # 500 "database is locked".
            db = sqlite3.connect(os.path.join(d, 'keystone.db'), timeout=10)
            try:
                mode = db.execute('PRAGMA journal_mode=WAL').fetchone()[0]
            finally:
                db.close()
            if mode.lower() != 'wal':
                raise StartError('could not switch sqlite to WAL (got %s)' % mode)
            log('db_sync: %.1fs' % (time.monotonic() - t))
            bootstrap(url)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            db_err.append(e)
    db_thread = threading.Thread(target=database, daemon=True)
    db_thread.start()

    t = time.monotonic()
    for attempt in range(1, 4):
        proc = start_uwsgi(d, port)
        state['proc'] = proc
        if wait_for_keystone(proc, url, d, deadline, db_err) is None:
            break
        log('port %d was taken, retrying (attempt %d)' % (port, attempt))
        kill_group(proc.pid, d, grace=2, proc=proc)
        port = free_port()
        url = 'http://%s:%d' % (HOST, port)
    else:
        raise StartError('could not bind a free port for uwsgi after 3 attempts')
    log('uwsgi serving on %s: %.1fs' % (url, time.monotonic() - t))
    db_thread.join(timeout=remaining())
    if db_thread.is_alive():
        raise StartError('db_sync/bootstrap did not finish in time')
    if db_err:
        raise db_err[0]
    if attempt > 1:
        bootstrap(url)  # update the catalog endpoints to the final port

    t = time.monotonic()
    seeded = seed(url, admin_password)
    log('seed: %.1fs' % (time.monotonic() - t))

    info = {
        'url': url,
        'authUrl': url + '/v3',
        'region': REGION,
        'keystoneVersion': keystone_version(),
        'tokenTtlSeconds': TOKEN_TTL,
        'admin': {'name': 'admin', 'password': admin_password, 'domainId': 'default',
                  'projectName': 'admin'},
    }
    info.update(seeded)
    info.update({'pid': proc.pid, 'dir': d, 'logFile': os.path.join(d, 'keystone.log')})
    return info


def supervise(proc, watch_stdin):
    """Foreground after start: return when asked to stop; raise if uWSGI dies."""
    fd = sys.stdin.fileno() if watch_stdin else None
    while True:
        if proc.poll() is not None:
            raise StartError('uwsgi (pid %d) exited unexpectedly with code %s'
                             % (proc.pid, proc.returncode))
        if fd is None:
            time.sleep(1.0)
            continue
        readable, _, _ = select.select([fd], [], [], 1.0)
        if readable and not os.read(fd, 4096):
            log('stdin closed: stopping')
            return


def cmd_start(args):
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    if not os.access(KEYSTONE_MANAGE, os.X_OK):
        log('%s not found; run scripts/keystone/install.sh' % KEYSTONE_MANAGE)
        return 1

    # The dir lands in keystone.conf (oslo.config expands $names), in an sqlite URL
    # and in uWSGI's unix socket path (max ~107 bytes): fall back to /tmp for an
    # unusual or long TMPDIR.
    base = tempfile.gettempdir()
    if not re.fullmatch(r'[A-Za-z0-9_./-]+', base) or len(base) > 60:
        base = '/tmp'
    d = tempfile.mkdtemp(prefix='keystone-it-', dir=base)
    os.chmod(d, 0o700)
    open(os.path.join(d, MARKER), 'w').close()
    log('dir=%s' % d)  # first line: a caller can clean up even if it must kill us
    state = {'proc': None}

    def on_signal(signum, _frame):
        raise Stop('signal %d' % signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    phase = 'start'
    leave_running = False
    try:
        info = bring_up(d, args, deadline, state)
        with open(os.path.join(d, 'info.json'), 'w') as f:
            json.dump(info, f, indent=2)
        if args.info_file:
            with open(args.info_file, 'w') as f:
                json.dump(info, f, indent=2)
        log('ready in %.1fs: %s (uwsgi pid %d, dir %s)' % (time.monotonic() - t0, info['url'],
                                                            info['pid'], d))
        sys.stdout.write(json.dumps(info) + '\n')
        sys.stdout.flush()
        if args.detach:
            leave_running = True
            return 0
        phase = 'serve'
        supervise(state['proc'], args.stop_on_stdin_eof)
        return 0
    except Stop as e:
        log('stopping (%s)' % e)
        return 0 if phase == 'serve' else 1
    except BaseException as e:  # noqa: BLE001 - report, clean up, exit non-zero
        log('FAILED after %.1fs: %s' % (time.monotonic() - t0, e))
        sys.stderr.write(log_tails(d) + '\n')
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        kill_manage_procs()
        if not leave_running:
            proc = state['proc']
            if proc is not None:
                kill_group(proc.pid, d, grace=5, proc=proc)
            if os.environ.get('KEYSTONE_KEEP_DIR') == '1':
                log('kept %s (KEYSTONE_KEEP_DIR=1)' % d)
            else:
                remove_dir(d)


def cmd_stop(args):
    pid, d = args.pid, args.dir
    if args.info_file:
        with open(args.info_file) as f:
            info = json.load(f)
        pid, d = info['pid'], info['dir']
    if not pid or not d:
        log('stop needs --info-file, or --pid and --dir')
        return 2
    kill_group(int(pid), d)
    remove_dir(d)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('start')
    s.add_argument('--timeout', type=float, default=90.0,
                   help='deadline in seconds for Keystone to be up and seeded')
    s.add_argument('--info-file', help='also write the info JSON here')
    g = s.add_mutually_exclusive_group()
    g.add_argument('--stop-on-stdin-eof', action='store_true',
                   help='stop when stdin reaches EOF (the parent closed the pipe or died)')
    g.add_argument('--detach', action='store_true',
                   help='exit once ready, leaving uWSGI running (stop it with `stop`)')
    s.set_defaults(fn=cmd_start)
    s = sub.add_parser('stop')
    s.add_argument('--info-file')
    s.add_argument('--pid', type=int)
    s.add_argument('--dir')
    s.set_defaults(fn=cmd_stop)
    args = p.parse_args()
    sys.exit(args.fn(args))


if __name__ == '__main__':
    main()
