"""login and logout: credentials in the docker CLI's config.json ($DOCKER_CONFIG or ~/.docker), which
pull and push send to the daemon as X-Registry-Auth, as the docker CLI does."""

import base64
import json
import os
import re
import sys

import click

from minictr.cli.decorators import pass_ctx
from minictr.errors import InvalidArgument, MinictrError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


def config_path() -> str:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def server_key(server: str | None) -> str:
    """The key config.json keeps a registry under: Docker Hub's index URL, else host[:port]."""
    host = hostname(server or "docker.io")
    return DOCKER_HUB_KEY if host in _HUB_NAMES else host


def hostname(address: str) -> str:
    """`https://index.docker.io/v1/` → index.docker.io; `http://localhost:5000/` → localhost:5000."""
    return re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", address.strip()).split("/")[0]


def read_config() -> dict:
    try:
        with open(config_path()) as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise MinictrError(f"reading {config_path()}: {e}") from None
    return config if isinstance(config, dict) else {}


def write_config(config: dict) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as f:
        json.dump(config, f, indent="\t")
        f.write("\n")
    os.rename(temporary, path)


def credentials_for(domain: str) -> tuple[str, str] | None:
    """(username, password) stored for the registry `domain` (a reference's), or None."""
    wanted = server_key(domain)
    for key, entry in (read_config().get("auths") or {}).items():
        if server_key(key) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise MinictrError(f"{config_path()}: the auth of {key} is not base64 user:password") from None
            return username, password
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
    return None


def registry_auth_header(domain: str) -> dict:
    """{"X-Registry-Auth": …} for `domain` when credentials are stored, else {}."""
    found = credentials_for(domain)
    if found is None:
        return {}
    data = {"username": found[0], "password": found[1], "serveraddress": server_key(domain)}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(data).encode()).decode()}


@click.command()
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@click.argument("server", required=False)
@pass_ctx
def login(ctx, username, password, password_stdin, server):
    """Log in to a registry (Docker Hub when SERVER is omitted)."""
    if password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not username:
            raise InvalidArgument("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("cannot prompt for a username: stdin is not a terminal (use -u)")
        username = click.prompt("Username")
    if not password:
        if not sys.stdin.isatty():
            raise InvalidArgument("cannot prompt for a password: stdin is not a terminal (use --password-stdin)")
        password = click.prompt("Password", hide_input=True)
    key = server_key(server)
    answer = ctx.client.post("/auth", body={"username": username, "password": password,
                                            "serveraddress": key}).json()
    config = read_config()
    auths = config.setdefault("auths", {})
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    write_config(config)
    click.echo(f"WARNING! Your password will be stored unencrypted in {config_path()}.", err=True)
    click.echo(answer.get("Status") or "Login Succeeded")


@click.command()
@click.argument("server", required=False)
def logout(server):
    """Log out from a registry (remove its stored credentials)."""
    key = server_key(server)
    config = read_config()
    auths = config.get("auths") or {}
    found = [k for k in auths if server_key(k) == key]
    if not found:
        click.echo(f"Not logged in to {server or key}")
        return
    click.echo(f"Removing login credentials for {server or key}")
    for k in found:
        del auths[k]
    write_config(config)
