"""How a container's command, environment and user come from the request and the image, as in Docker."""

import pytest

from minictr.containers.config import merge
from minictr.containers.users import resolve_user
from minictr.errors import InvalidArgument

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/img/bin", "A=1"],
         "WorkingDir": "/work", "User": "app"}


def test_image_supplies_what_the_request_leaves_out():
    config, host = merge({"Image": "x"}, IMAGE, "f" * 64)
    assert config["Entrypoint"] == ["/entry"] and config["Cmd"] == ["default"]
    assert config["WorkingDir"] == "/work" and config["User"] == "app"
    assert config["Hostname"] == "f" * 12
    assert "PATH=/img/bin" in config["Env"] and "A=1" in config["Env"] and f"HOSTNAME={'f' * 12}" in config["Env"]
    assert host["AutoRemove"] is False


def test_request_cmd_keeps_the_image_entrypoint():
    config, _ = merge({"Image": "x", "Cmd": ["other"]}, IMAGE, "f" * 64)
    assert (config["Entrypoint"], config["Cmd"]) == (["/entry"], ["other"])


def test_request_entrypoint_drops_the_image_cmd():
    config, _ = merge({"Image": "x", "Entrypoint": ["/bin/echo"]}, IMAGE, "f" * 64)
    assert (config["Entrypoint"], config["Cmd"]) == (["/bin/echo"], None)
    config, _ = merge({"Image": "x", "Entrypoint": [""], "Cmd": ["ls"]}, IMAGE, "f" * 64)
    assert (config["Entrypoint"], config["Cmd"]) == (None, ["ls"])


def test_the_images_healthcheck_is_merged_field_by_field():
    image = {**IMAGE, "Healthcheck": {"Test": ["CMD-SHELL", "check"], "Interval": 10_000_000_000, "Retries": 2}}
    config, _ = merge({"Image": "x"}, image, "f" * 64)
    assert config["Healthcheck"] == image["Healthcheck"]
    config, _ = merge({"Image": "x", "Healthcheck": {"Test": [], "Interval": 1_000_000_000, "Timeout": 0}},
                      image, "f" * 64)
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "check"], "Interval": 1_000_000_000, "Retries": 2}
    config, _ = merge({"Image": "x"}, IMAGE, "f" * 64)
    assert "Healthcheck" not in config  # neither has one: Docker's inspect leaves it out
    with pytest.raises(InvalidArgument, match="^Interval in Healthcheck cannot be less than 1ms$"):
        merge({"Image": "x", "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000}}, image, "f" * 64)


def test_request_env_overrides_by_key():
    config, _ = merge({"Image": "x", "Env": ["A=2", "B=3"]}, IMAGE, "f" * 64)
    assert "A=2" in config["Env"] and "A=1" not in config["Env"] and "B=3" in config["Env"]


def _layers(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (lower / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\n")
    return [str(upper), str(lower)]


def test_user_names_resolve_in_the_images_own_files(tmp_path):
    layers = _layers(tmp_path)
    assert resolve_user("", layers) == (0, 0, [])
    assert resolve_user("app", layers) == (1000, 1000, [50])
    assert resolve_user("app:staff", layers) == (1000, 50, [])
    assert resolve_user("4242", layers) == (4242, 0, [])
    assert resolve_user("4242:7", layers) == (4242, 7, [])
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user("ghost", layers)


def test_upper_layer_passwd_wins(tmp_path):
    layers = _layers(tmp_path)
    (tmp_path / "upper" / "etc" / "passwd").write_text("app:x:2000:2000::/:/bin/sh\n")
    assert resolve_user("app", layers)[:2] == (2000, 2000)


def test_a_symlinked_passwd_is_not_followed_to_the_host(tmp_path):
    layers = _layers(tmp_path)
    (tmp_path / "upper" / "etc" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InvalidArgument):
        resolve_user("root", layers)
